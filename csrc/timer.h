/* timer.h - the timer heap: an indexed 4-ary min-heap of TimerHandles keyed by
 * (when, seq), so equal deadlines fire in arming order and a cancelled
 * timer is removed at once in O(log n).
 * Each entry carries a copy of its timer's when(), so sifting compares
 * entries of the array and reads a handle only to break a tie; with four
 * children per node a level's comparisons fall in one or two cache lines and
 * there are half as many levels as in a binary heap.
 * Invariant: items[i].t->heap_index == i and items[i].when == items[i].t->when
 * for every armed timer, and no entry is earlier than its parent. The heap
 * owns one reference to each timer. */
#ifndef QL_TIMER_H
#define QL_TIMER_H

#include "handle.h"

typedef struct {
    double when;                /* t->when, which never changes once armed */
    ql_timer_handle *t;
} ql_timer_entry;

typedef struct {
    ql_timer_entry *items;
    Py_ssize_t len;
    Py_ssize_t cap;
} ql_timer_heap;

/* Arm t (takes a new reference). -1 with MemoryError. */
int ql_timer_heap_push(ql_timer_heap *heap, ql_timer_handle *t);
/* Disarm t, which must be in the heap; the caller must hold its own reference. */
void ql_timer_heap_remove(ql_timer_heap *heap, ql_timer_handle *t);
/* Remove and return the earliest timer (an owned reference). */
ql_timer_handle *ql_timer_heap_pop(ql_timer_heap *heap);
void ql_timer_heap_clear(ql_timer_heap *heap);
int ql_timer_heap_traverse(ql_timer_heap *heap, visitproc visit, void *arg);

static inline ql_timer_handle *
ql_timer_heap_top(ql_timer_heap *heap)
{
    return heap->len ? heap->items[0].t : NULL;
}

/* The deadline in nanoseconds for a loop.time() value: the first tick t with
 * t / 1e9 >= when, so a timer never runs before loop.time() reaches when().
 * Far-future values (and +inf) saturate to INT64_MAX: never. */
int64_t ql_timer_deadline(double when);

#endif /* QL_TIMER_H */
