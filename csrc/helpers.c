/* helpers.c - timeout(), timeout_at(), shield() and eager_task_factory()
 * (see helpers.h).  Invariant for Timeout: a timer is armed (handler set)
 * only in the ENTERED state; leaving it always disarms the timer. */
#include "future.h"
#include "helpers.h"
#include "loop.h"
#include "module.h"
#include "task.h"
#include <stddef.h>

/* ---- an awaitable that is already done ------------------------------------- */
/* What Timeout.__aenter__/__aexit__ return: `await` gives value at once. */

typedef struct {
    PyObject_HEAD
    PyObject *value;
    int used;           /* awaited once: a second await is an error, as for a coroutine */
} ql_done_awaitable;

static PyTypeObject ql_done_awaitable_type;

static PyObject *
done_awaitable_new(PyObject *value)
{
    ql_done_awaitable *a = PyObject_GC_New(ql_done_awaitable, &ql_done_awaitable_type);
    if (a == NULL) {
        return NULL;
    }
    a->value = Py_NewRef(value);
    a->used = 0;
    PyObject_GC_Track(a);
    return (PyObject *)a;
}

static PySendResult
done_awaitable_send(ql_done_awaitable *a, PyObject *Py_UNUSED(arg), PyObject **result)
{
    if (a->used) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
        *result = NULL;
        return PYGEN_ERROR;
    }
    a->used = 1;
    *result = a->value ? a->value : Py_NewRef(Py_None);
    a->value = NULL;
    return PYGEN_RETURN;
}

/* __next__ and send(): StopIteration(value), always with an exception set
 * (a method returning NULL without one would be a SystemError). */
static PyObject *
done_awaitable_next(ql_done_awaitable *a)
{
    PyObject *value;
    if (done_awaitable_send(a, Py_None, &value) == PYGEN_ERROR) {
        return NULL;
    }
    if (value == Py_None) {
        PyErr_SetNone(PyExc_StopIteration);
    }
    else {
        PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, value);
        if (stop != NULL) {
            PyErr_SetObject(PyExc_StopIteration, stop);
            Py_DECREF(stop);
        }
    }
    Py_DECREF(value);
    return NULL;
}

static PyObject *
done_awaitable_send_method(ql_done_awaitable *a, PyObject *Py_UNUSED(arg))
{
    return done_awaitable_next(a);
}

static PyObject *
done_awaitable_throw(ql_done_awaitable *a, PyObject *const *args, Py_ssize_t nargs)
{
    a->used = 1;
    Py_CLEAR(a->value);
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "throw() takes at least 1 argument");
        return NULL;
    }
    if (PyExceptionInstance_Check(args[0])) {
        PyErr_SetObject((PyObject *)Py_TYPE(args[0]), args[0]);
    }
    else {
        PyErr_SetObject(args[0], nargs > 1 ? args[1] : NULL);
    }
    return NULL;
}

static PyObject *
done_awaitable_close(ql_done_awaitable *a, PyObject *Py_UNUSED(ignored))
{
    a->used = 1;
    Py_CLEAR(a->value);
    Py_RETURN_NONE;
}

static int
done_awaitable_traverse(ql_done_awaitable *a, visitproc visit, void *arg)
{
    Py_VISIT(a->value);
    return 0;
}

static int
done_awaitable_clear(ql_done_awaitable *a)
{
    Py_CLEAR(a->value);
    return 0;
}

static void
done_awaitable_dealloc(ql_done_awaitable *a)
{
    PyObject_GC_UnTrack(a);
    Py_CLEAR(a->value);
    PyObject_GC_Del(a);
}

static PyAsyncMethods done_awaitable_as_async = {
    .am_await = PyObject_SelfIter,
    .am_send = (sendfunc)done_awaitable_send,
};

static PyMethodDef done_awaitable_methods[] = {
    {"send", (PyCFunction)done_awaitable_send_method, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))done_awaitable_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)done_awaitable_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ql_done_awaitable_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "quickloop.DoneAwaitable",
    .tp_basicsize = sizeof(ql_done_awaitable),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)done_awaitable_dealloc,
    .tp_traverse = (traverseproc)done_awaitable_traverse,
    .tp_clear = (inquiry)done_awaitable_clear,
    .tp_as_async = &done_awaitable_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)done_awaitable_next,
    .tp_methods = done_awaitable_methods,
};

/* ---- shared lookups ------------------------------------------------------------------ */

static PyObject *
running_loop(void)
{
    return PyObject_CallNoArgs(ql_state.get_running_loop);
}

/* asyncio.current_task() for loop (borrowed; NULL without error: none). */
static PyObject *
current_task(PyObject *loop)
{
    return PyDict_GetItemWithError(ql_state.current_tasks, loop);
}

static int
task_cancelling(PyObject *task, long *count)
{
    if (Py_IS_TYPE(task, ql_task_type)) {
        *count = ql_task_of(task)->num_cancels_requested;
        return 0;
    }
    PyObject *res = PyObject_CallMethod(task, "cancelling", NULL);
    if (res == NULL) {
        return -1;
    }
    *count = PyLong_AsLong(res);
    Py_DECREF(res);
    return (*count == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* ---- Timeout ------------------------------------------------------------------------- */

typedef enum { TO_CREATED, TO_ENTERED, TO_EXPIRING, TO_EXPIRED, TO_EXITED } timeout_state;

static const char *const timeout_state_names[] = {
    "created", "active", "expiring", "expired", "finished",
};

typedef struct {
    PyObject_HEAD
    PyObject *when;             /* float, int or None */
    PyObject *handler;          /* the armed TimerHandle/Handle, or NULL */
    PyObject *task;
    PyObject *weakreflist;
    long cancelling;
    timeout_state state;
} ql_timeout;

static PyTypeObject ql_timeout_type;
static PyMethodDef timeout_on_timeout_def;

static PyObject *
timeout_alloc(PyTypeObject *type, PyObject *when)
{
    ql_timeout *to = (ql_timeout *)type->tp_alloc(type, 0);
    if (to == NULL) {
        return NULL;
    }
    to->when = Py_NewRef(when);
    to->state = TO_CREATED;
    return (PyObject *)to;
}

static PyObject *
timeout_new(PyObject *when)
{
    return timeout_alloc(&ql_timeout_type, when);
}

/* Timeout(when): public, as asyncio.Timeout is. */
static PyObject *
timeout_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"when", NULL};
    PyObject *when;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Timeout", kwlist, &when)) {
        return NULL;
    }
    return timeout_alloc(type, when);
}

static int
disarm(ql_timeout *to)
{
    PyObject *handler = to->handler;
    if (handler == NULL) {
        return 0;
    }
    to->handler = NULL;
    int rc = 0;
    if (ql_handle_check(handler)) {
        rc = ql_handle_cancel((ql_handle *)handler);
    }
    else {
        PyObject *res = PyObject_CallMethod(handler, "cancel", NULL);
        rc = res ? 0 : -1;
        Py_XDECREF(res);
    }
    Py_DECREF(handler);
    return rc;
}

static int
reschedule(ql_timeout *to, PyObject *when)
{
    if (to->state != TO_ENTERED) {
        if (to->state == TO_CREATED) {
            PyErr_SetString(PyExc_RuntimeError, "Timeout has not been entered");
        }
        else {
            PyErr_Format(PyExc_RuntimeError, "Cannot change state of %s Timeout",
                         timeout_state_names[to->state]);
        }
        return -1;
    }
    Py_XSETREF(to->when, Py_NewRef(when));
    if (disarm(to) < 0) {
        return -1;
    }
    if (when == Py_None) {
        return 0;
    }
    double deadline = PyFloat_AsDouble(when), now;
    if (deadline == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    PyObject *loop = running_loop();
    if (loop == NULL) {
        return -1;
    }
    PyObject *on_timeout = PyCFunction_New(&timeout_on_timeout_def, (PyObject *)to);
    if (on_timeout == NULL || ql_loop_time(loop, &now) < 0) {
        Py_XDECREF(on_timeout);
        Py_DECREF(loop);
        return -1;
    }
    /* A NaN deadline is never in the future: due now, as on the stdlib loop. */
    to->handler = isnan(deadline) || deadline <= now ? ql_loop_call_soon(loop, on_timeout)
                                  : ql_loop_call_at(loop, deadline, on_timeout);
    Py_DECREF(on_timeout);
    Py_DECREF(loop);
    return to->handler ? 0 : -1;
}

static PyObject *
timeout_on_timeout(ql_timeout *to, PyObject *Py_UNUSED(ignored))
{
    if (to->state != TO_ENTERED || to->task == NULL) {
        PyErr_SetString(PyExc_AssertionError, "Timeout fired outside its active state");
        return NULL;
    }
    PyObject *res = PyObject_CallMethod(to->task, "cancel", NULL);
    if (res == NULL) {
        return NULL;
    }
    Py_DECREF(res);
    to->state = TO_EXPIRING;
    Py_CLEAR(to->handler);      /* fired: drop it early */
    Py_RETURN_NONE;
}

static PyMethodDef timeout_on_timeout_def = {
    "_on_timeout", (PyCFunction)timeout_on_timeout, METH_NOARGS, NULL,
};

static PyObject *
timeout_aenter(ql_timeout *to, PyObject *Py_UNUSED(ignored))
{
    if (to->state != TO_CREATED) {
        PyErr_SetString(PyExc_RuntimeError, "Timeout has already been entered");
        return NULL;
    }
    PyObject *loop = running_loop();
    if (loop == NULL) {
        return NULL;
    }
    PyObject *task = current_task(loop);
    Py_DECREF(loop);
    if (task == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "Timeout should be used inside a task");
        }
        return NULL;
    }
    to->state = TO_ENTERED;
    Py_XSETREF(to->task, Py_NewRef(task));
    PyObject *when = Py_NewRef(to->when);
    int rc = task_cancelling(task, &to->cancelling) < 0 ? -1 : reschedule(to, when);
    Py_DECREF(when);
    return rc < 0 ? NULL : done_awaitable_new((PyObject *)to);
}

#if QL_TIMEOUT_MARKS_OTHER_EXCEPTIONS
/* Timeout._insert_timeout_error: the first CancelledError in exc's
 * __context__ chain gets a TimeoutError in front of it (its context and
 * cause), so a traceback says the block had timed out. */
static int
insert_timeout_error(PyObject *exc)
{
    Py_INCREF(exc);
    for (;;) {
        PyObject *ctx = PyException_GetContext(exc);
        if (ctx == NULL) {
            Py_DECREF(exc);
            return 0;
        }
        int is_cancel = PyObject_IsInstance(ctx, ql_state.CancelledError);
        if (is_cancel != 0) {
            PyObject *te = is_cancel < 0 ? NULL : PyObject_CallNoArgs(PyExc_TimeoutError);
            if (te != NULL) {
                PyException_SetContext(te, Py_NewRef(ctx));
                PyException_SetCause(te, Py_NewRef(ctx));
                PyException_SetContext(exc, te);
            }
            Py_DECREF(ctx);
            Py_DECREF(exc);
            return te == NULL ? -1 : 0;
        }
        Py_DECREF(exc);
        exc = ctx;
    }
}

/* An exception other than a CancelledError left an expired block: mark it,
 * and each member of an ExceptionGroup, as Timeout.__aexit__ does. */
static int
mark_timed_out(PyObject *exc)
{
    if (insert_timeout_error(exc) < 0) {
        return -1;
    }
    PyObject *group = PyDict_GetItemString(PyEval_GetBuiltins(), "ExceptionGroup");
    int is_group = group == NULL ? 0 : PyObject_IsInstance(exc, group);
    if (is_group <= 0) {
        return is_group;
    }
    PyObject *members = PyObject_GetAttrString(exc, "exceptions");
    if (members == NULL) {
        return -1;
    }
    PyObject *seq = PySequence_Fast(members, "exceptions must be a sequence");
    Py_DECREF(members);
    if (seq == NULL) {
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PySequence_Fast_GET_SIZE(seq); i++) {
        rc = insert_timeout_error(PySequence_Fast_GET_ITEM(seq, i));
    }
    Py_DECREF(seq);
    return rc;
}
#endif

static PyObject *
timeout_aexit(ql_timeout *to, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "__aexit__ takes 3 arguments");
        return NULL;
    }
    if (to->state != TO_ENTERED && to->state != TO_EXPIRING) {
        PyErr_SetString(PyExc_AssertionError, "Timeout exited while not active");
        return NULL;
    }
    if (disarm(to) < 0) {
        return NULL;
    }
    if (to->state == TO_ENTERED) {
        to->state = TO_EXITED;
        return done_awaitable_new(Py_None);
    }
    to->state = TO_EXPIRED;
    PyObject *res = PyObject_CallMethod(to->task, "uncancel", NULL);
    if (res == NULL) {
        return NULL;
    }
    long remaining = PyLong_AsLong(res);
    Py_DECREF(res);
    if (remaining == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (remaining > to->cancelling || args[0] == Py_None) {
        return done_awaitable_new(Py_None);   /* a newer cancel request, or none */
    }
#if QL_TIMEOUT_MARKS_OTHER_EXCEPTIONS
    int is_cancel = PyObject_IsSubclass(args[0], ql_state.CancelledError);
    if (is_cancel < 0) {
        return NULL;
    }
    if (!is_cancel) {
        if (args[1] != Py_None && mark_timed_out(args[1]) < 0) {
            return NULL;
        }
        return done_awaitable_new(Py_None);
    }
#else
    if (args[0] != ql_state.CancelledError) {
        return done_awaitable_new(Py_None);
    }
#endif
    /* No newer cancel request: this timeout handles it.
     * raise TimeoutError from exc_val */
    PyObject *exc = PyObject_CallNoArgs(PyExc_TimeoutError);
    if (exc != NULL) {
        PyException_SetCause(exc, Py_NewRef(args[1]));
        PyErr_SetObject(PyExc_TimeoutError, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *
timeout_when(ql_timeout *to, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(to->when);
}

static PyObject *
timeout_reschedule(ql_timeout *to, PyObject *when)
{
    if (reschedule(to, when) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
timeout_expired(ql_timeout *to, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(to->state == TO_EXPIRING || to->state == TO_EXPIRED);
}

static PyObject *
timeout_repr(ql_timeout *to)
{
    const char *state = timeout_state_names[to->state];
    if (to->state != TO_ENTERED) {
        return PyUnicode_FromFormat("<Timeout [%s]>", state);
    }
    PyObject *when;
    if (to->when == Py_None) {
        when = Py_NewRef(Py_None);
    }
    else {
        PyObject *round = PyDict_GetItemString(PyEval_GetBuiltins(), "round");
        when = round ? PyObject_CallFunction(round, "Oi", to->when, 3) : NULL;
        if (when == NULL) {
            return NULL;
        }
    }
    PyObject *res = PyUnicode_FromFormat("<Timeout [%s] when=%R>", state, when);
    Py_DECREF(when);
    return res;
}

static int
timeout_traverse(ql_timeout *to, visitproc visit, void *arg)
{
    Py_VISIT(to->when);
    Py_VISIT(to->handler);
    Py_VISIT(to->task);
    return 0;
}

static int
timeout_clear(ql_timeout *to)
{
    Py_CLEAR(to->when);
    Py_CLEAR(to->handler);
    Py_CLEAR(to->task);
    return 0;
}

static void
timeout_dealloc(ql_timeout *to)
{
    PyObject_GC_UnTrack(to);
    if (to->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)to);
    }
    timeout_clear(to);
    Py_TYPE(to)->tp_free((PyObject *)to);
}

static PyMethodDef timeout_methods[] = {
    {"when", (PyCFunction)timeout_when, METH_NOARGS, "The current deadline."},
    {"reschedule", (PyCFunction)timeout_reschedule, METH_O, "Move the deadline."},
    {"expired", (PyCFunction)timeout_expired, METH_NOARGS, "True once the timeout fired."},
    {"__aenter__", (PyCFunction)timeout_aenter, METH_NOARGS, NULL},
    {"__aexit__", (PyCFunction)(void (*)(void))timeout_aexit, METH_FASTCALL, NULL},
    {"_on_timeout", (PyCFunction)timeout_on_timeout, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ql_timeout_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "quickloop.Timeout",
    .tp_doc = "Asynchronous context manager cancelling its task at a deadline "
              "(asyncio.Timeout in C). Use quickloop.timeout() or timeout_at().",
    .tp_basicsize = sizeof(ql_timeout),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .tp_new = timeout_tp_new,
    .tp_weaklistoffset = offsetof(ql_timeout, weakreflist),
    .tp_dealloc = (destructor)timeout_dealloc,
    .tp_traverse = (traverseproc)timeout_traverse,
    .tp_clear = (inquiry)timeout_clear,
    .tp_repr = (reprfunc)timeout_repr,
    .tp_methods = timeout_methods,
};

static PyObject *
helpers_timeout(PyObject *Py_UNUSED(module), PyObject *delay)
{
    PyObject *loop = running_loop();     /* required even for None, as asyncio */
    if (loop == NULL) {
        return NULL;
    }
    if (delay == Py_None) {
        Py_DECREF(loop);
        return timeout_new(Py_None);
    }
    double now;
    int rc = ql_loop_time(loop, &now);
    Py_DECREF(loop);
    if (rc < 0) {
        return NULL;
    }
    PyObject *now_obj = PyFloat_FromDouble(now);
    PyObject *when = now_obj ? PyNumber_Add(now_obj, delay) : NULL;
    Py_XDECREF(now_obj);
    if (when == NULL) {
        return NULL;
    }
    PyObject *to = timeout_new(when);
    Py_DECREF(when);
    return to;
}

static PyObject *
helpers_timeout_at(PyObject *Py_UNUSED(module), PyObject *when)
{
    return timeout_new(when);
}

/* ---- shield ---------------------------------------------------------------------------- */
/* The two done callbacks linking inner and outer, as closures in asyncio. */

typedef struct {
    PyObject_HEAD
    PyObject *inner;
    PyObject *outer;
    PyObject *inner_cb;     /* on the outer link: the inner link to remove */
    int is_outer;
} ql_shield_link;

static PyTypeObject ql_shield_link_type;

static PyObject *
call_method0(PyObject *obj, const char *name)
{
    return PyObject_CallMethod(obj, name, NULL);
}

static int
fut_is(PyObject *fut, const char *name)
{
    PyObject *res = call_method0(fut, name);
    if (res == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(res);
    Py_DECREF(res);
    return truth;
}

/* inner is done: pass its outcome on to outer, unless outer was cancelled. */
static int
shield_inner_done(PyObject *inner, PyObject *outer)
{
    int outer_cancelled = fut_is(outer, "cancelled");
    int inner_cancelled = outer_cancelled < 0 ? -1 : fut_is(inner, "cancelled");
    if (inner_cancelled < 0) {
        return -1;
    }
    PyObject *res;
    if (outer_cancelled) {
        if (inner_cancelled) {
            return 0;
        }
        res = call_method0(inner, "exception");     /* mark it retrieved */
    }
    else if (inner_cancelled) {
        res = call_method0(outer, "cancel");
    }
    else {
        PyObject *exc = call_method0(inner, "exception");
        if (exc == NULL) {
            return -1;
        }
        if (exc != Py_None) {
            res = PyObject_CallMethod(outer, "set_exception", "O", exc);
        }
        else {
            PyObject *value = call_method0(inner, "result");
            res = value ? PyObject_CallMethod(outer, "set_result", "O", value) : NULL;
            Py_XDECREF(value);
        }
        Py_DECREF(exc);
    }
    Py_XDECREF(res);
    return res ? 0 : -1;
}

static PyObject *
shield_link_call(ql_shield_link *link, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 1 || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "a done callback takes exactly one argument");
        return NULL;
    }
    if (!link->is_outer) {
        return shield_inner_done(link->inner, link->outer) < 0 ? NULL : Py_NewRef(Py_None);
    }
    /* outer is done (cancelled): inner no longer needs to report to it. */
    int inner_done = fut_is(link->inner, "done");
    if (inner_done < 0) {
        return NULL;
    }
    if (!inner_done) {
        PyObject *res = PyObject_CallMethod(link->inner, "remove_done_callback", "O",
                                            link->inner_cb);
        if (res == NULL) {
            return NULL;
        }
        Py_DECREF(res);
    }
    Py_RETURN_NONE;
}

static PyObject *
shield_link_new(PyObject *inner, PyObject *outer, PyObject *inner_cb)
{
    ql_shield_link *link = PyObject_GC_New(ql_shield_link, &ql_shield_link_type);
    if (link == NULL) {
        return NULL;
    }
    link->inner = Py_NewRef(inner);
    link->outer = Py_NewRef(outer);
    link->inner_cb = Py_XNewRef(inner_cb);
    link->is_outer = inner_cb != NULL;
    PyObject_GC_Track(link);
    return (PyObject *)link;
}

static int
shield_link_traverse(ql_shield_link *link, visitproc visit, void *arg)
{
    Py_VISIT(link->inner);
    Py_VISIT(link->outer);
    Py_VISIT(link->inner_cb);
    return 0;
}

static int
shield_link_clear(ql_shield_link *link)
{
    Py_CLEAR(link->inner);
    Py_CLEAR(link->outer);
    Py_CLEAR(link->inner_cb);
    return 0;
}

static void
shield_link_dealloc(ql_shield_link *link)
{
    PyObject_GC_UnTrack(link);
    shield_link_clear(link);
    PyObject_GC_Del(link);
}

static PyObject *
shield_link_qualname(ql_shield_link *link, void *Py_UNUSED(c))
{
    return PyUnicode_FromString(link->is_outer ? "shield.<locals>._outer_done_callback"
                                               : "shield.<locals>._inner_done_callback");
}

static PyGetSetDef shield_link_getset[] = {
    {"__qualname__", (getter)shield_link_qualname, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ql_shield_link_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "quickloop.ShieldCallback",
    .tp_basicsize = sizeof(ql_shield_link),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)shield_link_dealloc,
    .tp_traverse = (traverseproc)shield_link_traverse,
    .tp_clear = (inquiry)shield_link_clear,
    .tp_call = (ternaryfunc)shield_link_call,
    .tp_getset = shield_link_getset,
};

static PyObject *
add_done_callback(PyObject *fut, PyObject *fn)
{
    if (ql_future_check_exact(fut)) {
        return ql_fut_add_callback(fut, ql_fut_of(fut), fn, NULL) < 0 ? NULL : Py_NewRef(Py_None);
    }
    return PyObject_CallMethod(fut, "add_done_callback", "O", fn);
}

static PyObject *
helpers_shield(PyObject *Py_UNUSED(module), PyObject *arg)
{
    PyObject *inner = NULL, *outer = NULL, *inner_cb = NULL, *outer_cb = NULL, *res;
    if (ql_future_check_exact(arg)) {
        inner = Py_NewRef(arg);
    }
    else {
        inner = PyObject_CallOneArg(ql_state.ensure_future, arg);
        if (inner == NULL) {
            return NULL;
        }
    }
    int done = ql_future_check_exact(inner) ? ql_fut_of(inner)->state != QL_PENDING
                                            : fut_is(inner, "done");
    if (done != 0) {
        if (done < 0) {
            Py_CLEAR(inner);
        }
        return inner;
    }
    PyObject *loop;
    if (!ql_future_check_exact(inner)) {
        loop = call_method0(inner, "get_loop");
    }
    else if (ql_fut_of(inner)->loop == NULL) {    /* __new__ without __init__ */
        PyErr_SetString(PyExc_RuntimeError, "Future object is not initialized.");
        loop = NULL;
    }
    else {
        loop = Py_NewRef(ql_fut_of(inner)->loop);
    }
    if (loop == NULL) {
        goto error;
    }
    outer = ql_loop_check(loop) ? ql_future_new(loop) : call_method0(loop, "create_future");
    Py_DECREF(loop);
    if (outer == NULL) {
        goto error;
    }
    inner_cb = shield_link_new(inner, outer, NULL);
    outer_cb = inner_cb ? shield_link_new(inner, outer, inner_cb) : NULL;
    if (outer_cb == NULL) {
        goto error;
    }
    res = add_done_callback(inner, inner_cb);
    if (res == NULL) {
        goto error;
    }
    Py_DECREF(res);
    res = add_done_callback(outer, outer_cb);
    if (res == NULL) {
        goto error;
    }
    Py_DECREF(res);
    Py_DECREF(inner_cb);
    Py_DECREF(outer_cb);
    Py_DECREF(inner);
    return outer;
error:
    Py_XDECREF(inner_cb);
    Py_XDECREF(outer_cb);
    Py_XDECREF(outer);
    Py_XDECREF(inner);
    return NULL;
}

/* ---- eager_task_factory ------------------------------------------------------------------ */

static PyObject *
helpers_eager_task_factory(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"loop", "coro", "name", "context", NULL};
    PyObject *loop, *coro, *name = Py_None, *context = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$OO:eager_task_factory", kwlist,
                                     &loop, &coro, &name, &context)) {
        return NULL;
    }
    return ql_task_new(loop, coro, name, context, 1);
}

static PyMethodDef helpers_methods[] = {
    {"timeout", helpers_timeout, METH_O,
     "timeout(delay) -> Timeout: cancel the current task after delay seconds "
     "(None: never), raising TimeoutError out of the block."},
    {"timeout_at", helpers_timeout_at, METH_O,
     "timeout_at(when) -> Timeout: like timeout() with an absolute loop.time() deadline."},
    {"shield", helpers_shield, METH_O,
     "shield(aw): protect an awaitable from being cancelled by its awaiter."},
    {"eager_task_factory", (PyCFunction)(void (*)(void))helpers_eager_task_factory,
     METH_VARARGS | METH_KEYWORDS,
     "A task factory whose tasks run their first step at once (3.12 semantics)."},
    {NULL, NULL, 0, NULL},
};

int
ql_helpers_ready(PyObject *module)
{
    if (PyType_Ready(&ql_done_awaitable_type) < 0 || PyType_Ready(&ql_timeout_type) < 0
        || PyType_Ready(&ql_shield_link_type) < 0
        || PyModule_AddFunctions(module, helpers_methods) < 0) {
        return -1;
    }
    ql_state.eager_task_factory = PyObject_GetAttrString(module, "eager_task_factory");
    if (ql_state.eager_task_factory == NULL) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "Timeout", (PyObject *)&ql_timeout_type);
}
