/* handle.c - Handle and TimerHandle (see handle.h).  A handle owns its loop
 * reference; cancelling a TimerHandle disarms it from the loop's heap at once. */
#include "handle.h"
#include "ctxcopy.h"
#include "future.h"
#include "loop.h"
#include "module.h"

/* Whether a callback can observe the context it runs in.  asyncio.sleep()'s
 * timer, _set_result_unless_cancelled(fut, result) on a quickloop.Future, runs
 * no user code (the future's own callbacks keep their own contexts), so its
 * handle copies no context: one object less per sleeping task. */
static int
needs_context(PyObject *callback, PyObject *const *argv, Py_ssize_t nargs)
{
    return !(callback == ql_state.set_result_unless_cancelled && nargs == 2
             && ql_future_check_exact(argv[0]));
}

static int
handle_init(ql_handle *h, PyObject *loop, PyObject *callback, PyObject *const *argv,
            Py_ssize_t nargs, PyObject *context, int debug)
{
    h->callback = Py_NewRef(callback);
    h->nargs = (int)nargs;      /* a vectorcall's count: far below INT_MAX */
    h->args = NULL;
    h->argv[0] = h->argv[1] = NULL;
    if (nargs > QL_HANDLE_INLINE_ARGS) {
        h->args = PyTuple_New(nargs);
        if (h->args == NULL) {
            h->nargs = 0;
        }
        for (Py_ssize_t i = 0; h->args != NULL && i < nargs; i++) {
            PyTuple_SET_ITEM(h->args, i, Py_NewRef(argv[i]));
        }
    }
    else {
        for (Py_ssize_t i = 0; i < nargs; i++) {
            h->argv[i] = Py_NewRef(argv[i]);
        }
    }
    h->loop = Py_NewRef(loop);
    h->source_traceback = NULL;
    h->cancelled = 0;
    if (h->nargs != nargs) {
        h->context = NULL;
        return -1;
    }
    if ((context == NULL || context == Py_None) && !needs_context(callback, argv, nargs)) {
        h->context = NULL;      /* runs in whatever context is current */
    }
    else if (context == NULL || context == Py_None) {
        h->context = ql_ctx_copy();
        if (h->context == NULL) {
            return -1;
        }
    }
    else {
        h->context = Py_NewRef(ql_ctx_share(context));
    }
    if (debug) {
        h->source_traceback = PyObject_CallNoArgs(ql_state.extract_stack);
        if (h->source_traceback == NULL) {
            return -1;
        }
    }
    return 0;
}

ql_handle *
ql_handle_new(PyObject *loop, PyObject *callback, PyObject *const *argv,
              Py_ssize_t nargs, PyObject *context, int debug)
{
    if (ql_fault_point() < 0) {
        return NULL;
    }
    ql_handle *h = PyObject_GC_New(ql_handle, &ql_handle_type);
    if (h == NULL) {
        return NULL;
    }
    if (handle_init(h, loop, callback, argv, nargs, context, debug) < 0) {
        PyObject_GC_Track(h);
        Py_DECREF(h);
        return NULL;
    }
    PyObject_GC_Track(h);
    return h;
}

ql_timer_handle *
ql_timer_handle_new(PyObject *loop, double when, int64_t deadline,
                    PyObject *callback, PyObject *const *argv, Py_ssize_t nargs,
                    PyObject *context, int debug)
{
    if (ql_fault_point() < 0) {
        return NULL;
    }
    ql_timer_handle *t = PyObject_GC_New(ql_timer_handle, &ql_timer_handle_type);
    if (t == NULL) {
        return NULL;
    }
    t->when = when;
    t->deadline = deadline;
    t->seq = 0;
    t->heap_index = -1;
    if (handle_init(&t->base, loop, callback, argv, nargs, context, debug) < 0) {
        PyObject_GC_Track(t);
        Py_DECREF(t);
        return NULL;
    }
    PyObject_GC_Track(t);
    return t;
}

/* The callback's arguments as a tuple (None once cancelled). */
static PyObject *
handle_args(ql_handle *h)
{
    if (h->callback == NULL) {
        Py_RETURN_NONE;
    }
    if (h->args != NULL) {
        return Py_NewRef(h->args);
    }
    PyObject *tuple = PyTuple_New(h->nargs);
    for (Py_ssize_t i = 0; tuple != NULL && i < h->nargs; i++) {
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(h->argv[i]));
    }
    return tuple;
}

/* asyncio's _format_callback_source(callback, args, debug=loop.get_debug()):
 * from 3.13 the arguments are shown in debug mode only (_compat.py). */
static PyObject *
format_callback_source(ql_handle *h, PyObject *callback, PyObject *args)
{
    int debug = h->loop != NULL && ql_loop_check(h->loop) && ((ql_loop *)h->loop)->debug;
    PyObject *res = NULL;
    PyObject *pos = PyTuple_Pack(2, callback, args);
    PyObject *kw = pos == NULL ? NULL
                   : Py_BuildValue("{s:O}", "debug", debug ? Py_True : Py_False);
    if (kw != NULL) {
        res = PyObject_Call(ql_state.format_callback_source, pos, kw);
    }
    Py_XDECREF(pos);
    Py_XDECREF(kw);
    return res;
}

/* An exception escaped a callback: hand it to loop.call_exception_handler
 * with the same context dict the stdlib builds. */
static int
report_callback_error(ql_handle *h, PyObject *callback, PyObject *args, PyObject *exc)
{
    PyObject *context = NULL, *source = NULL, *message = NULL, *res = NULL;

    source = format_callback_source(h, callback, args);
    if (source == NULL) {
        goto error;
    }
    message = PyUnicode_FromFormat("Exception in callback %U", source);
    if (message == NULL) {
        goto error;
    }
    context = PyDict_New();
    if (context == NULL
        || PyDict_SetItemString(context, "message", message) < 0
        || PyDict_SetItemString(context, "exception", exc) < 0
        || PyDict_SetItemString(context, "handle", (PyObject *)h) < 0) {
        goto error;
    }
    if (h->source_traceback != NULL
        && PyDict_SetItemString(context, "source_traceback", h->source_traceback) < 0) {
        goto error;
    }
    res = PyObject_CallMethod(h->loop, "call_exception_handler", "O", context);
    if (res == NULL) {
        goto error;
    }
    Py_DECREF(res);
    Py_DECREF(context);
    Py_DECREF(message);
    Py_DECREF(source);
    return 0;
error:
    Py_XDECREF(context);
    Py_XDECREF(message);
    Py_XDECREF(source);
    return -1;
}

int
ql_handle_report_error(PyObject *loop, PyObject *fn, PyObject *args, PyObject *context)
{
    if (PyErr_ExceptionMatches(PyExc_SystemExit)
        || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        return -1;
    }
    PyObject *exc = ql_err_take();
    ql_handle *h = ql_handle_new(loop, fn, &PyTuple_GET_ITEM(args, 0),
                                 PyTuple_GET_SIZE(args), context, 0);
    int rc = h ? report_callback_error(h, fn, args, exc) : -1;
    Py_XDECREF(h);
    Py_DECREF(exc);
    return rc;
}

int
ql_handle_run(ql_handle *h)
{
    if (h->cancelled) {
        return 0;
    }
    /* The callback may cancel its own handle, which drops these fields. */
    PyObject *callback = Py_NewRef(h->callback);
    PyObject *tuple = Py_XNewRef(h->args);
    PyObject *context = Py_XNewRef(h->context);
    PyObject *stack[QL_HANDLE_INLINE_ARGS];
    Py_ssize_t nargs = h->nargs;
    PyObject *const *argv = stack;
    if (tuple != NULL) {
        argv = &PyTuple_GET_ITEM(tuple, 0);
    }
    else {
        for (Py_ssize_t i = 0; i < nargs; i++) {
            stack[i] = Py_NewRef(h->argv[i]);
        }
    }
    int rc = 0;

    if (context != NULL && PyContext_Enter(context) < 0) {
        rc = -1;
        goto done;
    }
    PyObject *res = PyObject_Vectorcall(callback, argv, nargs, NULL);
    if (context != NULL && PyContext_Exit(context) < 0) {
        Py_XDECREF(res);
        rc = -1;
        goto done;
    }
    if (res != NULL) {
        Py_DECREF(res);
        goto done;
    }
    if (PyErr_ExceptionMatches(PyExc_SystemExit)
        || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        rc = -1;
        goto done;
    }
    PyObject *exc = ql_err_take();
    PyObject *args = tuple ? Py_NewRef(tuple) : PyTuple_New(nargs);
    for (Py_ssize_t i = 0; tuple == NULL && args != NULL && i < nargs; i++) {
        PyTuple_SET_ITEM(args, i, Py_NewRef(stack[i]));
    }
    rc = args ? report_callback_error(h, callback, args, exc) : -1;
    Py_XDECREF(args);
    Py_DECREF(exc);
done:
    if (tuple == NULL) {
        for (Py_ssize_t i = 0; i < nargs; i++) {
            Py_DECREF(stack[i]);
        }
    }
    Py_XDECREF(tuple);
    Py_XDECREF(context);
    Py_DECREF(callback);
    return rc;
}

/* ---- Python-visible methods ---------------------------------------------- */

static PyObject *handle_repr(ql_handle *h);

int
ql_handle_cancel(ql_handle *h)
{
    if (h->cancelled) {
        return 0;
    }
    h->cancelled = 1;
    ql_loop *loop = (ql_loop *)h->loop;
    if (Py_IS_TYPE(h, &ql_timer_handle_type)) {
        ql_timer_handle *t = (ql_timer_handle *)h;
        if (t->heap_index >= 0) {
            ql_timer_heap_remove(&loop->timers, t);
        }
    }
    int rc = 0;
    PyObject *frozen = NULL;
    if (loop != NULL && loop->debug) {
        /* Keep the callback's description for repr() after it is dropped. */
        frozen = handle_repr(h);
        if (frozen == NULL) {
            rc = -1;
        }
    }
    /* Settle the fields before dropping anything: a __del__ run by a decref
     * may look at this handle. */
    PyObject *callback = h->callback, *args = h->args, *a0 = h->argv[0], *a1 = h->argv[1];
    h->callback = NULL;
    h->frozen_repr = frozen;    /* the union's other half from now on */
    h->argv[0] = h->argv[1] = NULL;
    h->nargs = 0;
    /* With no context and no debug record (asyncio.sleep()'s timer: see
     * needs_context) the loop is all a cancelled handle still holds, and
     * nothing reads it again.  Let go of it too: a handle that refers to
     * nothing can be in no cycle, so, like a tuple of atoms, it leaves the
     * GC's lists for good instead of coming back to be walked by every
     * full collection while a finished sleep's frame keeps it. */
    PyObject *owner = NULL;
    if (h->context == NULL && h->source_traceback == NULL && frozen == NULL) {
        owner = h->loop;
        h->loop = NULL;
        if (PyObject_GC_IsTracked((PyObject *)h)) {
            PyObject_GC_UnTrack(h);
        }
    }
    Py_XDECREF(callback);      /* NULL if the GC cleared the handle */
    Py_XDECREF(args);
    Py_XDECREF(a0);
    Py_XDECREF(a1);
    Py_XDECREF(owner);
    return rc;
}

static PyObject *
handle_cancel(ql_handle *h, PyObject *Py_UNUSED(ignored))
{
    if (ql_handle_cancel(h) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
handle_cancelled(ql_handle *h, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(h->cancelled);
}

/* A handle that needs no context (see needs_context) shows a copy of the
 * current one: its callback would see the same variables in it. */
static PyObject *
handle_get_context(ql_handle *h, PyObject *Py_UNUSED(ignored))
{
    return h->context ? Py_NewRef(ql_ctx_share(h->context)) : PyContext_CopyCurrent();
}

static PyObject *
handle_py_run(ql_handle *h, PyObject *Py_UNUSED(ignored))
{
    if (ql_handle_run(h) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
timer_when(ql_timer_handle *t, PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(t->when);
}

static PyObject *
handle_repr(ql_handle *h)
{
    if (h->callback == NULL && h->frozen_repr != NULL) {
        return Py_NewRef(h->frozen_repr);
    }
    PyObject *info = PyList_New(0), *item = NULL, *sep = NULL, *joined = NULL;
    if (info == NULL) {
        return NULL;
    }
    item = PyUnicode_FromString(_PyType_Name(Py_TYPE(h)));
    if (item == NULL || PyList_Append(info, item) < 0) {
        goto error;
    }
    Py_CLEAR(item);
    if (h->cancelled) {
        item = PyUnicode_FromString("cancelled");
        if (item == NULL || PyList_Append(info, item) < 0) {
            goto error;
        }
        Py_CLEAR(item);
    }
    if (Py_IS_TYPE(h, &ql_timer_handle_type)) {
        PyObject *when = PyFloat_FromDouble(((ql_timer_handle *)h)->when);
        if (when == NULL) {
            goto error;
        }
        item = PyUnicode_FromFormat("when=%R", when);
        Py_DECREF(when);
        if (item == NULL || PyList_Append(info, item) < 0) {
            goto error;
        }
        Py_CLEAR(item);
    }
    if (h->callback != NULL) {
        PyObject *args = handle_args(h);
        item = args == NULL ? NULL
               : format_callback_source(h, h->callback, args);
        Py_XDECREF(args);
        if (item == NULL || PyList_Append(info, item) < 0) {
            goto error;
        }
        Py_CLEAR(item);
    }
    if (h->source_traceback != NULL && PyList_Check(h->source_traceback)
        && PyList_GET_SIZE(h->source_traceback) > 0) {
        PyObject *frame = PyList_GET_ITEM(h->source_traceback,
                                          PyList_GET_SIZE(h->source_traceback) - 1);
        PyObject *file = PySequence_GetItem(frame, 0);
        PyObject *line = file ? PySequence_GetItem(frame, 1) : NULL;
        if (line != NULL) {
            item = PyUnicode_FromFormat("created at %S:%S", file, line);
        }
        Py_XDECREF(file);
        Py_XDECREF(line);
        if (item == NULL || PyList_Append(info, item) < 0) {
            goto error;
        }
        Py_CLEAR(item);
    }
    sep = PyUnicode_FromString(" ");
    if (sep == NULL) {
        goto error;
    }
    joined = PyUnicode_Join(sep, info);
    Py_DECREF(sep);
    Py_DECREF(info);
    if (joined == NULL) {
        return NULL;
    }
    PyObject *res = PyUnicode_FromFormat("<%U>", joined);
    Py_DECREF(joined);
    return res;
error:
    Py_XDECREF(item);
    Py_DECREF(info);
    return NULL;
}

static PyObject *
get_optional(PyObject *value)
{
    return Py_NewRef(value ? value : Py_None);
}

static PyObject *handle_get_callback(ql_handle *h, void *Py_UNUSED(c)) { return get_optional(h->callback); }
static PyObject *handle_get_args(ql_handle *h, void *Py_UNUSED(c)) { return handle_args(h); }
static PyObject *handle_get_loop(ql_handle *h, void *Py_UNUSED(c)) { return get_optional(h->loop); }
static PyObject *handle_get_source_tb(ql_handle *h, void *Py_UNUSED(c)) { return get_optional(h->source_traceback); }
static PyObject *handle_get_repr(ql_handle *h, void *Py_UNUSED(c)) { return get_optional(h->callback ? NULL : h->frozen_repr); }
static PyObject *handle_get_cancelled(ql_handle *h, void *Py_UNUSED(c)) { return PyBool_FromLong(h->cancelled); }
static PyObject *handle_get_ctx(ql_handle *h, void *Py_UNUSED(c)) { return handle_get_context(h, NULL); }
static PyObject *timer_get_when(ql_timer_handle *t, void *Py_UNUSED(c)) { return PyFloat_FromDouble(t->when); }
static PyObject *timer_get_scheduled(ql_timer_handle *t, void *Py_UNUSED(c)) { return PyBool_FromLong(t->heap_index >= 0); }

/* ---- GC and type objects --------------------------------------------------- */

static int
handle_traverse(ql_handle *h, visitproc visit, void *arg)
{
    Py_VISIT(h->callback);
    Py_VISIT(h->args);          /* or frozen_repr */
    Py_VISIT(h->argv[0]);
    Py_VISIT(h->argv[1]);
    int rc = ql_ctx_visit(h->context, visit, arg);
    if (rc != 0) {
        return rc;
    }
    Py_VISIT(h->loop);
    Py_VISIT(h->source_traceback);
    return 0;
}

static int
handle_clear(ql_handle *h)
{
    Py_CLEAR(h->callback);
    Py_CLEAR(h->args);          /* or frozen_repr */
    Py_CLEAR(h->argv[0]);
    Py_CLEAR(h->argv[1]);
    h->nargs = 0;
    ql_ctx_drop(&h->context);
    Py_CLEAR(h->loop);
    Py_CLEAR(h->source_traceback);
    return 0;
}

static void
handle_dealloc(ql_handle *h)
{
    PyObject_GC_UnTrack(h);
    handle_clear(h);
    PyObject_GC_Del(h);
}

static PyMethodDef handle_methods[] = {
    {"cancel", (PyCFunction)handle_cancel, METH_NOARGS, "Cancel the call."},
    {"cancelled", (PyCFunction)handle_cancelled, METH_NOARGS, "True if cancelled."},
    {"get_context", (PyCFunction)handle_get_context, METH_NOARGS,
     "The contextvars.Context the callback runs in."},
    {"_run", (PyCFunction)handle_py_run, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef handle_getset[] = {
    {"_callback", (getter)handle_get_callback, NULL, NULL, NULL},
    {"_args", (getter)handle_get_args, NULL, NULL, NULL},
    {"_loop", (getter)handle_get_loop, NULL, NULL, NULL},
    {"_source_traceback", (getter)handle_get_source_tb, NULL, NULL, NULL},
    {"_repr", (getter)handle_get_repr, NULL, NULL, NULL},
    {"_cancelled", (getter)handle_get_cancelled, NULL, NULL, NULL},
    {"_context", (getter)handle_get_ctx, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject ql_handle_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "quickloop.Handle",
    .tp_doc = "A callback scheduled on a quickloop loop.",
    .tp_basicsize = sizeof(ql_handle),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)handle_dealloc,
    .tp_traverse = (traverseproc)handle_traverse,
    .tp_clear = (inquiry)handle_clear,
    .tp_repr = (reprfunc)handle_repr,
    .tp_methods = handle_methods,
    .tp_getset = handle_getset,
};

static PyMethodDef timer_methods[] = {
    {"when", (PyCFunction)timer_when, METH_NOARGS,
     "The absolute time (loop.time() clock) the callback is due."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef timer_getset[] = {
    {"_when", (getter)timer_get_when, NULL, NULL, NULL},
    {"_scheduled", (getter)timer_get_scheduled, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject ql_timer_handle_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "quickloop.TimerHandle",
    .tp_doc = "A callback scheduled for a time on a quickloop loop.",
    .tp_basicsize = sizeof(ql_timer_handle),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_base = &ql_handle_type,
    .tp_dealloc = (destructor)handle_dealloc,
    .tp_traverse = (traverseproc)handle_traverse,
    .tp_clear = (inquiry)handle_clear,
    .tp_repr = (reprfunc)handle_repr,
    .tp_methods = timer_methods,
    .tp_getset = timer_getset,
};

int
ql_handle_types_ready(PyObject *module)
{
    if (PyType_Ready(&ql_handle_type) < 0 || PyType_Ready(&ql_timer_handle_type) < 0) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "Handle", (PyObject *)&ql_handle_type) < 0
        || PyModule_AddObjectRef(module, "TimerHandle", (PyObject *)&ql_timer_handle_type) < 0) {
        return -1;
    }
    return 0;
}
