/* ready.c - the ready queue (see ready.h).  FIFO order is the loop's
 * contract: callbacks run in the order they were scheduled. */
#include "ready.h"

#define READY_MIN_CAP 64

static int
ready_grow(ql_ready *q)
{
    size_t new_cap = q->cap ? q->cap * 2 : READY_MIN_CAP;
    PyObject **items = PyMem_Malloc(new_cap * sizeof(PyObject *));
    if (items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    /* Unroll the ring so the oldest entry sits at index 0. */
    for (size_t i = 0; i < q->len; i++) {
        items[i] = q->items[(q->head + i) & (q->cap - 1)];
    }
    PyMem_Free(q->items);
    q->items = items;
    q->head = 0;
    q->cap = new_cap;
    return 0;
}

int
ql_ready_push(ql_ready *q, PyObject *item)
{
    if (q->len == q->cap && ready_grow(q) < 0) {
        Py_DECREF(item);
        return -1;
    }
    q->items[(q->head + q->len) & (q->cap - 1)] = item;
    q->len++;
    return 0;
}

PyObject *
ql_ready_pop(ql_ready *q)
{
    if (q->len == 0) {
        return NULL;
    }
    PyObject *item = q->items[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    return item;
}

void
ql_ready_clear(ql_ready *q)
{
    /* Detach first: a destructor run by Py_DECREF may schedule again. */
    PyObject **items = q->items;
    size_t head = q->head, len = q->len, cap = q->cap;
    q->items = NULL;
    q->head = q->len = q->cap = 0;
    for (size_t i = 0; i < len; i++) {
        Py_DECREF(items[(head + i) & (cap - 1)]);
    }
    PyMem_Free(items);
}

int
ql_ready_traverse(ql_ready *q, visitproc visit, void *arg)
{
    for (size_t i = 0; i < q->len; i++) {
        Py_VISIT(q->items[(q->head + i) & (q->cap - 1)]);
    }
    return 0;
}
