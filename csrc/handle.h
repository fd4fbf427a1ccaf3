/* handle.h - Handle and TimerHandle: a callback, its arguments and the
 * contextvars.Context it runs in.  A TimerHandle also carries its deadline and
 * its place in the loop's timer heap (heap_index, -1 when not armed). */
#ifndef QL_HANDLE_H
#define QL_HANDLE_H

#include <stdint.h>
#include "compat.h"

/* Most callbacks take at most this many arguments: those live in the handle
 * itself, with no tuple to allocate (and no extra object for the GC). */
#define QL_HANDLE_INLINE_ARGS 2

/* Kept small: a pending timer is one of these, and the GC's full collections
 * read every one (a TimerHandle is 128 bytes with its GC header). */
typedef struct {
    PyObject_HEAD
    PyObject *callback;         /* NULL once cancelled */
    union {                     /* which one: callback != NULL (live) or not */
        PyObject *args;         /* live: more than QL_HANDLE_INLINE_ARGS, a tuple */
        PyObject *frozen_repr;  /* cancelled in debug mode: repr() as it was */
    };
    PyObject *argv[QL_HANDLE_INLINE_ARGS];  /* else the arguments themselves */
    int nargs;                  /* 0 once cancelled */
    int cancelled;
    PyObject *context;
    PyObject *loop;
    PyObject *source_traceback; /* debug mode only */
} ql_handle;

typedef struct {
    ql_handle base;
    double when;                /* as given, returned by when() */
    int64_t deadline;           /* nanoseconds on CLOCK_MONOTONIC */
    uint64_t seq;               /* arming order, breaks deadline ties */
    Py_ssize_t heap_index;
} ql_timer_handle;

extern PyTypeObject ql_handle_type;
extern PyTypeObject ql_timer_handle_type;

#define ql_handle_check(op) \
    (Py_IS_TYPE((op), &ql_handle_type) || Py_IS_TYPE((op), &ql_timer_handle_type))

/* New handles for callback(*argv[:nargs]); context may be NULL or None (the
 * current context is copied). debug records the creation traceback. */
ql_handle *ql_handle_new(PyObject *loop, PyObject *callback, PyObject *const *argv,
                         Py_ssize_t nargs, PyObject *context, int debug);
ql_timer_handle *ql_timer_handle_new(PyObject *loop, double when, int64_t deadline,
                                     PyObject *callback, PyObject *const *argv,
                                     Py_ssize_t nargs, PyObject *context, int debug);

/* Run the callback in its context.  Exceptions go to the loop's exception
 * handler; returns -1 (exception set) only for SystemExit and
 * KeyboardInterrupt, or if the exception handler itself lets one escape. */
int ql_handle_run(ql_handle *h);

/* An exception is raised by fn(*args), run for loop in context without a
 * Handle: report it to the loop's exception handler as if a Handle had run
 * it.  SystemExit and KeyboardInterrupt are left raised (returns -1). */
int ql_handle_report_error(PyObject *loop, PyObject *fn, PyObject *args,
                           PyObject *context);

/* Cancel: disarm a timer, drop the callback and its arguments. -1 only if
 * building the debug-mode repr fails. */
int ql_handle_cancel(ql_handle *h);

int ql_handle_types_ready(PyObject *module);

#endif /* QL_HANDLE_H */
