/* future.c - quickloop.Future (see future.h).  Semantics are those of
 * asyncio.futures.Future; every method is overridden.  Invariant: while
 * state is PENDING the callbacks are cb0 then the (fn, context) tuples of the
 * `callbacks` list; once done, there are none. */
#include "anchor.h"
#include "ctxcopy.h"
#include "future.h"
#include "loop.h"
#include "module.h"
#include "task.h"

PyTypeObject *ql_future_type;

static PyTypeObject ql_future_iter_type;

/* ---- scheduling done callbacks --------------------------------------------- */

/* loop.call_soon(fn, fut, context=context) for loops without a C queue. */
static int
call_soon_generic(PyObject *loop, PyObject *fn, PyObject *fut, PyObject *context)
{
    PyObject *args[4] = {loop, fn, fut, context};
    PyObject *res = PyObject_VectorcallMethod(ql_state.str_call_soon, args,
                                              3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                              ql_state.kwnames_context);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

/* Queue fn(fut) on the loop: a task's wake-up as a C wake-up entry, anything
 * else as a C callback entry; a foreign or debug-mode loop gets call_soon(). */
static int
schedule_callback(PyObject *loop, PyObject *fn, PyObject *fut, PyObject *context)
{
    int rc;
    if (context == Py_None) {   /* fn is a waiting quickloop task */
        rc = ql_loop_queue(loop, QL_READY_WAKEUP, fn, fut, NULL);
        if (rc > 0) {
            return 0;           /* anchored by the ring if it was (anchor.h) */
        }
        ql_anchor_release(fn);
        if (rc < 0) {
            return -1;
        }
        PyObject *wakeup = ql_task_wakeup_callable(fn);
        return wakeup ? call_soon_generic(loop, wakeup, fut, ql_ctx_share(ql_task_of(fn)->context)) : -1;
    }
    if (ql_task_wakeup_check(fn)) {
        rc = ql_loop_queue(loop, QL_READY_WAKEUP, ql_task_wakeup_task(fn), fut, NULL);
    }
    else {
        rc = ql_loop_queue(loop, QL_READY_CALLBACK, fn, fut, context);
    }
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }
    return call_soon_generic(loop, fn, fut, context);
}

/* How many callbacks there are after cb0. */
static inline Py_ssize_t
more_callbacks(ql_fut *f)
{
    return f->callbacks == NULL ? 0 : PyList_GET_SIZE(f->callbacks);
}

static int
schedule_callbacks(PyObject *self, ql_fut *f)
{
    /* Detach first: a callback scheduled now may add new ones. */
    ql_fut_callback cb0 = f->cb0;
    PyObject *more = f->callbacks;
    f->cb0.fn = f->cb0.context = NULL;
    f->callbacks = NULL;

    int rc = 0;
    if (cb0.fn != NULL) {
        rc = schedule_callback(f->loop, cb0.fn, self, cb0.context);
        Py_DECREF(cb0.fn);
        Py_DECREF(cb0.context);
    }
    for (Py_ssize_t i = 0; more != NULL && rc == 0 && i < PyList_GET_SIZE(more); i++) {
        PyObject *pair = PyList_GET_ITEM(more, i);
        rc = schedule_callback(f->loop, PyTuple_GET_ITEM(pair, 0), self, PyTuple_GET_ITEM(pair, 1));
    }
    Py_XDECREF(more);
    return rc;
}

int
ql_fut_run_callback(PyObject *loop, PyObject *fn, PyObject *fut, PyObject *context)
{
    if (PyContext_Enter(context) < 0) {
        return -1;
    }
    PyObject *res = PyObject_CallOneArg(fn, fut);
    if (PyContext_Exit(context) < 0) {
        Py_XDECREF(res);
        return -1;
    }
    if (res != NULL) {
        Py_DECREF(res);
        return 0;
    }
    /* Report it as the stdlib would, with the Handle it would have used. */
    PyObject *args = PyTuple_Pack(1, fut);
    if (args == NULL) {
        return -1;
    }
    int rc = ql_handle_report_error(loop, fn, args, context);
    Py_DECREF(args);
    return rc;
}

/* Append fn to the pending future's callbacks; steals context (None: fn is
 * a waiting task). */
static int
append_callback(ql_fut *f, PyObject *fn, PyObject *context)
{
    if (ql_fault_point() < 0) {
        Py_DECREF(context);
        return -1;
    }
    if (f->cb0.fn == NULL && more_callbacks(f) == 0) {
        f->cb0.fn = Py_NewRef(fn);
        f->cb0.context = context;
        return 0;
    }
    if (f->callbacks == NULL) {
        f->callbacks = PyList_New(0);
        if (f->callbacks == NULL) {
            Py_DECREF(context);
            return -1;
        }
    }
    PyObject *pair = PyTuple_Pack(2, fn, context);
    Py_DECREF(context);
    int rc = pair == NULL ? -1 : PyList_Append(f->callbacks, pair);
    Py_XDECREF(pair);
    return rc;
}

int
ql_fut_add_callback(PyObject *self, ql_fut *f, PyObject *fn, PyObject *context)
{
    PyObject *ctx;
    if (context == NULL || context == Py_None) {
        ctx = PyContext_CopyCurrent();
        if (ctx == NULL) {
            return -1;
        }
    }
    else {
        ctx = Py_NewRef(context);
    }
    if (f->state != QL_PENDING) {
        int rc = schedule_callback(f->loop, fn, self, ctx);
        Py_DECREF(ctx);
        return rc;
    }
    return append_callback(f, fn, ctx);
}

int
ql_fut_add_wakeup(PyObject *self, ql_fut *f, PyObject *task)
{
    if (f->state != QL_PENDING) {
        return schedule_callback(f->loop, task, self, Py_None);
    }
    return append_callback(f, task, Py_NewRef(Py_None));
}

/* A callback as Python sees it: a waiting task shows as its wake-up
 * callable in its own context (new references). */
static int
callback_view(ql_fut_callback *cb, PyObject **fn, PyObject **context)
{
    if (cb->context != Py_None) {
        *fn = Py_NewRef(cb->fn);
        *context = Py_NewRef(cb->context);
        return 0;
    }
    PyObject *wakeup = ql_task_wakeup_callable(cb->fn);
    if (wakeup == NULL) {
        return -1;
    }
    *fn = Py_NewRef(wakeup);
    *context = Py_NewRef(ql_ctx_share(ql_task_of(cb->fn)->context));
    return 0;
}

/* ---- state transitions ----------------------------------------------------- */

static const char *
state_name(ql_fut_state state)
{
    return state == QL_PENDING ? "PENDING" : state == QL_CANCELLED ? "CANCELLED" : "FINISHED";
}

/* Room on the ready ring for every done callback, taken before the state
 * changes: a MemoryError then leaves the future pending and whole instead of
 * done with some callbacks never run. */
static int
reserve_callbacks(ql_fut *f)
{
    return ql_loop_reserve(f->loop, (size_t)more_callbacks(f) + (f->cb0.fn != NULL));
}

static int
check_pending(ql_fut *f)
{
    if (f->loop == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Future object is not initialized.");
        return -1;
    }
    if (f->state != QL_PENDING) {
        PyErr_SetString(ql_state.InvalidStateError, "invalid state");   /* as _asyncio */
        return -1;
    }
    return reserve_callbacks(f);
}

int
ql_fut_set_result(PyObject *self, ql_fut *f, PyObject *result)
{
    if (check_pending(f) < 0) {
        return -1;
    }
    f->result = Py_NewRef(result);
    f->state = QL_FINISHED;
    return schedule_callbacks(self, f);
}

int
ql_fut_set_exception(PyObject *self, ql_fut *f, PyObject *exc)
{
    if (check_pending(f) < 0) {
        return -1;
    }
    PyObject *value;
    if (PyExceptionClass_Check(exc)) {
        value = PyObject_CallNoArgs(exc);
        if (value == NULL) {
            return -1;
        }
        if (!PyExceptionInstance_Check(value)) {
            Py_DECREF(value);
            PyErr_SetString(PyExc_TypeError, "invalid exception object");
            return -1;
        }
    }
    else if (PyExceptionInstance_Check(exc)) {
        value = Py_NewRef(exc);
    }
    else {
        PyErr_SetString(PyExc_TypeError, "invalid exception object");
        return -1;
    }
    if (QL_SET_EXCEPTION_WRAPS_STOP_ITERATION
        && PyErr_GivenExceptionMatches(value, PyExc_StopIteration)) {
        PyObject *wrapped = PyObject_CallFunction(
            PyExc_RuntimeError, "s", "StopIteration interacts badly with generators "
                                     "and cannot be raised into a Future");
        if (wrapped == NULL) {
            Py_DECREF(value);
            return -1;
        }
        PyException_SetCause(wrapped, Py_NewRef(value));
        PyException_SetContext(wrapped, value);     /* steals value */
        value = wrapped;
    }
    else if (Py_IS_TYPE(value, (PyTypeObject *)PyExc_StopIteration)) {
        Py_DECREF(value);
        PyErr_SetString(PyExc_TypeError,
                        "StopIteration interacts badly with generators "
                        "and cannot be raised into a Future");
        return -1;
    }
    f->exception = value;
    f->exception_tb = PyException_GetTraceback(value);
    f->state = QL_FINISHED;
    if (schedule_callbacks(self, f) < 0) {
        return -1;
    }
    f->log_tb = 1;
    return 0;
}

int
ql_fut_cancel(PyObject *self, ql_fut *f, PyObject *msg)
{
    f->log_tb = 0;
    if (f->state != QL_PENDING) {
        return 0;
    }
    if (reserve_callbacks(f) < 0) {
        return -1;
    }
    f->state = QL_CANCELLED;
    Py_XSETREF(f->cancel_msg, Py_XNewRef(msg));
    if (schedule_callbacks(self, f) < 0) {
        return -1;
    }
    return 1;
}

PyObject *
ql_fut_make_cancelled_error(ql_fut *f)
{
    if (f->cancelled_exc != NULL) {
        /* The CancelledError that ended a task: raised once, as is. */
        PyObject *exc = f->cancelled_exc;
        f->cancelled_exc = NULL;
        return exc;
    }
    if (f->cancel_msg == NULL || f->cancel_msg == Py_None) {
        return PyObject_CallNoArgs(ql_state.CancelledError);
    }
    return PyObject_CallOneArg(ql_state.CancelledError, f->cancel_msg);
}

static void
raise_with_traceback(PyObject *exc, PyObject *tb)
{
    PyException_SetTraceback(exc, tb ? tb : Py_None);
    ql_err_restore(Py_NewRef(exc));
}

PyObject *
ql_fut_result(ql_fut *f)
{
    if (f->state == QL_CANCELLED) {
        PyObject *exc = ql_fut_make_cancelled_error(f);
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    if (f->state != QL_FINISHED) {
        PyErr_SetString(ql_state.InvalidStateError, "Result is not set.");
        return NULL;
    }
    f->log_tb = 0;
    if (f->exception != NULL) {
        raise_with_traceback(f->exception, f->exception_tb);
        return NULL;
    }
    return Py_NewRef(f->result);
}

int
ql_fut_init(ql_fut *f, PyObject *loop)
{
    ql_fut_clear(f);
    if (loop == NULL || loop == Py_None) {
        loop = PyObject_CallNoArgs(ql_state.get_event_loop);
        if (loop == NULL) {
            return -1;
        }
    }
    else {
        Py_INCREF(loop);
    }
    f->loop = loop;
    f->state = QL_PENDING;
    int debug;
    if (ql_loop_check(loop)) {
        debug = ((ql_loop *)loop)->debug;
    }
    else {
        PyObject *res = PyObject_CallMethod(loop, "get_debug", NULL);
        if (res == NULL) {
            return -1;
        }
        debug = PyObject_IsTrue(res);
        Py_DECREF(res);
        if (debug < 0) {
            return -1;
        }
    }
    if (debug) {
        f->source_traceback = PyObject_CallNoArgs(ql_state.extract_stack);
        if (f->source_traceback == NULL) {
            return -1;
        }
    }
    return 0;
}

PyObject *
ql_future_new(PyObject *loop)
{
    if (ql_fault_point() < 0) {
        return NULL;
    }
    PyObject *self = ql_future_type->tp_alloc(ql_future_type, 0);
    if (self == NULL) {
        return NULL;
    }
    if (ql_fut_init(ql_fut_of(self), loop) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return self;
}

/* ---- GC and finalization ----------------------------------------------------- */

void
ql_fut_clear(ql_fut *f)
{
    /* Callbacks first and the loop last: dropping a callback can run any
     * code (a __del__ calling cancel() on this very future), which must find
     * the future whole. */
    f->log_tb = 0;
    Py_CLEAR(f->cb0.fn);
    Py_CLEAR(f->cb0.context);
    Py_CLEAR(f->callbacks);
    Py_CLEAR(f->result);
    Py_CLEAR(f->exception);
    Py_CLEAR(f->exception_tb);
    Py_CLEAR(f->cancel_msg);
    Py_CLEAR(f->cancelled_exc);
    Py_CLEAR(f->source_traceback);
    f->log_tb = 0;
    Py_CLEAR(f->loop);
}

/* An exception nobody retrieved is reported, as Future.__del__ does. */
void
ql_fut_finalize(PyObject *self, ql_fut *f)
{
    if (!f->log_tb || f->loop == NULL) {
        return;
    }
    f->log_tb = 0;
    PyObject *exc = ql_err_take();
    PyObject *context = PyDict_New();
    PyObject *message = PyUnicode_FromFormat("%s exception was never retrieved",
                                             _PyType_Name(Py_TYPE(self)));
    if (context == NULL || message == NULL
        || PyDict_SetItemString(context, "message", message) < 0
        || PyDict_SetItemString(context, "exception", f->exception) < 0
        || PyDict_SetItemString(context, "future", self) < 0
        || (f->source_traceback != NULL
            && PyDict_SetItemString(context, "source_traceback", f->source_traceback) < 0)) {
        goto done;
    }
    PyObject *res = PyObject_CallMethod(f->loop, "call_exception_handler", "O", context);
    Py_XDECREF(res);
done:
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(self);
    }
    Py_XDECREF(message);
    Py_XDECREF(context);
    if (exc != NULL) {
        ql_err_restore(exc);
    }
}

/* ---- Python methods (shared by Future and Task) ------------------------------- */

static ql_fut *
fut_ready(PyObject *self)
{
    ql_fut *f = ql_fut_of(self);
    if (f->loop == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Future object is not initialized.");
        return NULL;
    }
    return f;
}

/* result() and exception() of a never-initialised future report it as not
 * done (InvalidStateError), as asyncio's do. */
static PyObject *
fut_result(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return ql_fut_result(ql_fut_of(self));
}

static PyObject *
fut_exception(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ql_fut *f = ql_fut_of(self);
    if (f->state == QL_CANCELLED) {
        return ql_fut_result(f);    /* raises the CancelledError */
    }
    if (f->state != QL_FINISHED) {
        PyErr_SetString(ql_state.InvalidStateError, "Exception is not set.");
        return NULL;
    }
    f->log_tb = 0;
    return Py_NewRef(f->exception ? f->exception : Py_None);
}

static PyObject *
fut_done(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ql_fut *f = ql_fut_of(self);
    return PyBool_FromLong(f->loop != NULL && f->state != QL_PENDING);
}

static PyObject *
fut_cancelled(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ql_fut *f = ql_fut_of(self);
    return PyBool_FromLong(f->loop != NULL && f->state == QL_CANCELLED);
}

static PyObject *
fut_get_loop_method(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ql_fut *f = fut_ready(self);
    return f ? Py_NewRef(f->loop) : NULL;
}

static PyObject *
fut_add_done_callback(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames)
{
    static const char *const kwlist[] = {"fn", "context", NULL};
    PyObject *parsed[2];
    ql_fut *f = fut_ready(self);
    if (f == NULL
        || ql_parse_args("add_done_callback", args, nargs, kwnames, kwlist, 1, 1, parsed) < 0
        || ql_fut_add_callback(self, f, parsed[0], parsed[1]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
fut_remove_done_callback(PyObject *self, PyObject *fn)
{
    ql_fut *f = fut_ready(self);
    if (f == NULL) {
        return NULL;
    }
    ql_anchor_release_waiters(self);
    /* Take the callbacks out while comparing: __eq__ may run arbitrary code. */
    PyObject *more = f->callbacks;
    Py_ssize_t n = (f->cb0.fn != NULL) + (more == NULL ? 0 : PyList_GET_SIZE(more));
    ql_fut_callback *all = PyMem_Malloc((n ? n : 1) * sizeof(*all));
    if (all == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t k = 0;
    if (f->cb0.fn != NULL) {
        all[k++] = f->cb0;
    }
    for (Py_ssize_t i = 0; k < n; i++) {
        PyObject *pair = PyList_GET_ITEM(more, i);
        all[k].fn = Py_NewRef(PyTuple_GET_ITEM(pair, 0));
        all[k++].context = Py_NewRef(PyTuple_GET_ITEM(pair, 1));
    }
    f->cb0.fn = f->cb0.context = NULL;
    f->callbacks = NULL;
    Py_XDECREF(more);

    Py_ssize_t removed = 0, kept = 0;
    int error = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *seen = all[i].context != Py_None ? all[i].fn : ql_task_wakeup_callable(all[i].fn);
        int eq = error || seen == NULL ? -1 : PyObject_RichCompareBool(seen, fn, Py_EQ);
        if (eq < 0) {
            error = 1;
            eq = 0;
        }
        if (eq) {
            removed++;
            Py_DECREF(all[i].fn);
            Py_DECREF(all[i].context);
        }
        else {
            all[kept++] = all[i];
        }
    }
    /* Put back what is kept, in order, ahead of anything added meanwhile. */
    for (Py_ssize_t i = 0; i < kept; i++) {
        if (!error && f->state == QL_PENDING
            && append_callback(f, all[i].fn, Py_NewRef(all[i].context)) < 0) {
            error = 1;
        }
        Py_DECREF(all[i].fn);
        Py_DECREF(all[i].context);
    }
    PyMem_Free(all);
    if (error) {
        return NULL;
    }
    return PyLong_FromSsize_t(removed);
}

static PyObject *
fut_make_cancelled_error_method(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return ql_fut_make_cancelled_error(ql_fut_of(self));
}

static PyObject *
fut_set_result(PyObject *self, PyObject *result)
{
    if (ql_fut_set_result(self, ql_fut_of(self), result) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
fut_set_exception(PyObject *self, PyObject *exc)
{
    if (ql_fut_set_exception(self, ql_fut_of(self), exc) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
fut_cancel(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"msg", NULL};
    PyObject *msg;
    if (ql_parse_args("cancel", args, nargs, kwnames, kwlist, 1, 0, &msg) < 0) {
        return NULL;
    }
    ql_fut *f = fut_ready(self);
    if (f == NULL) {
        return NULL;
    }
    int rc = ql_fut_cancel(self, f, msg ? msg : Py_None);
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}

static PyObject *
fut_repr(PyObject *self)
{
    return PyObject_CallOneArg(ql_state.future_repr, self);
}

static int
fut_tp_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"loop", NULL};
    PyObject *loop = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$O:Future", kwlist, &loop)) {
        return -1;
    }
    return ql_fut_init(ql_fut_of(self), loop);
}

/* ---- attributes ------------------------------------------------------------------ */

static PyObject *
get_or_none(PyObject *v)
{
    return Py_NewRef(v ? v : Py_None);
}

static PyObject *fut_get_loop(PyObject *self, void *Py_UNUSED(c)) { return get_or_none(ql_fut_of(self)->loop); }
static PyObject *fut_get_result(PyObject *self, void *Py_UNUSED(c)) { return get_or_none(ql_fut_of(self)->result); }
static PyObject *fut_get_exception(PyObject *self, void *Py_UNUSED(c)) { return get_or_none(ql_fut_of(self)->exception); }
static PyObject *fut_get_source_tb(PyObject *self, void *Py_UNUSED(c)) { return get_or_none(ql_fut_of(self)->source_traceback); }

static PyObject *
fut_get_state(PyObject *self, void *Py_UNUSED(c))
{
    ql_fut *f = ql_fut_of(self);
    if (f->loop == NULL) {
        Py_RETURN_NONE;
    }
    return PyUnicode_FromString(state_name(f->state));
}

static PyObject *
fut_get_callbacks(PyObject *self, void *Py_UNUSED(c))
{
    ql_fut *f = ql_fut_of(self);
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    /* Hold what is read: making a wake-up callable may run a collection,
     * and a finalizer could change the callbacks meanwhile. */
    PyObject *more = Py_XNewRef(f->callbacks);
    int rc = 0;
    for (Py_ssize_t i = -1; rc == 0 && i < (more ? PyList_GET_SIZE(more) : 0); i++) {
        ql_fut_callback cb = f->cb0;
        if (i >= 0) {
            PyObject *pair = PyList_GET_ITEM(more, i);
            cb.fn = PyTuple_GET_ITEM(pair, 0);
            cb.context = PyTuple_GET_ITEM(pair, 1);
        }
        if (cb.fn == NULL) {
            continue;
        }
        Py_INCREF(cb.fn);
        Py_INCREF(cb.context);
        PyObject *fn, *context, *pair = NULL;
        rc = callback_view(&cb, &fn, &context);
        Py_DECREF(cb.fn);
        Py_DECREF(cb.context);
        if (rc == 0) {
            pair = PyTuple_Pack(2, fn, context);
            Py_DECREF(fn);
            Py_DECREF(context);
        }
        rc = pair == NULL ? -1 : PyList_Append(list, pair);
        Py_XDECREF(pair);
    }
    Py_XDECREF(more);
    if (rc < 0) {
        Py_CLEAR(list);
    }
    else if (PyList_GET_SIZE(list) == 0) {
        /* None when it holds none, as asyncio's C Future reads. */
        Py_SETREF(list, Py_NewRef(Py_None));
    }
    return list;
}

static PyObject *
fut_get_blocking(PyObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(ql_fut_of(self)->blocking);
}

static int
fut_set_blocking(PyObject *self, PyObject *value, void *Py_UNUSED(c))
{
    int truth;
    if (ql_bool_value(value, &truth) < 0) {
        return -1;
    }
    ql_fut_of(self)->blocking = truth;     /* a bit-field on 3.13 */
    return 0;
}

static PyObject *
fut_get_log_traceback(PyObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(ql_fut_of(self)->log_tb);
}

static int
fut_set_log_traceback(PyObject *self, PyObject *value, void *Py_UNUSED(c))
{
    int truth;
    if (ql_bool_value(value, &truth) < 0) {
        return -1;
    }
    if (truth) {
        PyErr_SetString(PyExc_ValueError, "_log_traceback can only be set to False");
        return -1;
    }
    ql_fut_of(self)->log_tb = 0;
    return 0;
}

static PyObject *
fut_get_cancel_message(PyObject *self, void *Py_UNUSED(c))
{
    return get_or_none(ql_fut_of(self)->cancel_msg);
}

static int
fut_set_cancel_message(PyObject *self, PyObject *value, void *Py_UNUSED(c))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete attribute");
        return -1;
    }
    Py_XSETREF(ql_fut_of(self)->cancel_msg, Py_NewRef(value));
    return 0;
}

PyMethodDef ql_fut_common_methods[] = {
    {"result", fut_result, METH_NOARGS, "Return the result, or raise the exception."},
    {"exception", fut_exception, METH_NOARGS, "Return the exception, or None."},
    {"done", fut_done, METH_NOARGS, "True if the future is done."},
    {"cancelled", fut_cancelled, METH_NOARGS, "True if the future was cancelled."},
    {"get_loop", fut_get_loop_method, METH_NOARGS, "The loop the future is bound to."},
    {"add_done_callback", (PyCFunction)(void (*)(void))fut_add_done_callback,
     METH_FASTCALL | METH_KEYWORDS, "add_done_callback(fn, *, context=None)"},
    {"remove_done_callback", fut_remove_done_callback, METH_O,
     "Remove every instance of fn; return how many were removed."},
    {"_make_cancelled_error", fut_make_cancelled_error_method, METH_NOARGS, NULL},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS, NULL},
    {NULL, NULL, 0, NULL},
};

PyGetSetDef ql_fut_common_getset[] = {
    {"_state", fut_get_state, NULL, NULL, NULL},
    {"_loop", fut_get_loop, NULL, NULL, NULL},
    {"_result", fut_get_result, NULL, NULL, NULL},
    {"_exception", fut_get_exception, NULL, NULL, NULL},
    {"_callbacks", fut_get_callbacks, NULL, NULL, NULL},
    {"_source_traceback", fut_get_source_tb, NULL, NULL, NULL},
    {"_asyncio_future_blocking", fut_get_blocking, fut_set_blocking, NULL, NULL},
    {"_log_traceback", fut_get_log_traceback, fut_set_log_traceback, NULL, NULL},
    {"_cancel_message", fut_get_cancel_message, fut_set_cancel_message, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef future_own_methods[] = {
    {"set_result", fut_set_result, METH_O, "Mark the future done with a result."},
    {"set_exception", fut_set_exception, METH_O, "Mark the future done with an exception."},
    {"cancel", (PyCFunction)(void (*)(void))fut_cancel, METH_FASTCALL | METH_KEYWORDS,
     "cancel(msg=None): cancel the future and schedule its callbacks."},
    {NULL, NULL, 0, NULL},
};

/* ---- the await iterator ------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *future;
} ql_future_iter;

static PySendResult
future_iter_am_send(ql_future_iter *it, PyObject *Py_UNUSED(arg), PyObject **result)
{
    PyObject *fut = it->future;
    *result = NULL;
    if (fut == NULL) {
        *result = Py_NewRef(Py_None);
        return PYGEN_RETURN;
    }
    ql_fut *f = ql_fut_of(fut);
    if (f->state == QL_PENDING) {
        if (!f->blocking) {
            f->blocking = 1;
            *result = Py_NewRef(fut);
            return PYGEN_NEXT;
        }
        PyErr_SetString(PyExc_RuntimeError, "await wasn't used with future");
        return PYGEN_ERROR;
    }
    it->future = NULL;
    *result = ql_fut_result(f);
    Py_DECREF(fut);
    return *result ? PYGEN_RETURN : PYGEN_ERROR;
}

static PyObject *
future_iter_next(ql_future_iter *it)
{
    PyObject *result;
    PySendResult rc = future_iter_am_send(it, Py_None, &result);
    if (rc != PYGEN_RETURN) {
        return result;      /* the yielded future, or NULL with an error */
    }
    if (result != Py_None) {
        /* StopIteration(value), built explicitly so a tuple stays one value. */
        PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, result);
        if (stop != NULL) {
            PyErr_SetObject(PyExc_StopIteration, stop);
            Py_DECREF(stop);
        }
    }
    Py_DECREF(result);
    return NULL;
}

static PyObject *
future_iter_send(ql_future_iter *it, PyObject *Py_UNUSED(value))
{
    /* As a method, "exhausted" must be spelled StopIteration. */
    PyObject *res = future_iter_next(it);
    if (res == NULL && !PyErr_Occurred()) {
        PyErr_SetNone(PyExc_StopIteration);
    }
    return res;
}

static PyObject *
future_iter_throw(ql_future_iter *it, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw() takes 1 to 3 arguments");
        return NULL;
    }
    if (ql_warn_throw_signature(nargs) < 0) {
        return NULL;
    }
    PyObject *type = args[0];
    PyObject *value = nargs > 1 && args[1] != Py_None ? args[1] : NULL;
    PyObject *tb = nargs > 2 && args[2] != Py_None ? args[2] : NULL;
    PyObject *exc;
    if (tb != NULL && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError, "throw() third argument must be a traceback");
        return NULL;
    }
    if (PyExceptionInstance_Check(type)) {
        if (value != NULL) {
            PyErr_SetString(PyExc_TypeError,
                            "instance exception may not have a separate value");
            return NULL;
        }
        exc = Py_NewRef(type);
    }
    else if (PyExceptionClass_Check(type)) {
        if (value == NULL) {
            exc = PyObject_CallNoArgs(type);
        }
        else if (PyExceptionInstance_Check(value)
                 && PyObject_IsInstance(value, type) == 1) {
            exc = Py_NewRef(value);
        }
        else if (PyTuple_Check(value)) {
            exc = PyObject_Call(type, value, NULL);
        }
        else {
            exc = PyObject_CallOneArg(type, value);
        }
        if (exc == NULL) {
            return NULL;
        }
    }
    else {
        PyErr_SetString(PyExc_TypeError,
                        "exceptions must be classes deriving BaseException");
        return NULL;
    }
    Py_CLEAR(it->future);
    if (tb != NULL) {
        PyException_SetTraceback(exc, tb);
    }
    ql_err_restore(exc);
    return NULL;
}

static PyObject *
future_iter_close(ql_future_iter *it, PyObject *Py_UNUSED(ignored))
{
    Py_CLEAR(it->future);
    Py_RETURN_NONE;
}

static int
future_iter_traverse(ql_future_iter *it, visitproc visit, void *arg)
{
    Py_VISIT(it->future);
    return 0;
}

static int
future_iter_clear(ql_future_iter *it)
{
    Py_CLEAR(it->future);
    return 0;
}

static void
future_iter_dealloc(ql_future_iter *it)
{
    PyObject_GC_UnTrack(it);
    Py_CLEAR(it->future);
    PyObject_GC_Del(it);
}

static PyAsyncMethods future_iter_as_async = {
    .am_send = (sendfunc)future_iter_am_send,
};

static PyMethodDef future_iter_methods[] = {
    {"send", (PyCFunction)future_iter_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))future_iter_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)future_iter_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ql_future_iter_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "quickloop.FutureIter",
    .tp_basicsize = sizeof(ql_future_iter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)future_iter_dealloc,
    .tp_traverse = (traverseproc)future_iter_traverse,
    .tp_clear = (inquiry)future_iter_clear,
    .tp_as_async = &future_iter_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)future_iter_next,
    .tp_methods = future_iter_methods,
};

PyObject *
ql_future_await(PyObject *self)
{
    if (fut_ready(self) == NULL) {
        return NULL;
    }
    ql_future_iter *it = PyObject_GC_New(ql_future_iter, &ql_future_iter_type);
    if (it == NULL) {
        return NULL;
    }
    it->future = Py_NewRef(self);
    PyObject_GC_Track(it);
    return (PyObject *)it;
}

/* ---- the type ------------------------------------------------------------------------ */

static int
future_traverse(PyObject *self, visitproc visit, void *arg)
{
#if !QL_ASYNCIO_BASE_IS_HEAPTYPE
    Py_VISIT(Py_TYPE(self));
#endif
    /* Every field is the base's: its traverse visits them. */
    return ((PyTypeObject *)ql_state.asyncio_future)->tp_traverse(self, visit, arg);
}

static int
future_clear(PyObject *self)
{
    ql_fut_clear(ql_fut_of(self));
    return ((PyTypeObject *)ql_state.asyncio_future)->tp_clear(self);
}

static void
future_finalize(PyObject *self)
{
    ql_fut_finalize(self, ql_fut_of(self));
}

static void
future_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc(self) < 0) {
        return;     /* resurrected */
    }
    PyObject_GC_UnTrack(self);
    ql_fut_clear(ql_fut_of(self));
    ((PyTypeObject *)ql_state.asyncio_future)->tp_dealloc(self);
#if !QL_ASYNCIO_BASE_IS_HEAPTYPE
    Py_DECREF(tp);
#else
    (void)tp;
#endif
}

PyMethodDef *
ql_methods_concat(const PyMethodDef *a, const PyMethodDef *b)
{
    Py_ssize_t na = 0, nb = 0;
    while (a[na].ml_name) {
        na++;
    }
    while (b[nb].ml_name) {
        nb++;
    }
    PyMethodDef *all = PyMem_Calloc(na + nb + 1, sizeof(PyMethodDef));
    if (all == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(all, a, na * sizeof(PyMethodDef));
    memcpy(all + na, b, nb * sizeof(PyMethodDef));
    return all;
}

PyGetSetDef *
ql_getset_concat(const PyGetSetDef *a, const PyGetSetDef *b)
{
    Py_ssize_t na = 0, nb = 0;
    while (a[na].name) {
        na++;
    }
    while (b[nb].name) {
        nb++;
    }
    PyGetSetDef *all = PyMem_Calloc(na + nb + 1, sizeof(PyGetSetDef));
    if (all == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(all, a, na * sizeof(PyGetSetDef));
    memcpy(all + na, b, nb * sizeof(PyGetSetDef));
    return all;
}

Py_ssize_t
ql_subclass_offset(PyObject *base)
{
    Py_ssize_t size = ((PyTypeObject *)base)->tp_basicsize;
    Py_ssize_t align = (Py_ssize_t)sizeof(void *);
    return (size + align - 1) / align * align;
}

int
ql_future_type_ready(PyObject *module)
{
    if (PyType_Ready(&ql_future_iter_type) < 0) {
        return -1;
    }
    PyMethodDef *methods = ql_methods_concat(ql_fut_common_methods, future_own_methods);
    if (methods == NULL) {
        return -1;
    }
    if (ql_asyncio_layout_check((PyTypeObject *)ql_state.asyncio_future, sizeof(ql_fut),
                                QL_ASYNCIO_DICT_OFFSETS(ql_fut)) < 0) {
        return -1;
    }
    PyType_Slot slots[] = {
        {Py_tp_doc, "A quickloop Future: asyncio.Future with a C core."},
        {Py_tp_init, fut_tp_init},
        {Py_tp_repr, fut_repr},
        {Py_tp_traverse, future_traverse},
        {Py_tp_clear, future_clear},
        {Py_tp_finalize, future_finalize},
        {Py_tp_dealloc, future_dealloc},
        {Py_tp_iter, ql_future_await},
        {Py_am_await, ql_future_await},
        {Py_tp_methods, methods},
        {Py_tp_getset, ql_fut_common_getset},
        {0, NULL},
    };
    PyType_Spec spec = {
        .name = "quickloop.Future",
        .basicsize = (int)sizeof(ql_fut),
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
        .slots = slots,
    };
    ql_future_type = (PyTypeObject *)PyType_FromSpecWithBases(&spec, ql_state.asyncio_future);
    if (ql_future_type == NULL) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "Future", (PyObject *)ql_future_type);
}
