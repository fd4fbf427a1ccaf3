/* future.h - quickloop.Future: a C subclass of asyncio.Future.
 * quickloop keeps its state in the base type's own fields (compat.h gives
 * their layout per CPython version), with their meaning, and overrides every
 * method.  A Future is exactly as big as asyncio's; a Task's future part is
 * at the same place, so ql_fut_of() is a cast.  Done callbacks on a
 * quickloop loop go straight onto its ready ring as C entries. */
#ifndef QL_FUTURE_H
#define QL_FUTURE_H

#include "compat.h"

typedef enum { QL_PENDING, QL_CANCELLED, QL_FINISHED } ql_fut_state;

/* A done callback: fn(fut) in context.  context None marks a quickloop task
 * waiting on this future: fn is the task itself, woken with no wrapper
 * object (one allocation and one GC object less per wait).  (None and not
 * NULL: the base type's methods expect an object in context0.) */
typedef struct {
    PyObject *fn;
    PyObject *context;
} ql_fut_callback;

/* The first callback is cb0; the others are in `callbacks`, a list of
 * (fn, context) tuples, as asyncio's C Future keeps them. */
typedef struct {
    QL_FUTURE_FIELDS
} ql_fut;

extern PyTypeObject *ql_future_type;
extern PyTypeObject *ql_task_type;

static inline int
ql_task_check(PyObject *op)
{
    return ql_task_type != NULL && PyObject_TypeCheck(op, ql_task_type);
}

static inline int
ql_future_check(PyObject *op)
{
    return PyObject_TypeCheck(op, ql_future_type) || ql_task_check(op);
}

/* Exactly quickloop.Future or quickloop.Task, not a Python subclass: only
 * these may skip method lookups (a subclass may override any method). */
static inline int
ql_future_check_exact(PyObject *op)
{
    return Py_IS_TYPE(op, ql_future_type) || Py_IS_TYPE(op, ql_task_type);
}

/* The quickloop state of a quickloop Future or Task. */
static inline ql_fut *
ql_fut_of(PyObject *op)
{
    return (ql_fut *)op;
}

/* A new pending Future bound to loop (loop.create_future). */
PyObject *ql_future_new(PyObject *loop);
/* Bind f to loop (None: asyncio's current loop); debug records the stack. */
int ql_fut_init(ql_fut *f, PyObject *loop);

int ql_fut_set_result(PyObject *self, ql_fut *f, PyObject *result);
int ql_fut_set_exception(PyObject *self, ql_fut *f, PyObject *exc);
/* 1 if the future was cancelled now, 0 if it was already done. */
int ql_fut_cancel(PyObject *self, ql_fut *f, PyObject *msg);
/* The CancelledError to raise for a cancelled future (a new reference). */
PyObject *ql_fut_make_cancelled_error(ql_fut *f);
/* result(): a new reference, or NULL with the future's exception raised. */
PyObject *ql_fut_result(ql_fut *f);
int ql_fut_add_callback(PyObject *self, ql_fut *f, PyObject *fn, PyObject *context);
/* Wake quickloop task `task` when this future is done. */
int ql_fut_add_wakeup(PyObject *self, ql_fut *f, PyObject *task);

/* Run a done callback queued on the ready ring: fn(fut) in context. */
int ql_fut_run_callback(PyObject *loop, PyObject *fn, PyObject *fut, PyObject *context);

/* Shared by Task: clearing and finalization of the ql_fut part (the base
 * type's tp_traverse visits its fields). */
void ql_fut_clear(ql_fut *f);
void ql_fut_finalize(PyObject *self, ql_fut *f);

/* Method and getset entries shared by Future and Task. */
extern PyMethodDef ql_fut_common_methods[];
extern PyGetSetDef ql_fut_common_getset[];

int ql_future_type_ready(PyObject *module);

#endif /* QL_FUTURE_H */
