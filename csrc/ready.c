/* ready.c - the ready queue (see ready.h).  FIFO order is the loop's
 * contract: callbacks run in the order they were scheduled. */
#include "ready.h"
#include "anchor.h"
#include "module.h"

#define READY_MIN_CAP 64

static int
ready_grow(ql_ready *q)
{
    size_t new_cap = q->cap ? q->cap * 2 : READY_MIN_CAP;
    ql_ready_entry *entries = PyMem_Malloc(new_cap * sizeof(ql_ready_entry));
    if (entries == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    /* Unroll the ring so the oldest entry sits at index 0. */
    for (size_t i = 0; i < q->len; i++) {
        entries[i] = q->entries[(q->head + i) & (q->cap - 1)];
    }
    PyMem_Free(q->entries);
    q->entries = entries;
    q->head = 0;
    q->cap = new_cap;
    return 0;
}

int
ql_ready_reserve(ql_ready *q)
{
    if (q->len < q->cap) {
        return 0;
    }
    return ql_fault_point() < 0 ? -1 : ready_grow(q);
}

int
ql_ready_reserve_n(ql_ready *q, size_t n)
{
    while (q->cap - q->len < n) {
        if (ql_fault_point() < 0 || ready_grow(q) < 0) {
            return -1;
        }
    }
    return 0;
}

int
ql_ready_push(ql_ready *q, ql_ready_kind kind, PyObject *obj, PyObject *arg,
              PyObject *context)
{
    if (q->len == q->cap && ql_ready_reserve(q) < 0) {
        return -1;
    }
    ql_ready_entry *e = &q->entries[(q->head + q->len) & (q->cap - 1)];
    e->obj = Py_NewRef(obj);
    e->arg = Py_XNewRef(arg);
    e->context = Py_XNewRef(context);
    e->kind = kind;
    q->len++;
    return 0;
}

void
ql_ready_untrack_newest(ql_ready *q)
{
    ql_anchor_handle(q->entries[(q->head + q->len - 1) & (q->cap - 1)].obj);
}

void
ql_ready_track_all(ql_ready *q)
{
    for (size_t i = 0; i < q->len; i++) {
        ql_ready_entry *e = &q->entries[(q->head + i) & (q->cap - 1)];
        if (e->kind == QL_READY_HANDLE || e->kind == QL_READY_WAKEUP || e->kind == QL_READY_STEP) {
            ql_anchor_release(e->obj);
        }
    }
}

int
ql_ready_pop(ql_ready *q, ql_ready_entry *out)
{
    if (q->len == 0) {
        return 0;
    }
    *out = q->entries[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    return 1;
}

void
ql_ready_entry_clear(ql_ready_entry *e)
{
    /* A handle only the ring held dies untracked, without touching the GC.
     * (A task's step tracks it first thing, and may anchor it again.) */
    if (e->kind == QL_READY_HANDLE && e->obj != NULL && Py_REFCNT(e->obj) > 1) {
        ql_anchor_release(e->obj);
    }
    Py_CLEAR(e->obj);
    Py_CLEAR(e->arg);
    Py_CLEAR(e->context);
}

void
ql_ready_clear(ql_ready *q)
{
    /* Detach first: a destructor run by Py_DECREF may schedule again. */
    ql_ready_entry *entries = q->entries;
    size_t head = q->head, len = q->len, cap = q->cap;
    q->entries = NULL;
    q->head = q->len = q->cap = 0;
    for (size_t i = 0; i < len; i++) {
        ql_ready_entry_clear(&entries[(head + i) & (cap - 1)]);
    }
    PyMem_Free(entries);
}

int
ql_ready_traverse(ql_ready *q, visitproc visit, void *arg)
{
    for (size_t i = 0; i < q->len; i++) {
        ql_ready_entry *e = &q->entries[(q->head + i) & (q->cap - 1)];
        Py_VISIT(e->obj);
        Py_VISIT(e->arg);
        Py_VISIT(e->context);
    }
    return 0;
}
