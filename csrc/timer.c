/* timer.c - the timer heap (see timer.h for the invariant). */
#include "timer.h"
#include "anchor.h"
#include "module.h"
#include <math.h>

#define HEAP_MIN_CAP 16
#define HEAP_ARITY 4

/* Ordered by when() itself, not by the rounded nanosecond deadline: two
 * timers less than a nanosecond apart still fire in when() order.  The
 * deadline is monotonic in when, so the top of the heap is also the earliest
 * deadline. */
static inline int
entry_earlier(const ql_timer_entry *a, const ql_timer_entry *b)
{
    return a->when < b->when || (a->when == b->when && a->t->seq < b->t->seq);
}

static inline void
heap_place(ql_timer_heap *heap, Py_ssize_t i, ql_timer_entry e)
{
    heap->items[i] = e;
    e.t->heap_index = i;
}

static void
sift_up(ql_timer_heap *heap, Py_ssize_t i)
{
    ql_timer_entry e = heap->items[i];
    while (i > 0) {
        Py_ssize_t parent = (i - 1) / HEAP_ARITY;
        if (!entry_earlier(&e, &heap->items[parent])) {
            break;
        }
        heap_place(heap, i, heap->items[parent]);
        i = parent;
    }
    heap_place(heap, i, e);
}

static void
sift_down(ql_timer_heap *heap, Py_ssize_t i)
{
    ql_timer_entry e = heap->items[i];
    for (;;) {
        Py_ssize_t first = HEAP_ARITY * i + 1;
        if (first >= heap->len) {
            break;
        }
        Py_ssize_t end = first + HEAP_ARITY < heap->len ? first + HEAP_ARITY : heap->len;
        Py_ssize_t child = first;
        for (Py_ssize_t c = first + 1; c < end; c++) {
            if (entry_earlier(&heap->items[c], &heap->items[child])) {
                child = c;
            }
        }
        if (!entry_earlier(&heap->items[child], &e)) {
            break;
        }
        heap_place(heap, i, heap->items[child]);
        i = child;
    }
    heap_place(heap, i, e);
}

static int
heap_resize(ql_timer_heap *heap, Py_ssize_t cap)
{
    ql_timer_entry *items = PyMem_Realloc(heap->items, cap * sizeof(*items));
    if (items == NULL) {
        return -1;
    }
    heap->items = items;
    heap->cap = cap;
    return 0;
}

/* Every timer leaves the heap tracked (see timer.h). */
static inline void
track_again(ql_timer_heap *heap, ql_timer_handle *t)
{
    if (heap->untracked > 0 && !PyObject_GC_IsTracked((PyObject *)t)) {
        ql_anchor_release_timer(t);
        heap->untracked--;
    }
}

int
ql_timer_heap_push(ql_timer_heap *heap, ql_timer_handle *t, int untrack)
{
    if (ql_fault_point() < 0) {
        return -1;
    }
    if (heap->len == heap->cap
        && heap_resize(heap, heap->cap ? heap->cap * 2 : HEAP_MIN_CAP) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(t);
    heap->items[heap->len] = (ql_timer_entry){t->when, t};
    sift_up(heap, heap->len++);
    if (untrack && PyObject_GC_IsTracked((PyObject *)t)) {
        ql_anchor_timer(t);
        heap->untracked++;
    }
    return 0;
}

void
ql_timer_heap_track_all(ql_timer_heap *heap)
{
    for (Py_ssize_t i = 0; heap->untracked > 0 && i < heap->len; i++) {
        track_again(heap, heap->items[i].t);
    }
}

/* Give memory back once the heap is mostly empty (a burst of cancelled
 * timeouts must not pin its peak). A failed shrink is harmless. */
static void
heap_maybe_shrink(ql_timer_heap *heap)
{
    if (heap->cap > HEAP_MIN_CAP && heap->len < heap->cap / 4) {
        (void)heap_resize(heap, heap->cap / 2);
    }
}

void
ql_timer_heap_remove(ql_timer_heap *heap, ql_timer_handle *t)
{
    Py_ssize_t i = t->heap_index;
    ql_timer_entry last = heap->items[--heap->len];
    t->heap_index = -1;
    if (i != heap->len) {
        heap_place(heap, i, last);
        if (i > 0 && entry_earlier(&last, &heap->items[(i - 1) / HEAP_ARITY])) {
            sift_up(heap, i);
        }
        else {
            sift_down(heap, i);
        }
    }
    heap_maybe_shrink(heap);
    track_again(heap, t);
    Py_DECREF(t);
}

ql_timer_handle *
ql_timer_heap_pop(ql_timer_heap *heap)
{
    ql_timer_handle *t = heap->items[0].t;
    ql_timer_entry last = heap->items[--heap->len];
    t->heap_index = -1;
    if (heap->len > 0) {
        heap_place(heap, 0, last);
        sift_down(heap, 0);
    }
    heap_maybe_shrink(heap);
    track_again(heap, t);
    return t;
}

void
ql_timer_heap_clear(ql_timer_heap *heap)
{
    ql_timer_heap_track_all(heap);
    /* Detach first: a destructor run by Py_DECREF may arm a new timer. */
    ql_timer_entry *items = heap->items;
    Py_ssize_t len = heap->len;
    heap->items = NULL;
    heap->len = heap->cap = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        items[i].t->heap_index = -1;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_DECREF(items[i].t);
    }
    PyMem_Free(items);
}

int
ql_timer_heap_traverse(ql_timer_heap *heap, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < heap->len; i++) {
        Py_VISIT(heap->items[i].t);
    }
    return 0;
}

int64_t
ql_timer_deadline(double when)
{
    /* 9.2e9 s is just under INT64_MAX ns. */
    if (when >= 9.2e9) {
        return INT64_MAX;
    }
    if (when <= -9.2e9 || isnan(when)) {   /* callers refuse NaN; never UB here */
        return -INT64_MAX;
    }
    int64_t deadline = (int64_t)ceil(when * 1e9);
    /* when * 1e9 rounds; step until the tick really is at or after when. */
    while ((double)deadline / 1e9 < when) {
        deadline++;
    }
    return deadline;
}
