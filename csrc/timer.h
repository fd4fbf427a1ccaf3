/* timer.h - the timer heap: an indexed 4-ary min-heap of TimerHandles keyed by
 * (when, seq), so equal deadlines fire in arming order and a cancelled
 * timer is removed at once in O(log n).
 * Each entry carries a copy of its timer's when(), so sifting compares
 * entries of the array and reads a handle only to break a tie; with four
 * children per node a level's comparisons fall in one or two cache lines and
 * there are half as many levels as in a binary heap.
 * Invariant: items[i].t->heap_index == i and items[i].when == items[i].t->when
 * for every armed timer, and no entry is earlier than its parent. The heap
 * owns one reference to each timer.
 * A timeout armed while its loop runs is kept off the cyclic GC's lists: the
 * running loop is reachable (its run() call holds it), so is all the heap
 * holds, and every full collection would only re-walk each armed timeout to
 * find that out.  A timer leaves the heap tracked again (fired, cancelled,
 * cleared), and ql_timer_heap_track_all() tracks every entry again when the
 * loop stops, so a stopped loop's timers are collectable as asyncio's are.
 * Only timers due QL_TIMER_UNTRACK_AHEAD or more ahead are untracked: those
 * are timeouts and long sleeps, mostly cancelled before they fire, while a
 * short timer fires soon, and if its handle outlives the firing it re-enters
 * the GC's lists in firing order, scattered in memory, which costs the
 * collector more than it saved (RESULTS.md, profiling log entry 17). */
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
    Py_ssize_t untracked;       /* entries off the GC's lists (see above) */
} ql_timer_heap;

#define QL_TIMER_UNTRACK_AHEAD 1.0     /* seconds of loop.time() */

/* Arm t (takes a new reference); untrack: t leaves the GC's lists while
 * armed (the loop runs and t is due QL_TIMER_UNTRACK_AHEAD or more ahead).
 * -1 with MemoryError. */
int ql_timer_heap_push(ql_timer_heap *heap, ql_timer_handle *t, int untrack);
/* Track every entry again: the loop stops running. */
void ql_timer_heap_track_all(ql_timer_heap *heap);
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
