/* anchor.h - what a running loop keeps reachable, kept off the cyclic GC's lists.
 *
 * A running loop is reachable (its run() call holds it), and so is all that
 * its ready ring and timer heap hold, and what those hold in turn: the
 * collector can find no garbage there, and its full collections only re-walk
 * it (a million armed timeouts, a hundred thousand tasks asleep).  So while
 * a loop runs, quickloop untracks
 * - a Handle that call_soon() queues (ready.c), while it is queued;
 * - a TimerHandle armed QL_TIMER_UNTRACK_AHEAD or more ahead (timer.c),
 *   while it is armed;
 * - the quickloop.Future that is such a timer's first argument (the
 *   future of asyncio.sleep() and of 3.11's wait_for()), and the
 *   quickloop tasks waiting on that future, while the timer is armed and
 *   they wait.
 * A waiting task woken by its future stays untracked on the ring, as a
 * queued handle does, until it steps.
 * Invariant: an untracked object is reachable from a running loop through
 * that chain.  Each step that breaks a link tracks again what hung on it: a
 * handle or task leaving the ring; a timer leaving the heap (fired,
 * cancelled, cleared), with its future and the future's waiters; a waiter
 * removed from its future (remove_done_callback, or woken other than on the
 * ring); a task stepping; and the loop stopping, for every handle and task
 * still queued and timer armed.
 * Tracking an object again is always safe: untracking a reachable one only
 * spares the collector work, and nothing else changes (gc.is_tracked() and
 * gc.get_objects() aside; README, "Differences").  The one way around this
 * file is to call asyncio.Future's own C methods unbound on a quickloop
 * future; a waiting task they remove stays untracked until it steps.
 * Apart from these rules, a cancelled handle that refers to nothing at all
 * (no context, no debug record: asyncio.sleep()'s timer) is untracked for
 * good by ql_handle_cancel(), as CPython untracks a tuple of atoms. */
#ifndef QL_ANCHOR_H
#define QL_ANCHOR_H

#include "compat.h"
#include "handle.h"

/* A handle call_soon() just queued in the running loop's ring. */
static inline void
ql_anchor_handle(PyObject *h)
{
    if (PyObject_GC_IsTracked(h)) {
        PyObject_GC_UnTrack(h);
    }
}

/* Track obj again if it was anchored (see above). */
static inline void
ql_anchor_release(PyObject *obj)
{
    if (!PyObject_GC_IsTracked(obj)) {
        PyObject_GC_Track(obj);
    }
}

/* A timer just armed in the running loop's heap, with its future. */
void ql_anchor_timer(ql_timer_handle *t);
/* t leaves the heap (or the loop stops): track it, its future and the
 * future's waiters again. */
void ql_anchor_release_timer(ql_timer_handle *t);
/* task now waits on fut (pending): anchored too if fut is. */
void ql_anchor_wait(PyObject *task, PyObject *fut);
/* fut may drop waiters (remove_done_callback): track its waiting tasks again. */
void ql_anchor_release_waiters(PyObject *fut);

#endif /* QL_ANCHOR_H */
