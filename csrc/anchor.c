/* anchor.c - what a running loop keeps reachable, off the GC's lists (see
 * anchor.h for the chain and the invariant). */
#include "anchor.h"
#include "future.h"

/* The quickloop.Future among a timer's arguments, or NULL.  Only the exact
 * type: a Python subclass may hold anything in its __dict__. */
static PyObject *
timer_future(ql_timer_handle *t)
{
    ql_handle *h = &t->base;
    if (h->callback == NULL || h->nargs < 1 || h->nargs > QL_HANDLE_INLINE_ARGS) {
        return NULL;
    }
    /* Its waiters are woken on its loop's ring, anchored only if that is
     * the running loop whose heap holds t. */
    PyObject *arg = h->argv[0];
    return Py_IS_TYPE(arg, ql_future_type) && ql_fut_of(arg)->loop == h->loop ? arg : NULL;
}

/* Apply fn to each quickloop task waiting on f (a callback whose context is
 * None: see future.h). */
static void
for_each_waiter(ql_fut *f, void (*fn)(PyObject *))
{
    if (f->cb0.fn != NULL && f->cb0.context == Py_None) {
        fn(f->cb0.fn);
    }
    if (f->callbacks != NULL) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(f->callbacks); i++) {
            PyObject *pair = PyList_GET_ITEM(f->callbacks, i);
            if (PyTuple_GET_ITEM(pair, 1) == Py_None) {
                fn(PyTuple_GET_ITEM(pair, 0));
            }
        }
    }
}

/* Only exact quickloop tasks are untracked, for the reason timer_future()
 * gives. */
static void
anchor_task(PyObject *task)
{
    if (Py_IS_TYPE(task, ql_task_type) && PyObject_GC_IsTracked(task)) {
        PyObject_GC_UnTrack(task);
    }
}

void
ql_anchor_timer(ql_timer_handle *t)
{
    ql_anchor_handle((PyObject *)t);
    PyObject *fut = timer_future(t);
    if (fut != NULL && PyObject_GC_IsTracked(fut)) {
        PyObject_GC_UnTrack(fut);
        if (ql_fut_of(fut)->state == QL_PENDING) {
            for_each_waiter(ql_fut_of(fut), anchor_task);
        }
    }
}

void
ql_anchor_release_timer(ql_timer_handle *t)
{
    ql_anchor_release((PyObject *)t);
    PyObject *fut = timer_future(t);
    if (fut != NULL && !PyObject_GC_IsTracked(fut)) {
        for_each_waiter(ql_fut_of(fut), ql_anchor_release);
        PyObject_GC_Track(fut);
    }
}

void
ql_anchor_wait(PyObject *task, PyObject *fut)
{
    if (Py_IS_TYPE(fut, ql_future_type) && !PyObject_GC_IsTracked(fut)
        && ql_fut_of(fut)->state == QL_PENDING) {
        anchor_task(task);
    }
}

void
ql_anchor_release_waiters(PyObject *fut)
{
    if (Py_IS_TYPE(fut, ql_future_type) && !PyObject_GC_IsTracked(fut)) {
        for_each_waiter(ql_fut_of(fut), ql_anchor_release);
    }
}
