/* loop.c - the loop core.  One iteration, as in libuv and the stdlib's
 * _run_once: wait for I/O (no longer than the earliest timer), queue the ready
 * I/O handles, queue the due timers, then run exactly the callbacks queued so
 * far; anything they schedule runs next iteration.  The GIL is released only
 * while waiting in epoll. */
#include "loop.h"
#include <errno.h>
#include <math.h>
#include <time.h>
#include "future.h"
#include "module.h"
#include "task.h"
#include "transport.h"

/* The longest single wait, as in the stdlib (MAXIMUM_SELECT_TIMEOUT). */
#define MAX_WAIT_NS (INT64_C(86400) * 1000000000)

int64_t
ql_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline double
monotonic_seconds(void)
{
    return (double)ql_monotonic_ns() / 1e9;
}

/* ---- the loop's clock ----------------------------------------------------------
 * time.monotonic() in C, unless time() is overridden by a subclass or on the
 * instance (virtual clocks in tests): then every deadline, wait and "due"
 * check follows self.time(), as BaseEventLoop's do. */

static int
type_overrides_time(PyTypeObject *type)
{
    PyObject *mine = PyObject_GetAttrString((PyObject *)&ql_loop_type, "time");
    PyObject *theirs = mine ? PyObject_GetAttrString((PyObject *)type, "time") : NULL;
    int differs = theirs == NULL ? -1 : mine != theirs;
    Py_XDECREF(mine);
    Py_XDECREF(theirs);
    return differs;
}

static int
loop_now(ql_loop *self, double *now)
{
    if (!self->custom_time) {
        *now = monotonic_seconds();
        return 0;
    }
    PyObject *res = PyObject_CallMethod((PyObject *)self, "time", NULL);
    if (res == NULL) {
        return -1;
    }
    *now = PyFloat_AsDouble(res);
    Py_DECREF(res);
    if (*now == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (isnan(*now)) {
        PyErr_SetString(PyExc_ValueError, "loop.time() returned NaN");
        return -1;
    }
    return 0;
}

static int
loop_now_ns(ql_loop *self, int64_t *now)
{
    if (!self->custom_time) {
        *now = ql_monotonic_ns();
        return 0;
    }
    double seconds;
    if (loop_now(self, &seconds) < 0) {
        return -1;
    }
    /* "now" rounds down: a deadline (rounded up) is due once now reaches it. */
    *now = ql_timer_deadline(seconds);
    if ((double)*now / 1e9 > seconds && *now > -INT64_MAX) {
        (*now)--;
    }
    return 0;
}

static int
loop_setattro(ql_loop *self, PyObject *name, PyObject *value)
{
    if (PyObject_GenericSetAttr((PyObject *)self, name, value) < 0) {
        return -1;
    }
    if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "time") == 0) {
        int overridden = value != NULL ? 1 : type_overrides_time(Py_TYPE(self));
        if (overridden < 0) {
            return -1;
        }
        self->custom_time = overridden;
    }
    return 0;
}

/* ---- argument checks -------------------------------------------------------- */

static int
check_closed(ql_loop *self)
{
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

static int
check_thread(ql_loop *self)
{
    if (self->running && PyThread_get_thread_ident() != self->thread_id) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Non-thread-safe operation invoked on an event loop "
                        "other than the current one");
        return -1;
    }
    return 0;
}

static int
call_predicate(PyObject *predicate, PyObject *arg)
{
    PyObject *res = PyObject_CallOneArg(predicate, arg);
    if (res == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(res);
    Py_DECREF(res);
    return truth;
}

/* Non-callables are always refused (a clear error now instead of one in the
 * exception handler later); coroutine functions only in debug mode, as in
 * the stdlib, because recognising them costs a Python call. */
static int
check_callback(ql_loop *self, PyObject *callback, const char *method)
{
    int is_coro = 0;
    if (self->debug) {
        is_coro = call_predicate(ql_state.iscoroutine, callback);
        if (is_coro == 0) {
            is_coro = call_predicate(ql_state.iscoroutinefunction, callback);
        }
    }
    else if (!PyCallable_Check(callback)) {
        is_coro = call_predicate(ql_state.iscoroutine, callback);
    }
    if (is_coro < 0) {
        return -1;
    }
    if (is_coro) {
        PyErr_Format(PyExc_TypeError, "coroutines cannot be used with %s()", method);
        return -1;
    }
    if (!PyCallable_Check(callback)) {
        PyErr_Format(PyExc_TypeError,
                     "a callable object was expected by %s(), got %R",
                     method, callback);
        return -1;
    }
    return 0;
}

/* Split a vectorcall into (fixed..., callback, *args, context=None). */
static int
parse_callback_args(const char *method, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames, Py_ssize_t nfixed, PyObject **context)
{
    *context = NULL;
    if (nargs < nfixed + 1) {
        PyErr_Format(PyExc_TypeError, "%s() missing required positional arguments",
                     method);
        return -1;
    }
    if (kwnames != NULL) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, i);
            if (name != ql_state.str_context        /* interned: the usual case */
                && (!PyUnicode_Check(name)
                    || PyUnicode_CompareWithASCIIString(name, "context") != 0)) {
                PyErr_Format(PyExc_TypeError,
                             "%s() got an unexpected keyword argument '%S'",
                             method, name);
                return -1;
            }
            *context = args[nargs + i];
        }
    }
    return 0;
}

/* ---- scheduling -------------------------------------------------------------- */

static PyObject *
schedule_soon(ql_loop *self, const char *method, PyObject *const *args,
              Py_ssize_t nargs, PyObject *kwnames, int threadsafe)
{
    PyObject *context;
    if (parse_callback_args(method, args, nargs, kwnames, 0, &context) < 0
        || check_closed(self) < 0
        || (self->debug && !threadsafe && check_thread(self) < 0)
        || check_callback(self, args[0], method) < 0) {
        return NULL;
    }
    ql_handle *h = ql_handle_new((PyObject *)self, args[0], args + 1, nargs - 1, context,
                                 self->debug);
    if (h == NULL || ql_ready_push(&self->ready, QL_READY_HANDLE, (PyObject *)h,
                                   NULL, NULL) < 0) {
        Py_XDECREF(h);
        return NULL;
    }
    if (self->running) {
        ql_ready_untrack_newest(&self->ready);  /* see ready.h */
    }
    if (threadsafe) {
        ql_wakeup_signal(&self->wakeup);
    }
    return (PyObject *)h;
}

static PyObject *
loop_call_soon(ql_loop *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return schedule_soon(self, "call_soon", args, nargs, kwnames, 0);
}

static PyObject *
loop_call_soon_threadsafe(ql_loop *self, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames)
{
    return schedule_soon(self, "call_soon_threadsafe", args, nargs, kwnames, 1);
}

/* now: loop.time() if the caller has it (call_later), else NAN. */
static PyObject *
schedule_at(ql_loop *self, const char *method, double when, double now, PyObject *const *args,
            Py_ssize_t nargs, PyObject *context)
{
    if (check_closed(self) < 0
        || (self->debug && check_thread(self) < 0)
        || check_callback(self, args[0], method) < 0) {
        return NULL;
    }
    ql_timer_handle *t = ql_timer_handle_new((PyObject *)self, when,
                                             ql_timer_deadline(when), args[0],
                                             args + 1, nargs - 1, context, self->debug);
    if (t == NULL) {
        return NULL;
    }
    t->seq = self->timer_seq++;
    /* A timeout armed in the running loop leaves the GC's lists (anchor.h). */
    int untrack = 0;
    if (self->running && !self->custom_time) {
        if (isnan(now)) {
            now = monotonic_seconds();
        }
        untrack = when >= now + QL_TIMER_UNTRACK_AHEAD;
    }
    if (ql_timer_heap_push(&self->timers, t, untrack) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    return (PyObject *)t;
}

/* A time argument as a double; None, non-numbers and NaN are refused. */
static int
parse_time(PyObject *value, const char *none_msg, const char *nan_msg, double *out)
{
    if (value == Py_None) {
        PyErr_SetString(PyExc_TypeError, none_msg);
        return -1;
    }
    *out = PyFloat_AsDouble(value);
    if (*out == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (isnan(*out)) {
        PyErr_SetString(PyExc_ValueError, nan_msg);
        return -1;
    }
    return 0;
}

static PyObject *
loop_call_later(ql_loop *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *context;
    double delay;
    if (parse_callback_args("call_later", args, nargs, kwnames, 1, &context) < 0
        || parse_time(args[0], "delay must not be None", "delay must not be NaN",
                      &delay) < 0) {
        return NULL;
    }
    double now;
    if (loop_now(self, &now) < 0) {
        return NULL;
    }
    return schedule_at(self, "call_at", now + delay, now, args + 1, nargs - 1, context);
}

static PyObject *
loop_call_at(ql_loop *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *context;
    double when;
    if (parse_callback_args("call_at", args, nargs, kwnames, 1, &context) < 0
        || parse_time(args[0], "when cannot be None", "when must not be NaN",
                      &when) < 0) {
        return NULL;
    }
    return schedule_at(self, "call_at", when, NAN, args + 1, nargs - 1, context);
}

static PyObject *
loop_create_future(ql_loop *self, PyObject *Py_UNUSED(ignored))
{
    return ql_future_new((PyObject *)self);
}

/* quickloop's eager_task_factory, or asyncio's (3.12+), which makes the same
 * eager tasks: create_task makes either kind itself, as a quickloop.Task
 * (README, "Differences"). */
static int
is_eager_factory(PyObject *factory)
{
    return factory == ql_state.eager_task_factory
           || (factory != NULL && factory == ql_state.asyncio_eager_task_factory);
}

/* A keyword other than name and context among kwnames. */
static int
has_other_keyword(PyObject *kwnames)
{
    Py_ssize_t n = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(key, "name") != 0
            && PyUnicode_CompareWithASCIIString(key, "context") != 0) {
            return 1;
        }
    }
    return 0;
}

/* create_task() with other keywords: the cold path on the Python side
 * (Loop._create_task_kwargs), which passes them on where this CPython's
 * create_task does (3.13.4 and later) and refuses them elsewhere. */
static PyObject *
create_task_kwargs(ql_loop *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *method = PyObject_GetAttrString((PyObject *)self, "_create_task_kwargs");
    if (method == NULL) {
        return NULL;
    }
    PyObject *res = PyObject_Vectorcall(method, args, nargs, kwnames);
    Py_DECREF(method);
    return res;
}

/* create_task(coro, *, name=None, context=None): a quickloop.Task, or the
 * task factory's product, as BaseEventLoop.create_task makes it:
 * factory(loop, coro), or factory(loop, coro, context=context) when a
 * context is given.  Naming the product (version-specific, _compat.py) is
 * left to the Python side (Loop._name_factory_task), when a name is given. */
static PyObject *
loop_create_task(ql_loop *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"coro", "name", "context", NULL};
    PyObject *parsed[3];
    if (has_other_keyword(kwnames)) {
        return create_task_kwargs(self, args, nargs, kwnames);
    }
    if (ql_parse_args("create_task", args, nargs, kwnames, kwlist, 1, 1, parsed) < 0
        || check_closed(self) < 0) {
        return NULL;
    }
    PyObject *coro = parsed[0];
    PyObject *name = parsed[1] ? parsed[1] : Py_None;
    PyObject *context = parsed[2] ? parsed[2] : Py_None;
    if (self->task_factory == NULL || is_eager_factory(self->task_factory)) {
        return ql_task_new((PyObject *)self, coro, name, context,
                           self->task_factory != NULL);
    }
    /* Held across the call: the factory may replace itself. */
    PyObject *factory = Py_NewRef(self->task_factory);
    PyObject *argv[3] = {(PyObject *)self, coro, context};
    PyObject *task = PyObject_Vectorcall(factory, argv, 2,
                                         context == Py_None ? NULL : ql_state.kwnames_context);
    Py_DECREF(factory);
    if (task != NULL && name != Py_None) {
        PyObject *res = PyObject_CallMethod((PyObject *)self, "_name_factory_task", "OO",
                                            task, name);
        if (res == NULL) {
            Py_CLEAR(task);
        }
        Py_XDECREF(res);
    }
    return task;
}

static PyObject *
loop_time(ql_loop *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(monotonic_seconds());
}

int
ql_loop_time(PyObject *loop, double *now)
{
    if (ql_loop_check(loop)) {
        return loop_now((ql_loop *)loop, now);
    }
    PyObject *res = PyObject_CallMethod(loop, "time", NULL);
    if (res == NULL) {
        return -1;
    }
    *now = PyFloat_AsDouble(res);
    Py_DECREF(res);
    return (*now == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

PyObject *
ql_loop_call_soon(PyObject *loop, PyObject *callback)
{
    if (ql_loop_check(loop)) {
        return schedule_soon((ql_loop *)loop, "call_soon", &callback, 1, NULL, 0);
    }
    return PyObject_CallMethod(loop, "call_soon", "O", callback);
}

PyObject *
ql_loop_call_at(PyObject *loop, double when, PyObject *callback)
{
    if (ql_loop_check(loop)) {
        return schedule_at((ql_loop *)loop, "call_at", when, NAN, &callback, 1, NULL);
    }
    return PyObject_CallMethod(loop, "call_at", "dO", when, callback);
}

/* Queue an existing handle (signal and I/O dispatch), as the stdlib's
 * _add_callback: a cancelled handle is dropped. */
static int
add_callback(ql_loop *self, PyObject *handle)
{
    if (((ql_handle *)handle)->cancelled) {
        return 0;
    }
    return ql_ready_push(&self->ready, QL_READY_HANDLE, handle, NULL, NULL);
}

int
ql_loop_queue(PyObject *loop, ql_ready_kind kind, PyObject *obj, PyObject *arg,
              PyObject *context)
{
    if (!ql_loop_check(loop) || ((ql_loop *)loop)->debug) {
        return 0;
    }
    ql_loop *self = (ql_loop *)loop;
    if (check_closed(self) < 0
        || ql_ready_push(&self->ready, kind, obj, arg, context) < 0) {
        return -1;
    }
    return 1;
}

int
ql_loop_reserve(PyObject *loop, size_t n)
{
    if (n == 0 || loop == NULL || !ql_loop_check(loop) || ((ql_loop *)loop)->debug) {
        return 0;
    }
    return ql_ready_reserve_n(&((ql_loop *)loop)->ready, n);
}

static PyObject *
loop_add_callback(ql_loop *self, PyObject *handle)
{
    if (!ql_handle_check(handle)) {
        PyErr_Format(PyExc_TypeError, "expected a quickloop Handle, got %R", handle);
        return NULL;
    }
    if (add_callback(self, handle) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* loop._make_handle(callback, *args): a Handle that is not scheduled. */
static PyObject *
loop_make_handle(ql_loop *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "_make_handle() needs a callback");
        return NULL;
    }
    return (PyObject *)ql_handle_new((PyObject *)self, args[0], args + 1, nargs - 1, NULL,
                                     self->debug);
}

/* ---- I/O readiness ---------------------------------------------------------- */

/* An fd's reader or writer left the fd table: a Handle is cancelled (as the
 * selector loop does), a transport told it is no longer registered. */
static int
drop_io_object(PyObject *old, int writer)
{
    if (ql_handle_check(old)) {
        return ql_handle_cancel((ql_handle *)old);
    }
    ql_transport_io_dropped(old, writer);
    return 0;
}

int
ql_loop_io_start(PyObject *loop, int fd, int writer, PyObject *obj)
{
    ql_loop *self = (ql_loop *)loop;
    PyObject *old;
    if (check_closed(self) < 0 || ql_poller_set(&self->poller, fd, writer, obj, &old) < 0) {
        return -1;
    }
    if (old != NULL && old != obj) {
        int rc = drop_io_object(old, writer);
        Py_DECREF(old);
        return rc;
    }
    Py_XDECREF(old);
    return 0;
}

int
ql_loop_io_stop(PyObject *loop, int fd, int writer)
{
    ql_loop *self = (ql_loop *)loop;
    if (self->closed) {
        return 0;
    }
    PyObject *old;
    ql_poller_unset(&self->poller, fd, writer, &old);
    if (old == NULL) {
        return 0;
    }
    int rc = drop_io_object(old, writer);
    Py_DECREF(old);
    return rc < 0 ? -1 : 1;
}

static PyObject *
add_io(ql_loop *self, PyObject *const *args, Py_ssize_t nargs, int writer,
       const char *method)
{
    if (nargs < 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes an fd and a callback", method);
        return NULL;
    }
    int fd = ql_fileobj_to_fd(args[0]);
    if (fd < 0 || check_closed(self) < 0 || check_callback(self, args[1], method) < 0) {
        return NULL;
    }
    PyObject *old, *h = (PyObject *)ql_handle_new((PyObject *)self, args[1], args + 2,
                                                  nargs - 2, NULL, self->debug);
    if (h == NULL) {
        return NULL;
    }
    if (ql_poller_set(&self->poller, fd, writer, h, &old) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    if (old != NULL) {
        int rc = drop_io_object(old, writer);
        Py_DECREF(old);
        if (rc < 0) {
            Py_DECREF(h);
            return NULL;
        }
    }
    return h;
}

static PyObject *
remove_io(ql_loop *self, PyObject *fileobj, int writer)
{
    int fd = ql_fileobj_to_fd(fileobj);
    if (fd < 0) {
        /* An fd too large to register cannot be registered: not found. */
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            Py_RETURN_FALSE;
        }
        return NULL;
    }
    if (self->closed) {
        Py_RETURN_FALSE;
    }
    PyObject *old;
    ql_poller_unset(&self->poller, fd, writer, &old);
    if (old == NULL) {
        Py_RETURN_FALSE;
    }
    int rc = drop_io_object(old, writer);
    Py_DECREF(old);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

static PyObject *
loop__add_reader(ql_loop *self, PyObject *const *args, Py_ssize_t nargs)
{
    return add_io(self, args, nargs, 0, "add_reader");
}

static PyObject *
loop__add_writer(ql_loop *self, PyObject *const *args, Py_ssize_t nargs)
{
    return add_io(self, args, nargs, 1, "add_writer");
}

static PyObject *
loop__remove_reader(ql_loop *self, PyObject *fileobj)
{
    return remove_io(self, fileobj, 0);
}

static PyObject *
loop__remove_writer(ql_loop *self, PyObject *fileobj)
{
    return remove_io(self, fileobj, 1);
}

/* loop._fd_key(fd): None, or (events, reader, writer) as a selector key holds
 * them (EVENT_READ = 1, EVENT_WRITE = 2): what the Python selector view reads. */
static PyObject *
loop_fd_key(ql_loop *self, PyObject *fileobj)
{
    int fd = ql_fileobj_to_fd(fileobj);
    if (fd < 0) {
        return NULL;
    }
    if (fd >= self->poller.nfds || self->poller.fds[fd].registered == 0) {
        Py_RETURN_NONE;
    }
    ql_fd_entry *e = &self->poller.fds[fd];
    long events = ((e->registered & EPOLLIN) ? 1 : 0) | ((e->registered & EPOLLOUT) ? 2 : 0);
    return Py_BuildValue("(lOO)", events, e->reader ? e->reader : Py_None,
                         e->writer ? e->writer : Py_None);
}

/* loop._fd_list(): the registered fds. */
static PyObject *
loop_fd_list(ql_loop *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *list = PyList_New(0);
    for (int fd = 0; list != NULL && fd < self->poller.nfds; fd++) {
        if (self->poller.fds[fd].registered == 0) {
            continue;
        }
        PyObject *item = PyLong_FromLong(fd);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_CLEAR(list);
        }
        Py_XDECREF(item);
    }
    return list;
}

/* loop._write_to_self(): wake the loop (the stdlib loop's self-pipe write). */
static PyObject *
loop_write_to_self(ql_loop *self, PyObject *Py_UNUSED(ignored))
{
    ql_wakeup_signal(&self->wakeup);
    Py_RETURN_NONE;
}

/* Queue the handles of the fds epoll reported, with the selectors module's
 * mapping: any bit but EPOLLOUT wakes the reader, any but EPOLLIN the writer
 * (so errors and hang-ups wake both).  A transport is queued as itself. */
static int
process_io_events(ql_loop *self, int n)
{
    ql_poller *p = &self->poller;
    for (int i = 0; i < n; i++) {
        int fd = p->events[i].data.fd;
        uint32_t events = p->events[i].events;
        if (fd == self->wakeup.fd) {
            ql_wakeup_drain(&self->wakeup);
            continue;
        }
        if (fd >= p->nfds) {
            continue;
        }
        for (int writer = 0; writer <= 1; writer++) {
            uint32_t other = writer ? EPOLLIN : EPOLLOUT;
            PyObject *h = writer ? p->fds[fd].writer : p->fds[fd].reader;
            if (h == NULL || !(events & ~other)) {
                continue;
            }
            if (!ql_handle_check(h)) {
                if (ql_ready_push(&self->ready, writer ? QL_READY_IO_WRITE : QL_READY_IO_READ,
                                  h, NULL, NULL) < 0) {
                    return -1;
                }
                ql_transport_io_queued(ql_transport_state(h), writer);
            }
            else if (((ql_handle *)h)->cancelled) {
                PyObject *old;
                ql_poller_unset(p, fd, writer, &old);
                Py_XDECREF(old);
            }
            else if (ql_ready_push(&self->ready, QL_READY_HANDLE, h, NULL, NULL) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* ---- running ----------------------------------------------------------------- */

static int
run_handle(ql_loop *self, ql_handle *h)
{
    if (!self->debug) {
        return ql_handle_run(h);
    }
    Py_XSETREF(self->current_handle, Py_NewRef(h));
    double t0 = monotonic_seconds();
    int rc = ql_handle_run(h);
    double dt = monotonic_seconds() - t0;
    Py_CLEAR(self->current_handle);
    if (rc == 0 && dt >= self->slow_callback_duration) {
        PyObject *res = PyObject_CallMethod((PyObject *)self, "_log_slow_callback",
                                            "Od", (PyObject *)h, dt);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    return rc;
}

static int
run_entry(ql_loop *self, ql_ready_entry *e)
{
    switch (e->kind) {
    case QL_READY_HANDLE:
        return run_handle(self, (ql_handle *)e->obj);
    case QL_READY_STEP:
        return ql_task_run_step(e->obj, e->arg);
    case QL_READY_WAKEUP:
        return ql_task_run_wakeup(e->obj, e->arg);
    case QL_READY_CALLBACK:
        return ql_fut_run_callback((PyObject *)self, e->obj, e->arg, e->context);
    case QL_READY_IO_READ:
        return ql_transport_io_ready(e->obj, 0);
    case QL_READY_IO_WRITE:
        return ql_transport_io_ready(e->obj, 1);
    }
    return 0;
}

static int
run_once(ql_loop *self)
{
    int64_t timeout = -1;
    ql_timer_handle *top = ql_timer_heap_top(&self->timers);
    if (self->ready.len > 0 || self->stopping) {
        timeout = 0;
    }
    else if (top != NULL) {
        /* Compare before subtracting: a deadline far in the past is
         * -INT64_MAX ns and the difference would overflow. */
        int64_t now;
        if (loop_now_ns(self, &now) < 0) {
            return -1;
        }
        if (top->deadline <= now) {
            timeout = 0;
        }
        else {
            int64_t wait = top->deadline - now;
            timeout = wait > MAX_WAIT_NS ? MAX_WAIT_NS : wait;
        }
    }

    /* Work is ready and no fd but the wake-up fd is watched: a poll could
     * only report a wake-up, which a loop that does not block needs not
     * see (call_soon_threadsafe has queued its callback already).  Skipping
     * it saves a system call per busy iteration. */
    int n = 0;
    if (timeout != 0 || self->poller.nwatchers > 0) {
        n = ql_poller_wait(&self->poller, timeout);
        self->polls++;
    }
    if (n < 0) {
        if (errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        /* A signal: run Python-level handlers now (Ctrl-C raises here). */
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
        n = 0;
    }
    if (process_io_events(self, n) < 0) {
        return -1;
    }

    int64_t now;
    if (ql_timer_heap_top(&self->timers) != NULL && loop_now_ns(self, &now) < 0) {
        return -1;
    }
    while ((top = ql_timer_heap_top(&self->timers)) != NULL && top->deadline <= now) {
        /* Room first: a due timer leaves the heap only when it cannot be lost. */
        if (ql_ready_reserve(&self->ready) < 0) {
            return -1;
        }
        ql_timer_handle *t = ql_timer_heap_pop(&self->timers);
        (void)ql_ready_push(&self->ready, QL_READY_HANDLE, (PyObject *)t, NULL, NULL);
        Py_DECREF(t);
    }

    /* Run only what is queued now; what these callbacks queue waits a turn. */
    ql_ready_entry e;
    for (size_t ntodo = self->ready.len; ntodo > 0 && ql_ready_pop(&self->ready, &e); ntodo--) {
        int rc = run_entry(self, &e);
        ql_ready_entry_clear(&e);
        if (rc < 0) {
            return -1;
        }
    }
    self->iterations++;
    return 0;
}

/* loop._run(): iterate until stop(); run_forever (Python) sets up around it. */
static PyObject *
loop_run(ql_loop *self, PyObject *Py_UNUSED(ignored))
{
    if (check_closed(self) < 0) {
        return NULL;
    }
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "This event loop is already running");
        return NULL;
    }
    self->running = 1;
    self->thread_id = PyThread_get_thread_ident();
    int rc;
    do {
        rc = run_once(self);
    } while (rc == 0 && !self->stopping);
    self->running = 0;
    ql_timer_heap_track_all(&self->timers);     /* see timer.h */
    ql_ready_track_all(&self->ready);           /* see ready.h */
    self->stopping = 0;
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
loop_stop(ql_loop *self, PyObject *Py_UNUSED(ignored))
{
    self->stopping = 1;
    Py_RETURN_NONE;
}

static void
release_resources(ql_loop *self)
{
    ql_ready_clear(&self->ready);
    ql_timer_heap_clear(&self->timers);
    ql_poller_close(&self->poller);
    ql_wakeup_close(&self->wakeup);
}

/* loop._close(): the C half of close(); Python's close() runs the checks and
 * shuts down the executor. */
static PyObject *
loop_close_core(ql_loop *self, PyObject *Py_UNUSED(ignored))
{
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "Cannot close a running event loop");
        return NULL;
    }
    if (!self->closed) {
        self->closed = 1;
        release_resources(self);
    }
    Py_RETURN_NONE;
}

/* loop._after_fork(): in a forked child, give this loop its own epoll
 * instance and eventfd; the inherited ones are shared with the parent. */
static PyObject *
loop_after_fork(ql_loop *self, PyObject *Py_UNUSED(ignored))
{
    if (self->closed) {
        Py_RETURN_NONE;
    }
    if (ql_poller_reopen(&self->poller) < 0
        || ql_wakeup_reopen(&self->wakeup) < 0
        || ql_poller_add_internal(&self->poller, self->wakeup.fd) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
loop_is_running(ql_loop *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->running);
}

static PyObject *
loop_is_closed(ql_loop *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->closed);
}

static PyObject *
loop_get_debug(ql_loop *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->debug);
}

/* ---- attributes --------------------------------------------------------------- */

static PyObject *
loop_get_debug_attr(ql_loop *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->debug);
}

static int
loop_set_debug_attr(ql_loop *self, PyObject *value, void *Py_UNUSED(c))
{
    return ql_bool_value(value, &self->debug);
}

static PyObject *
loop_get_slow(ql_loop *self, void *Py_UNUSED(c))
{
    return PyFloat_FromDouble(self->slow_callback_duration);
}

static int
loop_set_slow(ql_loop *self, PyObject *value, void *Py_UNUSED(c))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete slow_callback_duration");
        return -1;
    }
    double v = PyFloat_AsDouble(value);
    if (v == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    self->slow_callback_duration = v;
    return 0;
}

static PyObject *
loop_get_thread_id(ql_loop *self, void *Py_UNUSED(c))
{
    if (!self->running) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLong(self->thread_id);
}

static PyObject *
loop_get_current_handle(ql_loop *self, void *Py_UNUSED(c))
{
    return Py_NewRef(self->current_handle ? self->current_handle : Py_None);
}

static PyObject *
loop_get_task_factory(ql_loop *self, void *Py_UNUSED(c))
{
    return Py_NewRef(self->task_factory ? self->task_factory : Py_None);
}

static int
loop_set_task_factory(ql_loop *self, PyObject *value, void *Py_UNUSED(c))
{
    if (value != NULL && value != Py_None && !PyCallable_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "task factory must be a callable or None");
        return -1;
    }
    Py_XSETREF(self->task_factory, value == Py_None ? NULL : Py_XNewRef(value));
    return 0;
}

static PyObject *
loop_get_timer_count(ql_loop *self, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(self->timers.len);
}

static PyObject *
loop_get_iterations(ql_loop *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(self->iterations);
}

static PyObject *
loop_get_polls(ql_loop *self, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(self->polls);
}

static PyObject *
loop_get_stopping(ql_loop *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->stopping);
}

static PyObject *
loop_get_closed(ql_loop *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->closed);
}

/* ---- type ---------------------------------------------------------------------- */

static PyObject *
loop_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    ql_loop *self = (ql_loop *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    /* tp_alloc zeroed every field; mark the fds as not yet open. */
    self->poller.epfd = -1;
    self->wakeup.fd = -1;
    self->slow_callback_duration = 0.1;
    self->custom_time = type_overrides_time(type);
    if (self->custom_time < 0
        || ql_poller_init(&self->poller) < 0
        || ql_wakeup_init(&self->wakeup) < 0
        || ql_poller_add_internal(&self->poller, self->wakeup.fd) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
loop_traverse(ql_loop *self, visitproc visit, void *arg)
{
    /* A Python subclass's traverse visits the heap type itself. */
    Py_VISIT(self->current_handle);
    Py_VISIT(self->task_factory);
    if (ql_ready_traverse(&self->ready, visit, arg) < 0
        || ql_timer_heap_traverse(&self->timers, visit, arg) < 0
        || ql_poller_traverse(&self->poller, visit, arg) < 0) {
        return -1;
    }
    return 0;
}

static int
loop_clear(ql_loop *self)
{
    Py_CLEAR(self->current_handle);
    Py_CLEAR(self->task_factory);
    ql_ready_clear(&self->ready);
    ql_timer_heap_clear(&self->timers);
    /* Handles in the fd table are dropped here; the fds stay open until
     * dealloc so a cycle-collected loop does not close them twice. */
    for (int i = 0; i < self->poller.nfds; i++) {
        Py_CLEAR(self->poller.fds[i].reader);
        Py_CLEAR(self->poller.fds[i].writer);
    }
    return 0;
}

/* A Python subclass's dealloc has already run __del__ and will drop its
 * reference to the heap type; here only the core's own state goes. */
static void
loop_dealloc(ql_loop *self)
{
    PyObject_GC_UnTrack(self);
    loop_clear(self);
    release_resources(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define FASTCALL_KW(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS
#define FASTCALL(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL

static PyMethodDef loop_methods[] = {
    {"call_soon", FASTCALL_KW(loop_call_soon),
     "call_soon(callback, *args, context=None) -> Handle"},
    {"call_soon_threadsafe", FASTCALL_KW(loop_call_soon_threadsafe),
     "call_soon_threadsafe(callback, *args, context=None) -> Handle"},
    {"call_later", FASTCALL_KW(loop_call_later),
     "call_later(delay, callback, *args, context=None) -> TimerHandle"},
    {"call_at", FASTCALL_KW(loop_call_at),
     "call_at(when, callback, *args, context=None) -> TimerHandle"},
    {"time", (PyCFunction)loop_time, METH_NOARGS, "The loop's clock (time.monotonic())."},
    {"create_future", (PyCFunction)loop_create_future, METH_NOARGS,
     "A new quickloop.Future bound to this loop."},
    {"create_task", FASTCALL_KW(loop_create_task),
     "create_task(coro, *, name=None, context=None, **kwargs) -> Task"},
    {"stop", (PyCFunction)loop_stop, METH_NOARGS, "Stop after the current iteration."},
    {"is_running", (PyCFunction)loop_is_running, METH_NOARGS, NULL},
    {"is_closed", (PyCFunction)loop_is_closed, METH_NOARGS, NULL},
    {"get_debug", (PyCFunction)loop_get_debug, METH_NOARGS, NULL},
    /* The public add_reader() & co. are selector_events' (they also check
     * that no transport owns the fd) calling these. */
    {"_add_reader", FASTCALL(loop__add_reader), "_add_reader(fd, callback, *args) -> Handle"},
    {"_add_writer", FASTCALL(loop__add_writer), "_add_writer(fd, callback, *args) -> Handle"},
    {"_remove_reader", (PyCFunction)loop__remove_reader, METH_O, "_remove_reader(fd) -> bool"},
    {"_remove_writer", (PyCFunction)loop__remove_writer, METH_O, "_remove_writer(fd) -> bool"},
    {"_write_to_self", (PyCFunction)loop_write_to_self, METH_NOARGS, NULL},
    {"_fd_key", (PyCFunction)loop_fd_key, METH_O, NULL},
    {"_fd_list", (PyCFunction)loop_fd_list, METH_NOARGS, NULL},
    {"_add_callback", (PyCFunction)loop_add_callback, METH_O, NULL},
    {"_make_handle", FASTCALL(loop_make_handle), NULL},
    {"_run", (PyCFunction)loop_run, METH_NOARGS, NULL},
    {"_close", (PyCFunction)loop_close_core, METH_NOARGS, NULL},
    {"_after_fork", (PyCFunction)loop_after_fork, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef loop_getset[] = {
    {"_debug", (getter)loop_get_debug_attr, (setter)loop_set_debug_attr, NULL, NULL},
    {"slow_callback_duration", (getter)loop_get_slow, (setter)loop_set_slow,
     "Callbacks running longer than this (seconds) are logged in debug mode.", NULL},
    {"_thread_id", (getter)loop_get_thread_id, NULL, NULL, NULL},
    {"_current_handle", (getter)loop_get_current_handle, NULL, NULL, NULL},
    {"_task_factory", (getter)loop_get_task_factory, (setter)loop_set_task_factory, NULL, NULL},
    {"_timer_count", (getter)loop_get_timer_count, NULL,
     "Number of armed timers the loop holds.", NULL},
    {"_iterations", (getter)loop_get_iterations, NULL,
     "Number of loop iterations run.", NULL},
    {"_polls", (getter)loop_get_polls, NULL,
     "Number of epoll waits made (an iteration with work ready and no fd "
     "watched makes none).", NULL},
    {"_stopping", (getter)loop_get_stopping, NULL, NULL, NULL},
    {"_closed", (getter)loop_get_closed, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject ql_loop_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "quickloop._core.LoopCore",
    .tp_doc = "The C core of quickloop.Loop.",
    .tp_basicsize = sizeof(ql_loop),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = loop_new,
    .tp_setattro = (setattrofunc)loop_setattro,
    .tp_dealloc = (destructor)loop_dealloc,
    .tp_traverse = (traverseproc)loop_traverse,
    .tp_clear = (inquiry)loop_clear,
    .tp_methods = loop_methods,
    .tp_getset = loop_getset,
};

int
ql_loop_type_ready(PyObject *module)
{
    if (PyType_Ready(&ql_loop_type) < 0) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "LoopCore", (PyObject *)&ql_loop_type);
}
