/* task.h - quickloop.Task: a C subclass of asyncio.Task.  A task's state is
 * its future part (ql_fut's fields, at the same offsets) plus the coroutine
 * and the cancellation bookkeeping of asyncio.tasks.Task.  On a quickloop loop its steps and
 * wake-ups are C entries on the ready ring; elsewhere they go through
 * loop.call_soon() with small callable wrappers. */
#ifndef QL_TASK_H
#define QL_TASK_H

#include <stdint.h>
#include "future.h"
#include "registry.h"

/* The base _asyncio.Task's fields (compat.h), then quickloop's own.  The
 * task's context is a copy it owns (ctxcopy.h), kept out of the base's
 * task_context (which holds None) so that the base's tp_traverse never hands
 * it to gc.get_referents(). */
typedef struct {
    QL_TASK_FIELDS
    PyObject *context;
    PyObject *wakeup;           /* this task's done-callback, made on first wait */
    PyObject *cancel_origin;    /* debug mode: where cancel() was called */
    uint64_t name_id;           /* name is NULL until asked for: "Task-<name_id>" */
    ql_registry_link registry;  /* on quickloop's list of live tasks (registry.h) */
} ql_task;

static inline ql_task *
ql_task_of(PyObject *op)
{
    return (ql_task *)op;
}

/* A new Task for coro on loop (loop.create_task without a factory).  eager:
 * if the loop is running, run the first step now (3.12's eager_start). */
PyObject *ql_task_new(PyObject *loop, PyObject *coro, PyObject *name, PyObject *context,
                      int eager);

/* Ready-ring entries: run a step (exc may be NULL) or a wake-up by fut. */
int ql_task_run_step(PyObject *task, PyObject *exc);
int ql_task_run_wakeup(PyObject *task, PyObject *fut);

/* The wake-up callable a task registers as a done callback on futures that
 * are not exactly quickloop's (borrowed, made once per task; NULL on error). */
PyObject *ql_task_wakeup_callable(PyObject *task);
int ql_task_wakeup_check(PyObject *op);
PyObject *ql_task_wakeup_task(PyObject *wakeup);

int ql_task_type_ready(PyObject *module);

#endif /* QL_TASK_H */
