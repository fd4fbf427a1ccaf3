/* task.c - quickloop.Task (see task.h): stepping a coroutine, waking up when
 * the future it awaits is done, and cancellation.  Semantics are those of
 * asyncio.tasks.Task (the pure-Python one is the readable spec). */
#include "anchor.h"
#include "ctxcopy.h"
#include "handle.h"
#include "loop.h"
#include "module.h"
#include "registry.h"
#include "task.h"

PyTypeObject *ql_task_type;

static uint64_t task_name_counter;

PyMethodDef *ql_methods_concat(const PyMethodDef *a, const PyMethodDef *b);
PyGetSetDef *ql_getset_concat(const PyGetSetDef *a, const PyGetSetDef *b);
PyObject *ql_future_await(PyObject *self);

static int task_step(PyObject *task, ql_task *t, PyObject *exc);
static int task_cancel(PyObject *task, ql_task *t, PyObject *msg);

/* ---- callable wrappers: a task's step and wake-up as Python callables ----- */

/* Used where a C ring entry cannot be: foreign loops, debug mode, and as the
 * done callback registered on futures. */
typedef struct {
    PyObject_HEAD
    PyObject *task;
    PyObject *arg;      /* step: the exception to throw in, or NULL */
} ql_task_callable;

static PyTypeObject ql_task_step_type;
static PyTypeObject ql_task_wakeup_type;

static PyObject *
task_callable_new(PyTypeObject *type, PyObject *task, PyObject *arg)
{
    ql_task_callable *c = PyObject_GC_New(ql_task_callable, type);
    if (c == NULL) {
        return NULL;
    }
    c->task = Py_NewRef(task);
    c->arg = Py_XNewRef(arg);
    PyObject_GC_Track(c);
    return (PyObject *)c;
}

static int
task_callable_traverse(ql_task_callable *c, visitproc visit, void *arg)
{
    Py_VISIT(c->task);
    Py_VISIT(c->arg);
    return 0;
}

static int
task_callable_clear(ql_task_callable *c)
{
    Py_CLEAR(c->task);
    Py_CLEAR(c->arg);
    return 0;
}

static void
task_callable_dealloc(ql_task_callable *c)
{
    PyObject_GC_UnTrack(c);
    task_callable_clear(c);
    PyObject_GC_Del(c);
}

static PyObject *
task_callable_self(ql_task_callable *c, void *Py_UNUSED(closure))
{
    return Py_NewRef(c->task ? c->task : Py_None);
}

static PyObject *
task_step_call(ql_task_callable *c, PyObject *args, PyObject *kwds)
{
    if ((args && PyTuple_GET_SIZE(args)) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "function takes no arguments");
        return NULL;
    }
    if (task_step(c->task, ql_task_of(c->task), c->arg) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static int task_wakeup(PyObject *task, ql_task *t, PyObject *fut);

static PyObject *
task_wakeup_call(ql_task_callable *c, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 1 || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "function takes exactly 1 argument");
        return NULL;
    }
    if (task_wakeup(c->task, ql_task_of(c->task), PyTuple_GET_ITEM(args, 0)) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
task_wakeup_name(ql_task_callable *Py_UNUSED(c), void *Py_UNUSED(closure))
{
    return PyUnicode_FromString("task_wakeup");
}

static PyObject *
task_wakeup_qualname(ql_task_callable *Py_UNUSED(c), void *Py_UNUSED(closure))
{
    return PyUnicode_FromString("Task.task_wakeup");    /* as asyncio's C task */
}

static PyGetSetDef task_callable_getset[] = {
    {"__self__", (getter)task_callable_self, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyGetSetDef task_wakeup_getset[] = {
    {"__self__", (getter)task_callable_self, NULL, NULL, NULL},
    {"__name__", (getter)task_wakeup_name, NULL, NULL, NULL},
    {"__qualname__", (getter)task_wakeup_qualname, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ql_task_step_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "quickloop.TaskStepMethWrapper",
    .tp_basicsize = sizeof(ql_task_callable),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)task_callable_dealloc,
    .tp_traverse = (traverseproc)task_callable_traverse,
    .tp_clear = (inquiry)task_callable_clear,
    .tp_call = (ternaryfunc)task_step_call,
    .tp_getset = task_callable_getset,
};

static PyTypeObject ql_task_wakeup_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "quickloop.TaskWakeupMethWrapper",
    .tp_basicsize = sizeof(ql_task_callable),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)task_callable_dealloc,
    .tp_traverse = (traverseproc)task_callable_traverse,
    .tp_clear = (inquiry)task_callable_clear,
    .tp_call = (ternaryfunc)task_wakeup_call,
    .tp_getset = task_wakeup_getset,
};

int
ql_task_wakeup_check(PyObject *op)
{
    return Py_IS_TYPE(op, &ql_task_wakeup_type);
}

PyObject *
ql_task_wakeup_task(PyObject *wakeup)
{
    return ((ql_task_callable *)wakeup)->task;
}

/* ---- scheduling ------------------------------------------------------------- */

/* Queue the next step; exc (may be NULL) is thrown into the coroutine. */
static int
schedule_step(PyObject *task, ql_task *t, PyObject *exc)
{
    int rc = ql_loop_queue(t->loop, QL_READY_STEP, task, exc, NULL);
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }
    PyObject *step = task_callable_new(&ql_task_step_type, task, exc);
    if (step == NULL) {
        return -1;
    }
    PyObject *args[3] = {t->loop, step, ql_ctx_share(t->context)};
    PyObject *res = PyObject_VectorcallMethod(ql_state.str_call_soon, args,
                                              2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                              ql_state.kwnames_context);
    Py_DECREF(step);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

static int
schedule_step_error(PyObject *task, ql_task *t, PyObject *exc_type, const char *fmt, ...)
{
    va_list vargs;
    va_start(vargs, fmt);
    PyObject *msg = PyUnicode_FromFormatV(fmt, vargs);
    va_end(vargs);
    if (msg == NULL) {
        return -1;
    }
    PyObject *exc = PyObject_CallOneArg(exc_type, msg);
    Py_DECREF(msg);
    if (exc == NULL) {
        return -1;
    }
    int rc = schedule_step(task, t, exc);
    Py_DECREF(exc);
    return rc;
}

/* ---- current task bookkeeping (asyncio.current_task) ---------------------------- */

static int
enter_task(PyObject *loop, PyObject *task)
{
    PyObject *current = PyDict_SetDefault(ql_state.current_tasks, loop, task);
    if (current == NULL) {
        return -1;
    }
    if (current != task) {
        PyErr_Format(PyExc_RuntimeError,
                     "Cannot enter into task %R while another task %R is being executed.",
                     task, current);
        return -1;
    }
    return 0;
}

static int
leave_task(PyObject *loop, PyObject *task)
{
    PyObject *current = PyDict_GetItemWithError(ql_state.current_tasks, loop);
    if (current != task) {
        if (current == NULL && PyErr_Occurred()) {
            return -1;
        }
        PyErr_Format(PyExc_RuntimeError,
                     "Leaving task %R does not match the current task %R.",
                     task, current ? current : Py_None);
        return -1;
    }
    return PyDict_DelItem(ql_state.current_tasks, loop);
}

/* ---- stepping ---------------------------------------------------------------------- */

/* fut.cancel(msg=msg) for any future; 1 if it was cancelled.  Tasks
 * waiting on tasks recurse here: bounded like Python calls, so a cycle of
 * tasks awaiting each other raises RecursionError as in the stdlib. */
static int
cancel_future(PyObject *fut, PyObject *msg)
{
    if (Py_IS_TYPE(fut, ql_task_type)) {
        if (Py_EnterRecursiveCall(" while cancelling a task") != 0) {
            return -1;
        }
        int rc = task_cancel(fut, ql_task_of(fut), msg);
        Py_LeaveRecursiveCall();
        return rc;
    }
    if (Py_IS_TYPE(fut, ql_future_type)) {
        return ql_fut_cancel(fut, ql_fut_of(fut), msg);
    }
    PyObject *args[2] = {fut, msg ? msg : Py_None};
    PyObject *res = PyObject_VectorcallMethod(ql_state.str_cancel, args,
                                              1 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                              ql_state.kwnames_msg);
    if (res == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(res);
    Py_DECREF(res);
    return truth;
}

PyObject *
ql_task_wakeup_callable(PyObject *task)
{
    ql_task *t = ql_task_of(task);
    if (t->wakeup == NULL) {
        t->wakeup = task_callable_new(&ql_task_wakeup_type, task, NULL);
    }
    return t->wakeup;
}

/* The loop a future belongs to, as futures._get_loop() finds it. */
static PyObject *
future_loop(PyObject *fut)
{
    PyObject *get_loop;
    int found = ql_getattr_optional(fut, ql_state.str_get_loop, &get_loop);
    if (found < 0) {
        return NULL;
    }
    if (found) {
        PyObject *loop = PyObject_CallNoArgs(get_loop);
        Py_DECREF(get_loop);
        return loop;
    }
    return PyObject_GetAttrString(fut, "_loop");
}

/* Start waiting on a future-like object the coroutine yielded. */
static int
wait_on(PyObject *task, ql_task *t, PyObject *fut)
{
    if (ql_future_check_exact(fut)) {
        ql_fut *f = ql_fut_of(fut);
        f->blocking = 0;
        if (ql_fut_add_wakeup(fut, f, task) < 0) {
            return -1;
        }
        ql_anchor_wait(task, fut);
    }
    else {
        PyObject *wakeup = ql_task_wakeup_callable(task);
        if (wakeup == NULL) {
            return -1;
        }
        if (PyObject_SetAttrString(fut, "_asyncio_future_blocking", Py_False) < 0) {
            return -1;
        }
        PyObject *args[3] = {fut, wakeup, ql_ctx_share(t->context)};
        PyObject *res = PyObject_VectorcallMethod(ql_state.str_add_done_callback, args,
                                                  2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                                  ql_state.kwnames_context);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    Py_XSETREF(t->fut_waiter, Py_NewRef(fut));
    if (t->must_cancel) {
        int rc = cancel_future(fut, t->cancel_msg);
        if (rc < 0) {
            return -1;
        }
        if (rc) {
            t->must_cancel = 0;
        }
    }
    return 0;
}

/* What the coroutine yielded: a future to wait on, None (a bare yield, as in
 * asyncio.sleep(0)), or a mistake reported into the task as RuntimeError. */
static int
handle_yield(PyObject *task, ql_task *t, PyObject *result)
{
    PyObject *loop = t->loop;
    if (ql_future_check_exact(result)) {
        ql_fut *rf = ql_fut_of(result);
        if (rf->loop != loop) {
            return schedule_step_error(task, t, PyExc_RuntimeError,
                                       "Task %R got Future %R attached to a different loop",
                                       task, result);
        }
        if (!rf->blocking) {
            return schedule_step_error(task, t, PyExc_RuntimeError,
                                       "yield was used instead of yield from in task %R with %R",
                                       task, result);
        }
        if (result == task) {
            return schedule_step_error(task, t, PyExc_RuntimeError,
                                       "Task cannot await on itself: %R", task);
        }
        return wait_on(task, t, result);
    }
    if (result == Py_None) {
        return schedule_step(task, t, NULL);
    }

    PyObject *blocking;
    int found = ql_getattr_optional(result, ql_state.str_asyncio_future_blocking, &blocking);
    if (found < 0) {
        return -1;
    }
    if (found && blocking != Py_None) {
        PyObject *res_loop = future_loop(result);
        if (res_loop == NULL) {
            Py_DECREF(blocking);
            return -1;
        }
        Py_DECREF(res_loop);    /* compared by identity only */
        if (res_loop != loop) {
            Py_DECREF(blocking);
            return schedule_step_error(task, t, PyExc_RuntimeError,
                                       "Task %R got Future %R attached to a different loop",
                                       task, result);
        }
        int truth = PyObject_IsTrue(blocking);
        Py_DECREF(blocking);
        if (truth < 0) {
            return -1;
        }
        if (truth) {
            if (result == task) {
                return schedule_step_error(task, t, PyExc_RuntimeError,
                                           "Task cannot await on itself: %R", task);
            }
            return wait_on(task, t, result);
        }
        return schedule_step_error(task, t, PyExc_RuntimeError,
                                   "yield was used instead of yield from in task %R with %R",
                                   task, result);
    }
    if (found) {
        Py_DECREF(blocking);
    }
    if (PyGen_CheckExact(result)) {
        return schedule_step_error(task, t, PyExc_RuntimeError,
                                   "yield was used instead of yield from for generator "
                                   "in task %R with %R", task, result);
    }
    return schedule_step_error(task, t, PyExc_RuntimeError, "Task got bad yield: %R", result);
}

/* coro.throw(exc), with the outcome in PySendResult terms. */
static PySendResult
coro_throw(PyObject *coro, PyObject *exc, PyObject **result)
{
    *result = PyObject_CallMethodOneArg(coro, ql_state.str_throw, exc);
    if (*result != NULL) {
        return PYGEN_NEXT;
    }
    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
        return PYGEN_ERROR;
    }
    PyObject *stop = ql_err_take();
    *result = PyObject_GetAttrString(stop, "value");
    Py_DECREF(stop);
    return *result ? PYGEN_RETURN : PYGEN_ERROR;
}

/* A debug-mode note on a CancelledError: who called cancel(), from where. */
static void
note_cancel_origin(ql_task *t, PyObject *exc)
{
    if (t->cancel_origin == NULL || exc == NULL
        || !PyErr_GivenExceptionMatches(exc, ql_state.CancelledError)) {
        return;
    }
    PyObject *res = PyObject_CallMethod(exc, "add_note", "O", t->cancel_origin);
    if (res == NULL) {
        PyErr_Clear();      /* a note is a courtesy: never an error */
    }
    Py_XDECREF(res);
    Py_CLEAR(t->cancel_origin);
}

/* Send into (or throw into) the coroutine and act on the outcome: finish
 * the task, or wait on what it yielded.  The caller made task current. */
static int
task_step_run(PyObject *task, ql_task *t, PyObject *exc)
{
    ql_fut *f = (ql_fut *)t;
    PyObject *result;
    PySendResult status;
    if (exc == NULL) {
        status = PyIter_Send(t->coro, Py_None, &result);
    }
    else {
        note_cancel_origin(t, exc);
        status = coro_throw(t->coro, exc, &result);
    }

    int rc = 0;
    if (status == PYGEN_RETURN) {
        if (t->must_cancel) {
            t->must_cancel = 0;
            rc = ql_fut_cancel(task, f, f->cancel_msg) < 0 ? -1 : 0;
        }
        else {
            rc = ql_fut_set_result(task, f, result);
        }
        Py_DECREF(result);
    }
    else if (status == PYGEN_ERROR) {
        if (PyErr_ExceptionMatches(ql_state.CancelledError)) {
            /* Future.cancel(self): the task ends cancelled with this very
             * exception, which result() will raise. */
            Py_XSETREF(f->cancelled_exc, ql_err_take());
            rc = ql_fut_cancel(task, f, NULL) < 0 ? -1 : 0;
        }
        else {
            int fatal = PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)
                        || PyErr_ExceptionMatches(PyExc_SystemExit);
            PyObject *err = ql_err_take();
            rc = ql_fut_set_exception(task, f, err);
            if (rc == 0 && fatal) {
                ql_err_restore(err);    /* ... and out of the loop */
                rc = -1;
            }
            else {
                Py_DECREF(err);
            }
        }
    }
    else {
        rc = handle_yield(task, t, result);
        Py_DECREF(result);
    }
    return rc;
}

static int
task_step(PyObject *task, ql_task *t, PyObject *exc)
{
    ql_fut *f = (ql_fut *)t;
    if (f->state != QL_PENDING) {
        PyErr_Format(ql_state.InvalidStateError, "_step(): already done: %R, %R",
                     task, exc ? exc : Py_None);
        return -1;
    }
    /* Woken from an anchored wait: tracked again first thing (anchor.h);
     * the step may anchor it anew. */
    ql_anchor_release(task);
    PyObject *owned_exc = NULL;
    if (t->must_cancel) {
        if (exc == NULL || !PyErr_GivenExceptionMatches(exc, ql_state.CancelledError)) {
            owned_exc = ql_fut_make_cancelled_error(f);
            if (owned_exc == NULL) {
                return -1;
            }
            exc = owned_exc;
        }
        t->must_cancel = 0;
    }
    Py_CLEAR(t->fut_waiter);
    PyObject *loop = Py_NewRef(f->loop);
    /* The coroutine may drop the last other reference to its task. */
    Py_INCREF(task);
    int rc = enter_task(loop, task);
    if (rc == 0) {
        rc = task_step_run(task, t, exc);
        PyObject *pending = rc < 0 ? ql_err_take() : NULL;
        if (leave_task(loop, task) < 0) {
            Py_XDECREF(pending);
            rc = -1;
        }
        else if (pending != NULL) {
            ql_err_restore(pending);
        }
    }
    Py_XDECREF(owned_exc);
    Py_DECREF(task);
    Py_DECREF(loop);
    return rc;
}

/* Eager start (3.12's eager_start=True): run the first step now, inside
 * the creator's step, with this task swapped in as the current task. */
static int
task_eager_start(PyObject *task, ql_task *t)
{
    PyObject *loop = t->loop;
    PyObject *prev = PyDict_GetItemWithError(ql_state.current_tasks, loop);
    if (prev == NULL && PyErr_Occurred()) {
        return -1;
    }
    Py_XINCREF(prev);
    if (PyDict_SetItem(ql_state.current_tasks, loop, task) < 0) {
        Py_XDECREF(prev);
        return -1;
    }
    int rc = -1;
    if (PyContext_Enter(t->context) == 0) {
        rc = task_step_run(task, t, NULL);
        if (PyContext_Exit(t->context) < 0) {
            rc = -1;
        }
    }
    PyObject *pending = rc < 0 ? ql_err_take() : NULL;
    int restored = prev ? PyDict_SetItem(ql_state.current_tasks, loop, prev)
                        : PyDict_DelItem(ql_state.current_tasks, loop);
    Py_XDECREF(prev);
    if (restored < 0) {
        Py_XDECREF(pending);
        return -1;
    }
    if (pending != NULL) {
        ql_err_restore(pending);
    }
    return rc;
}

static int
task_wakeup(PyObject *task, ql_task *t, PyObject *fut)
{
    PyObject *res;
    if (ql_future_check_exact(fut)) {
        res = ql_fut_result(ql_fut_of(fut));
    }
    else {
        res = PyObject_CallMethod(fut, "result", NULL);
    }
    if (res != NULL) {
        Py_DECREF(res);
        return task_step(task, t, NULL);
    }
    PyObject *exc = ql_err_take();
    int rc = task_step(task, t, exc);
    Py_DECREF(exc);
    return rc;
}

/* A step that raised: SystemExit and KeyboardInterrupt leave the loop; the
 * rest goes to the exception handler, as the stdlib's Handle would send it. */
static int
report_step_error(PyObject *task, ql_task *t, PyObject *arg, int wakeup)
{
    PyObject *cb = task_callable_new(wakeup ? &ql_task_wakeup_type : &ql_task_step_type,
                                     task, wakeup ? NULL : arg);
    PyObject *args = cb == NULL ? NULL
                     : wakeup ? PyTuple_Pack(1, arg) : PyTuple_New(0);
    int rc = args == NULL ? -1 : ql_handle_report_error(t->loop, cb, args, t->context);
    Py_XDECREF(args);
    Py_XDECREF(cb);
    return rc;
}

static int
run_in_context(PyObject *task, PyObject *arg, int wakeup)
{
    ql_task *t = ql_task_of(task);
    PyObject *context = Py_NewRef(t->context);
    if (PyContext_Enter(context) < 0) {
        ql_anchor_release(task);    /* no step: tracked again here (anchor.h) */
        Py_DECREF(context);
        return -1;
    }
    int rc = wakeup ? task_wakeup(task, t, arg) : task_step(task, t, arg);
    if (PyContext_Exit(context) < 0) {
        rc = -1;
    }
    Py_DECREF(context);
    if (rc < 0 && !PyErr_ExceptionMatches(PyExc_SystemExit)
        && !PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        return report_step_error(task, t, arg, wakeup);
    }
    return rc;
}

int
ql_task_run_step(PyObject *task, PyObject *exc)
{
    return run_in_context(task, exc, 0);
}

int
ql_task_run_wakeup(PyObject *task, PyObject *fut)
{
    return run_in_context(task, fut, 1);
}

/* ---- cancellation --------------------------------------------------------------- */

/* Debug mode: remember "cancelled by <function> at <file>:<line>". */
static void
record_cancel_origin(ql_task *t, PyObject *msg)
{
    PyFrameObject *frame = PyEval_GetFrame();
    if (frame == NULL) {
        return;
    }
    PyCodeObject *code = PyFrame_GetCode(frame);
    PyObject *note = PyUnicode_FromFormat(
        "cancel() called by %U at %U:%d, msg=%R", code->co_name, code->co_filename,
        PyFrame_GetLineNumber(frame), msg ? msg : Py_None);
    Py_DECREF(code);
    if (note == NULL) {
        PyErr_Clear();
        return;
    }
    Py_XSETREF(t->cancel_origin, note);
}

static int
task_cancel(PyObject *task, ql_task *t, PyObject *msg)
{
    (void)task;
    t->log_tb = 0;
    if (t->state != QL_PENDING) {
        return 0;
    }
    t->num_cancels_requested++;
    if (t->loop != NULL && ql_loop_check(t->loop)
        && ((ql_loop *)t->loop)->debug) {
        record_cancel_origin(t, msg);
    }
    if (t->fut_waiter != NULL) {
        int rc = cancel_future(t->fut_waiter, msg);
        if (rc != 0) {
            return rc;      /* 1: the waiter's cancellation wakes us; -1: error */
        }
    }
    t->must_cancel = 1;
    Py_XSETREF(t->cancel_msg, Py_XNewRef(msg));
    return 1;
}

/* ---- creation ---------------------------------------------------------------------- */

static int
loop_is_running(PyObject *loop)
{
    if (ql_loop_check(loop)) {
        return ((ql_loop *)loop)->running;
    }
    PyObject *res = PyObject_CallMethod(loop, "is_running", NULL);
    if (res == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(res);
    Py_DECREF(res);
    return truth;
}

static int
task_init(PyObject *self, PyObject *coro, PyObject *loop, PyObject *name, PyObject *context,
          int eager)
{
    ql_task *t = ql_task_of(self);
    if (ql_fut_init((ql_fut *)t, loop) < 0) {
        return -1;
    }
    int is_coro = PyCoro_CheckExact(coro);
    if (!is_coro) {
        PyObject *res = PyObject_CallOneArg(ql_state.iscoroutine, coro);
        if (res == NULL) {
            return -1;
        }
        is_coro = PyObject_IsTrue(res);
        Py_DECREF(res);
        if (is_coro < 0) {
            return -1;
        }
    }
    if (!is_coro) {
        t->log_destroy_pending = 0;
        PyErr_Format(PyExc_TypeError, "a coroutine was expected, got %R", coro);
        return -1;
    }
    t->log_destroy_pending = 1;
    t->must_cancel = 0;
    Py_XSETREF(t->base_context, Py_NewRef(Py_None));    /* see task.h */
    t->num_cancels_requested = 0;
    Py_XSETREF(t->coro, Py_NewRef(coro));
    if (context == NULL || context == Py_None) {
        ql_ctx_set(&t->context, ql_ctx_copy());
        if (t->context == NULL) {
            return -1;
        }
    }
    else {
        ql_ctx_set(&t->context, Py_NewRef(ql_ctx_share(context)));
    }
    if (name == NULL || name == Py_None) {
        Py_CLEAR(t->name);
        t->name_id = ++task_name_counter;
    }
    else {
        Py_XSETREF(t->name, PyObject_Str(name));
        if (t->name == NULL) {
            return -1;
        }
    }
    int running = eager ? loop_is_running(t->loop) : 0;
    if (running < 0) {
        return -1;
    }
    if (!running) {
        return schedule_step(self, t, NULL) < 0 ? -1 : ql_registry_add(self);
    }
    /* Registered first so all_tasks() lists it during its first step (3.12
     * keeps a separate eager set for that; 3.11's all_tasks() reads only
     * the registry).  Once done, all_tasks() skips it. */
    if (ql_registry_add(self) < 0) {
        return -1;
    }
    int rc = task_eager_start(self, t);
    if (t->state != QL_PENDING) {
        Py_CLEAR(t->coro);      /* done at once: break the cycle, as 3.12 */
    }
    return rc;
}

PyObject *
ql_task_new(PyObject *loop, PyObject *coro, PyObject *name, PyObject *context, int eager)
{
    if (ql_fault_point() < 0) {
        return NULL;
    }
    PyObject *self = ql_task_type->tp_alloc(ql_task_type, 0);
    if (self == NULL) {
        return NULL;
    }
    if (task_init(self, coro, loop, name, context, eager) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return self;
}

static int
task_tp_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"coro", "loop", "name", "context", "eager_start", NULL};
    PyObject *coro, *loop = Py_None, *name = Py_None, *context = Py_None;
    int eager = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OOOp:Task", kwlist,
                                     &coro, &loop, &name, &context, &eager)) {
        return -1;
    }
    return task_init(self, coro, loop, name, context, eager);
}

/* ---- Python methods ------------------------------------------------------------------ */

static PyObject *
task_py_cancel(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"msg", NULL};
    PyObject *msg;
    if (ql_parse_args("cancel", args, nargs, kwnames, kwlist, 1, 0, &msg) < 0) {
        return NULL;
    }
    int rc = task_cancel(self, ql_task_of(self), msg ? msg : Py_None);
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}

static PyObject *
task_cancelling(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(ql_task_of(self)->num_cancels_requested);
}

static PyObject *
task_uncancel(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ql_task *t = ql_task_of(self);
    if (t->num_cancels_requested > 0) {
        t->num_cancels_requested--;
#if QL_UNCANCEL_CLEARS_MUST_CANCEL
        if (t->num_cancels_requested == 0) {
            t->must_cancel = 0;
        }
#endif
    }
    return PyLong_FromLong(t->num_cancels_requested);
}

static PyObject *
task_get_coro(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *coro = ql_task_of(self)->coro;
    return Py_NewRef(coro ? coro : Py_None);
}

static PyObject *
task_get_context(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *context = ql_ctx_share(ql_task_of(self)->context);
    return Py_NewRef(context ? context : Py_None);
}

static PyObject *
task_get_name(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ql_task *t = ql_task_of(self);
    if (t->name == NULL) {
        t->name = PyUnicode_FromFormat("Task-%llu", (unsigned long long)t->name_id);
    }
    return Py_XNewRef(t->name);
}

static PyObject *
task_set_name(PyObject *self, PyObject *value)
{
    PyObject *name = PyObject_Str(value);
    if (name == NULL) {
        return NULL;
    }
    Py_XSETREF(ql_task_of(self)->name, name);
    Py_RETURN_NONE;
}

static PyObject *
task_set_result(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(result))
{
    PyErr_SetString(PyExc_RuntimeError, "Task does not support set_result operation");
    return NULL;
}

static PyObject *
task_set_exception(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(exc))
{
    PyErr_SetString(PyExc_RuntimeError, "Task does not support set_exception operation");
    return NULL;
}

static PyObject *
task_get_stack(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"limit", NULL};
    PyObject *limit = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$O:get_stack", kwlist, &limit)) {
        return NULL;
    }
    return PyObject_CallFunctionObjArgs(ql_state.task_get_stack, self, limit, NULL);
}

static PyObject *
task_print_stack(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"limit", "file", NULL};
    PyObject *limit = Py_None, *file = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$OO:print_stack", kwlist, &limit, &file)) {
        return NULL;
    }
    return PyObject_CallFunctionObjArgs(ql_state.task_print_stack, self, limit, file, NULL);
}

static PyObject *
task_repr(PyObject *self)
{
    return PyObject_CallOneArg(ql_state.task_repr, self);
}

/* ---- attributes -------------------------------------------------------------------------- */

static PyObject *
task_attr_or_none(PyObject *v)
{
    return Py_NewRef(v ? v : Py_None);
}

static PyObject *task_get_coro_attr(PyObject *self, void *Py_UNUSED(c)) { return task_attr_or_none(ql_task_of(self)->coro); }
static PyObject *task_get_fut_waiter(PyObject *self, void *Py_UNUSED(c)) { return task_attr_or_none(ql_task_of(self)->fut_waiter); }
static PyObject *task_get_context_attr(PyObject *self, void *Py_UNUSED(c)) { return task_attr_or_none(ql_ctx_share(ql_task_of(self)->context)); }
static PyObject *task_get_must_cancel(PyObject *self, void *Py_UNUSED(c)) { return PyBool_FromLong(ql_task_of(self)->must_cancel); }
static PyObject *task_get_num_cancels(PyObject *self, void *Py_UNUSED(c)) { return PyLong_FromLong(ql_task_of(self)->num_cancels_requested); }
static PyObject *task_get_name_attr(PyObject *self, void *Py_UNUSED(c)) { return task_get_name(self, NULL); }

static PyObject *
task_get_log_destroy_pending(PyObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(ql_task_of(self)->log_destroy_pending);
}

static int
task_set_log_destroy_pending(PyObject *self, PyObject *value, void *Py_UNUSED(c))
{
    int truth;
    if (ql_bool_value(value, &truth) < 0) {
        return -1;
    }
    ql_task_of(self)->log_destroy_pending = truth;     /* a bit-field on 3.13 */
    return 0;
}

static PyMethodDef task_own_methods[] = {
    {"cancel", (PyCFunction)(void (*)(void))task_py_cancel, METH_FASTCALL | METH_KEYWORDS,
     "cancel(msg=None): request that the task be cancelled."},
    {"cancelling", task_cancelling, METH_NOARGS, "The number of pending cancel requests."},
    {"uncancel", task_uncancel, METH_NOARGS, "Decrement the cancel request count."},
    {"get_coro", task_get_coro, METH_NOARGS, NULL},
    {"get_context", task_get_context, METH_NOARGS, NULL},
    {"get_name", task_get_name, METH_NOARGS, NULL},
    {"set_name", task_set_name, METH_O, NULL},
    {"set_result", task_set_result, METH_O, NULL},
    {"set_exception", task_set_exception, METH_O, NULL},
    {"get_stack", (PyCFunction)(void (*)(void))task_get_stack, METH_VARARGS | METH_KEYWORDS, NULL},
    {"print_stack", (PyCFunction)(void (*)(void))task_print_stack, METH_VARARGS | METH_KEYWORDS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef task_own_getset[] = {
    {"_coro", task_get_coro_attr, NULL, NULL, NULL},
    {"_fut_waiter", task_get_fut_waiter, NULL, NULL, NULL},
    {"_context", task_get_context_attr, NULL, NULL, NULL},
    {"_must_cancel", task_get_must_cancel, NULL, NULL, NULL},
    {"_num_cancels_requested", task_get_num_cancels, NULL, NULL, NULL},
    {"_name", task_get_name_attr, NULL, NULL, NULL},
    {"_log_destroy_pending", task_get_log_destroy_pending, task_set_log_destroy_pending, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- GC, finalization, type ------------------------------------------------------------ */

static int
task_traverse(PyObject *self, visitproc visit, void *arg)
{
    ql_task *t = ql_task_of(self);
#if !QL_ASYNCIO_BASE_IS_HEAPTYPE
    Py_VISIT(Py_TYPE(self));
#endif
    /* Our own fields here; the base's (coro, name, fut_waiter, the future
     * part) are the base traverse's. */
    int rc = ql_ctx_visit(t->context, visit, arg);
    if (rc != 0) {
        return rc;
    }
    Py_VISIT(t->wakeup);
    Py_VISIT(t->cancel_origin);
    return ((PyTypeObject *)ql_state.asyncio_task)->tp_traverse(self, visit, arg);
}

static void
task_clear_fields(ql_task *t)
{
    Py_CLEAR(t->coro);
    ql_ctx_drop(&t->context);
    Py_CLEAR(t->name);
    Py_CLEAR(t->fut_waiter);
    Py_CLEAR(t->wakeup);
    Py_CLEAR(t->cancel_origin);
    ql_fut_clear((ql_fut *)t);
}

static int
task_clear(PyObject *self)
{
    ql_registry_forget(self);
    task_clear_fields(ql_task_of(self));
    return ((PyTypeObject *)ql_state.asyncio_task)->tp_clear(self);
}

/* A task destroyed while pending is reported, as Task.__del__ does. */
static void
task_finalize(PyObject *self)
{
    ql_task *t = ql_task_of(self);
    ql_registry_forget(self);   /* a task being destroyed is not listed */
    if (t->loop != NULL && t->state == QL_PENDING && t->log_destroy_pending) {
        PyObject *exc = ql_err_take();
        PyObject *context = PyDict_New();
        PyObject *message = PyUnicode_FromString("Task was destroyed but it is pending!");
        if (context != NULL && message != NULL
            && PyDict_SetItemString(context, "task", self) == 0
            && PyDict_SetItemString(context, "message", message) == 0
            && (t->source_traceback == NULL
                || PyDict_SetItemString(context, "source_traceback",
                                        t->source_traceback) == 0)) {
            PyObject *res = PyObject_CallMethod(t->loop, "call_exception_handler",
                                                "O", context);
            Py_XDECREF(res);
        }
        if (PyErr_Occurred()) {
            PyErr_WriteUnraisable(self);
        }
        Py_XDECREF(message);
        Py_XDECREF(context);
        if (exc != NULL) {
            ql_err_restore(exc);
        }
    }
    ql_fut_finalize(self, (ql_fut *)t);
}

static void
task_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc(self) < 0) {
        return;     /* resurrected */
    }
    PyObject_GC_UnTrack(self);
    ql_registry_forget(self);
    task_clear_fields(ql_task_of(self));
    ((PyTypeObject *)ql_state.asyncio_task)->tp_dealloc(self);
#if !QL_ASYNCIO_BASE_IS_HEAPTYPE
    Py_DECREF(tp);
#else
    (void)tp;
#endif
}

int
ql_task_type_ready(PyObject *module)
{
    if (PyType_Ready(&ql_task_step_type) < 0 || PyType_Ready(&ql_task_wakeup_type) < 0) {
        return -1;
    }
    PyMethodDef *methods = ql_methods_concat(ql_fut_common_methods, task_own_methods);
    PyGetSetDef *getset = ql_getset_concat(ql_fut_common_getset, task_own_getset);
    if (methods == NULL || getset == NULL) {
        return -1;
    }
    if (ql_asyncio_layout_check((PyTypeObject *)ql_state.asyncio_task, offsetof(ql_task, context),
                                QL_ASYNCIO_DICT_OFFSETS(ql_task)) < 0) {
        return -1;
    }
    PyType_Slot slots[] = {
        {Py_tp_doc, "A quickloop Task: asyncio.Task with C stepping and cancellation."},
        {Py_tp_init, task_tp_init},
        {Py_tp_repr, task_repr},
        {Py_tp_traverse, task_traverse},
        {Py_tp_clear, task_clear},
        {Py_tp_finalize, task_finalize},
        {Py_tp_dealloc, task_dealloc},
        {Py_tp_iter, ql_future_await},
        {Py_am_await, ql_future_await},
        {Py_tp_methods, methods},
        {Py_tp_getset, getset},
        {0, NULL},
    };
    PyType_Spec spec = {
        .name = "quickloop.Task",
        .basicsize = (int)sizeof(ql_task),
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
        .slots = slots,
    };
    ql_task_type = (PyTypeObject *)PyType_FromSpecWithBases(&spec, ql_state.asyncio_task);
    if (ql_task_type == NULL) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "Task", (PyObject *)ql_task_type);
}
