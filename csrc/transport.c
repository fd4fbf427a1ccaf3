/* transport.c - the stream socket transport: asyncio's 3.11
 * _SelectorSocketTransport with reading, writing and closing in C.  The type
 * subclasses asyncio.transports._FlowControlMixin (so isinstance checks on
 * Transport and _FlowControlMixin hold) and keeps its own state in ql_transport,
 * placed after the base's slots; its descriptors shadow the base's slots, which
 * stay empty.  Construction, repr, __del__ and _fatal_error are Python glue
 * (python/quickloop/transport.py).
 * Invariant: the write buffer is non-empty exactly while the transport is
 * registered as its fd's writer, except after connection_lost was scheduled. */
#include "transport.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include "handle.h"
#include "loop.h"
#include "module.h"

PyTypeObject *ql_transport_type;
static Py_ssize_t transport_offset;
Py_ssize_t ql_subclass_offset(PyObject *base);

#define TR(op) ((ql_transport *)((char *)(op) + transport_offset))

/* recv() size, as the stdlib's max_size.  Small reads go to one scratch
 * buffer and are copied into the bytes given to data_received (the GIL is
 * held, so one buffer serves every loop); see BIG_READ for large ones. */
#define MAX_SIZE (256 * 1024)
/* write() after connection loss warns from this many calls on
 * (asyncio.constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES). */
#define LOG_THRESHOLD_FOR_CONNLOST_WRITES 5
/* A drained write buffer bigger than this is freed rather than kept. */
#define WBUF_KEEP (256 * 1024)
#define WBUF_MIN (16 * 1024)

static char *read_scratch;

/* ---- small helpers ------------------------------------------------------------ */

static int
is_fatal_exit(void)
{
    return PyErr_ExceptionMatches(PyExc_SystemExit)
           || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
}

/* obj.name(arg) or obj.name() (arg NULL), result discarded. */
static int
call_method(PyObject *obj, const char *name, PyObject *arg)
{
    PyObject *meth = PyUnicode_InternFromString(name);
    if (meth == NULL) {
        return -1;
    }
    PyObject *args[2] = {obj, arg};
    PyObject *res = PyObject_VectorcallMethod(
        meth, args, (arg ? 2 : 1) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(meth);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

static int
loop_debug(ql_transport *t)
{
    return t->loop != NULL && ql_loop_check(t->loop) && ((ql_loop *)t->loop)->debug;
}

/* logger.debug(fmt, self), as the stdlib does in debug mode. */
static int
debug_log(PyObject *self, ql_transport *t, const char *fmt)
{
    if (!loop_debug(t)) {
        return 0;
    }
    PyObject *res = PyObject_CallMethod(ql_state.logger, "debug", "sO", fmt, self);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* An exception is raised: hand it to self._fatal_error(exc, message).
 * SystemExit and KeyboardInterrupt stay raised (-1), as the stdlib's
 * "except (SystemExit, KeyboardInterrupt): raise". */
static int
fatal_error(PyObject *self, const char *message)
{
    if (is_fatal_exit()) {
        return -1;
    }
    PyObject *exc = ql_err_take();
    PyObject *res = PyObject_CallMethod(self, "_fatal_error", "Os", exc, message);
    Py_DECREF(exc);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* The protocol's pause_writing()/resume_writing() raised: report it to the
 * exception handler, as _FlowControlMixin does. */
static int
report_flow_control_error(PyObject *self, ql_transport *t, const char *message)
{
    if (is_fatal_exit()) {
        return -1;
    }
    PyObject *exc = ql_err_take();
    PyObject *ctx = Py_BuildValue("{s:s,s:O,s:O,s:O}", "message", message, "exception", exc,
                                  "transport", self, "protocol",
                                  t->protocol ? t->protocol : Py_None);
    Py_DECREF(exc);
    if (ctx == NULL) {
        return -1;
    }
    PyObject *loop = t->loop ? t->loop : Py_None;
    PyObject *res = PyObject_CallMethod(loop, "call_exception_handler", "O", ctx);
    Py_DECREF(ctx);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* loop.call_soon(self.<name>, arg) */
static int
call_soon_method(PyObject *self, ql_transport *t, const char *name, PyObject *arg)
{
    PyObject *meth = PyObject_GetAttrString(self, name);
    if (meth == NULL) {
        return -1;
    }
    PyObject *res = PyObject_CallMethod(t->loop, "call_soon", "OO", meth, arg);
    Py_DECREF(meth);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* ---- registration ------------------------------------------------------------- */

static int
io_start(PyObject *self, ql_transport *t, int writer)
{
    if (t->loop == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    /* As loop._add_reader/_add_writer: the callback runs in a copy of the
     * context current at registration. */
    PyObject *context = PyContext_CopyCurrent();
    if (context == NULL) {
        return -1;
    }
    if (ql_loop_io_start(t->loop, t->fd, writer, self) < 0) {
        Py_DECREF(context);
        return -1;
    }
    Py_XSETREF(*(writer ? &t->write_context : &t->read_context), context);
    if (writer) {
        t->writing = 1;
    }
    else {
        t->reading = 1;
    }
    return 0;
}

/* loop._remove_reader/_remove_writer(fd): like the stdlib, whatever holds the
 * fd is removed, whether or not it is this transport. */
static int
io_stop(ql_transport *t, int writer)
{
    if (t->loop == NULL) {
        return 0;
    }
    return ql_loop_io_stop(t->loop, t->fd, writer) < 0 ? -1 : 0;
}

ql_transport *
ql_transport_state(PyObject *tr)
{
    return TR(tr);
}

void
ql_transport_io_dropped(PyObject *tr, int writer)
{
    ql_transport *t = TR(tr);
    if (writer) {
        t->writing = 0;
        t->write_queued = 0;
    }
    else {
        t->reading = 0;
        t->read_queued = 0;
    }
}

/* ---- write buffer ------------------------------------------------------------- */

static int
wbuf_append(ql_transport *t, const char *data, Py_ssize_t n)
{
    if (t->wstart + t->wlen + n > t->wcap) {
        /* Moving the pending bytes down costs no more than the bytes already
         * sent out of the freed space: amortized O(1) per byte. */
        if (t->wstart > 0 && t->wstart >= t->wlen) {
            memmove(t->wbuf, t->wbuf + t->wstart, t->wlen);
            t->wstart = 0;
        }
        if (t->wstart + t->wlen + n > t->wcap) {
            Py_ssize_t need = t->wstart + t->wlen + n;
            Py_ssize_t cap = t->wcap < WBUF_MIN ? WBUF_MIN : t->wcap;
            while (cap < need) {
                if (cap > PY_SSIZE_T_MAX / 2) {
                    cap = need;
                    break;
                }
                cap *= 2;
            }
            char *buf = ql_fault_point() < 0 ? NULL : PyMem_Realloc(t->wbuf, cap);
            if (buf == NULL) {
                if (!PyErr_Occurred()) {
                    PyErr_NoMemory();
                }
                return -1;
            }
            t->wbuf = buf;
            t->wcap = cap;
        }
    }
    memcpy(t->wbuf + t->wstart + t->wlen, data, n);
    t->wlen += n;
    return 0;
}

static void
wbuf_consume(ql_transport *t, Py_ssize_t n)
{
    t->wstart += n;
    t->wlen -= n;
    if (t->wlen == 0) {
        t->wstart = 0;
        if (t->wcap > WBUF_KEEP) {
            PyMem_Free(t->wbuf);
            t->wbuf = NULL;
            t->wcap = 0;
        }
    }
}

static void
wbuf_clear(ql_transport *t)
{
    wbuf_consume(t, t->wlen);
}

/* send(2) as socket.send(): EINTR retried; -1 with errno otherwise. */
static Py_ssize_t
send_some(int fd, const char *data, Py_ssize_t n)
{
    Py_ssize_t sent;
    do {
        sent = send(fd, data, (size_t)n, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent;
}

/* ---- flow control ------------------------------------------------------------- */

static int
maybe_pause_protocol(PyObject *self, ql_transport *t)
{
    if (t->wlen <= t->high_water || t->protocol_paused) {
        return 0;
    }
    t->protocol_paused = 1;
    PyObject *protocol = Py_XNewRef(t->protocol);
    int rc = protocol ? call_method(protocol, "pause_writing", NULL) : 0;
    Py_XDECREF(protocol);
    if (rc < 0) {
        return report_flow_control_error(self, t, "protocol.pause_writing() failed");
    }
    return 0;
}

static int
maybe_resume_protocol(PyObject *self, ql_transport *t)
{
    if (!t->protocol_paused || t->wlen > t->low_water) {
        return 0;
    }
    t->protocol_paused = 0;
    PyObject *protocol = Py_XNewRef(t->protocol);
    int rc = protocol ? call_method(protocol, "resume_writing", NULL) : 0;
    Py_XDECREF(protocol);
    if (rc < 0) {
        return report_flow_control_error(self, t, "protocol.resume_writing() failed");
    }
    return 0;
}

/* ---- closing ------------------------------------------------------------------ */

static int
transport_close_impl(PyObject *self, ql_transport *t)
{
    if (t->closing) {
        return 0;
    }
    t->closing = 1;
    if (io_stop(t, 0) < 0) {
        return -1;
    }
    if (t->wlen == 0) {
        t->conn_lost++;
        if (io_stop(t, 1) < 0) {
            return -1;
        }
        return call_soon_method(self, t, "_call_connection_lost", Py_None);
    }
    return 0;
}

static int
force_close(PyObject *self, ql_transport *t, PyObject *exc)
{
    if (t->conn_lost) {
        return 0;
    }
    if (t->wlen > 0) {
        wbuf_clear(t);
        if (io_stop(t, 1) < 0) {
            return -1;
        }
    }
    if (!t->closing) {
        t->closing = 1;
        if (io_stop(t, 0) < 0) {
            return -1;
        }
    }
    t->conn_lost++;
    return call_soon_method(self, t, "_call_connection_lost", exc);
}

static int
call_connection_lost(PyObject *self, ql_transport *t, PyObject *exc)
{
    PyObject *err = NULL;
    (void)self;
    if (t->protocol_connected && t->protocol != NULL) {
        PyObject *protocol = Py_NewRef(t->protocol);
        if (call_method(protocol, "connection_lost", exc) < 0) {
            err = ql_err_take();
        }
        Py_DECREF(protocol);
    }
    /* finally: */
    PyObject *sock = t->sock;
    t->sock = NULL;
    if (sock != NULL) {
        if (call_method(sock, "close", NULL) < 0) {
            Py_XDECREF(err);
            err = ql_err_take();
        }
        Py_DECREF(sock);
    }
    Py_CLEAR(t->protocol);
    Py_CLEAR(t->loop);
    PyObject *server = t->server;
    if (server != NULL) {
        if (call_method(server, "_detach", QL_SERVER_ATTACH_TAKES_TRANSPORT ? self : NULL) < 0) {
            Py_XDECREF(err);
            err = ql_err_take();
        }
        t->server = NULL;
        Py_DECREF(server);
    }
    if (err != NULL) {
        ql_err_restore(err);
        return -1;
    }
    if (t->empty_waiter != NULL && t->empty_waiter != Py_None) {
        PyObject *cerr = PyObject_CallFunction(PyExc_ConnectionError, "s",
                                               "Connection is closed by peer");
        if (cerr == NULL) {
            return -1;
        }
        int rc = call_method(t->empty_waiter, "set_exception", cerr);
        Py_DECREF(cerr);
        return rc;
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------------ */

static int
read_eof(PyObject *self, ql_transport *t)
{
    if (debug_log(self, t, "%r received EOF") < 0) {
        return -1;
    }
    PyObject *protocol = Py_NewRef(t->protocol);
    PyObject *res = PyObject_CallMethod(protocol, "eof_received", NULL);
    Py_DECREF(protocol);
    if (res == NULL) {
        return fatal_error(self, "Fatal error: protocol.eof_received() call failed.");
    }
    int keep_open = PyObject_IsTrue(res);
    Py_DECREF(res);
    if (keep_open < 0) {
        return -1;
    }
    if (keep_open) {
        /* The protocol may still write, but there is nothing more to read. */
        return io_stop(t, 0);
    }
    return transport_close_impl(self, t);
}

/* recv(2) (readv(2) for several buffers) as socket.recv()/recv_into(): EINTR
 * retried.  1: got n bytes (0 is EOF); 0: nothing to read now; -1: OSError
 * raised. */
static int
recv_some(int fd, struct iovec *iov, int iovcnt, Py_ssize_t *n)
{
    Py_ssize_t got;
    do {
        got = iovcnt == 1 ? recv(fd, iov[0].iov_base, iov[0].iov_len, 0)
                          : readv(fd, iov, iovcnt);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        }
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    *n = got;
    return 1;
}

/* A read at least this large makes the next ones go straight into a new
 * bytes object of DIRECT_READ bytes, shrunk to fit, with the scratch buffer
 * catching the rest of MAX_SIZE: no copy for reads up to DIRECT_READ.  It
 * stays below glibc's default mmap threshold (128 KiB) so the allocation
 * comes from the heap and shrinks in place: a 256 KiB one would be mapped,
 * page-faulted in and unmapped on every read (measured: 2.5x slower streams
 * echo at 100 kB). */
#define BIG_READ (64 * 1024)
#define DIRECT_READ (120 * 1024)

static int
read_ready_data_received(PyObject *self, ql_transport *t)
{
    if (t->conn_lost) {
        return 0;
    }
    if (read_scratch == NULL) {
        read_scratch = PyMem_RawMalloc(MAX_SIZE);
        if (read_scratch == NULL) {
            PyErr_NoMemory();
            return fatal_error(self, "Fatal read error on socket transport");
        }
    }
    PyObject *data = NULL;
    struct iovec iov[2];
    int iovcnt = 1;
    iov[0].iov_base = read_scratch;
    iov[0].iov_len = MAX_SIZE;
    if (t->big_reads) {
        data = ql_fault_point() < 0 ? NULL : PyBytes_FromStringAndSize(NULL, DIRECT_READ);
        if (data == NULL) {
            return fatal_error(self, "Fatal read error on socket transport");
        }
        iov[0].iov_base = PyBytes_AS_STRING(data);
        iov[0].iov_len = DIRECT_READ;
        iov[1].iov_base = read_scratch;
        iov[1].iov_len = MAX_SIZE - DIRECT_READ;
        iovcnt = 2;
    }
    Py_ssize_t n = 0;
    int rc = recv_some(t->fd, iov, iovcnt, &n);
    if (rc <= 0) {
        Py_XDECREF(data);
        return rc == 0 ? 0 : fatal_error(self, "Fatal read error on socket transport");
    }
    t->big_reads = n >= BIG_READ;
    if (n == 0) {
        Py_XDECREF(data);
        return read_eof(self, t);
    }
    if (data == NULL) {
        if (ql_fault_point() < 0 || (data = PyBytes_FromStringAndSize(read_scratch, n)) == NULL) {
            return fatal_error(self, "Fatal read error on socket transport");
        }
    }
    else if (n <= DIRECT_READ) {
        if (n < DIRECT_READ && _PyBytes_Resize(&data, n) < 0) {
            return fatal_error(self, "Fatal read error on socket transport");
        }
    }
    else {
        /* More than fits: join the two parts. */
        PyObject *joined = PyBytes_FromStringAndSize(NULL, n);
        if (joined == NULL) {
            Py_DECREF(data);
            return fatal_error(self, "Fatal read error on socket transport");
        }
        memcpy(PyBytes_AS_STRING(joined), PyBytes_AS_STRING(data), DIRECT_READ);
        memcpy(PyBytes_AS_STRING(joined) + DIRECT_READ, read_scratch, n - DIRECT_READ);
        Py_SETREF(data, joined);
    }
    PyObject *args[2] = {Py_NewRef(t->protocol), data};
    PyObject *res = PyObject_VectorcallMethod(ql_state.str_data_received, args,
                                              2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(args[0]);
    Py_DECREF(data);
    if (res == NULL) {
        return fatal_error(self, "Fatal error: protocol.data_received() call failed.");
    }
    Py_DECREF(res);
    return 0;
}

static int
read_ready_get_buffer(PyObject *self, ql_transport *t)
{
    if (t->conn_lost) {
        return 0;
    }
    PyObject *protocol = Py_NewRef(t->protocol);
    PyObject *buf = PyObject_CallMethod(protocol, "get_buffer", "i", -1);
    Py_ssize_t size = buf ? PyObject_Size(buf) : -1;
    if (size == 0) {
        PyErr_SetString(PyExc_RuntimeError, "get_buffer() returned an empty buffer");
    }
    if (size <= 0) {
        Py_XDECREF(buf);
        Py_DECREF(protocol);
        return fatal_error(self, "Fatal error: protocol.get_buffer() call failed.");
    }
    Py_buffer view;
    if (PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE) < 0) {
        Py_DECREF(buf);
        Py_DECREF(protocol);
        return fatal_error(self, "Fatal read error on socket transport");
    }
    Py_ssize_t n = 0;
    struct iovec iov = {.iov_base = view.buf, .iov_len = (size_t)view.len};
    int rc = recv_some(t->fd, &iov, 1, &n);
    PyBuffer_Release(&view);
    Py_DECREF(buf);
    if (rc <= 0) {
        Py_DECREF(protocol);
        return rc == 0 ? 0 : fatal_error(self, "Fatal read error on socket transport");
    }
    if (n == 0) {
        Py_DECREF(protocol);
        return read_eof(self, t);
    }
    PyObject *nbytes = PyLong_FromSsize_t(n);
    if (nbytes == NULL) {
        Py_DECREF(protocol);
        return -1;
    }
    PyObject *args[2] = {protocol, nbytes};
    PyObject *res = PyObject_VectorcallMethod(ql_state.str_buffer_updated, args,
                                              2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(nbytes);
    Py_DECREF(protocol);
    if (res == NULL) {
        return fatal_error(self, "Fatal error: protocol.buffer_updated() call failed.");
    }
    Py_DECREF(res);
    return 0;
}

static int
read_ready(PyObject *self, ql_transport *t)
{
    if (t->conn_lost || t->protocol == NULL) {
        return 0;
    }
    return t->buffered ? read_ready_get_buffer(self, t) : read_ready_data_received(self, t);
}

/* ---- writing ------------------------------------------------------------------ */

static int
write_ready(PyObject *self, ql_transport *t)
{
    if (t->wlen == 0) {
        PyErr_SetString(PyExc_AssertionError, "Data should not be empty");
        return -1;
    }
    if (t->conn_lost) {
        return 0;
    }
    Py_ssize_t n = send_some(t->fd, t->wbuf + t->wstart, t->wlen);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        }
        PyErr_SetFromErrno(PyExc_OSError);
        PyObject *exc = ql_err_take();
        if (io_stop(t, 1) < 0) {
            Py_DECREF(exc);
            return -1;
        }
        wbuf_clear(t);
        PyObject *res = PyObject_CallMethod(self, "_fatal_error", "Os", exc,
                                            "Fatal write error on socket transport");
        int rc = res ? 0 : -1;
        Py_XDECREF(res);
        if (rc == 0 && t->empty_waiter != NULL && t->empty_waiter != Py_None) {
            rc = call_method(t->empty_waiter, "set_exception", exc);
        }
        Py_DECREF(exc);
        return rc;
    }
    wbuf_consume(t, n);
    if (maybe_resume_protocol(self, t) < 0) {   /* may write more */
        return -1;
    }
    if (t->wlen > 0) {
        return 0;
    }
    if (io_stop(t, 1) < 0) {
        return -1;
    }
    if (t->empty_waiter != NULL && t->empty_waiter != Py_None
        && call_method(t->empty_waiter, "set_result", Py_None) < 0) {
        return -1;
    }
    if (t->closing) {
        return call_connection_lost(self, t, Py_None);
    }
    if (t->eof && shutdown(t->fd, SHUT_WR) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static PyObject *
transport_write(PyObject *self, PyObject *data)
{
    ql_transport *t = TR(self);
    if (!PyBytes_Check(data) && !PyByteArray_Check(data) && !PyMemoryView_Check(data)) {
        PyErr_Format(PyExc_TypeError,
                     "data argument must be a bytes-like object, not '%.200s'",
                     _PyType_Name(Py_TYPE(data)));
        return NULL;
    }
    if (t->eof) {
        PyErr_SetString(PyExc_RuntimeError, "Cannot call write() after write_eof()");
        return NULL;
    }
    if (t->empty_waiter != NULL && t->empty_waiter != Py_None) {
        PyErr_SetString(PyExc_RuntimeError, "unable to write; sendfile is in progress");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const char *p = view.buf;
    Py_ssize_t len = view.len;
    if (len == 0) {
        goto done;
    }
    if (t->conn_lost) {
        if (t->conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES) {
            PyObject *res = PyObject_CallMethod(ql_state.logger, "warning", "s",
                                                "socket.send() raised exception.");
            if (res == NULL) {
                goto error;
            }
            Py_DECREF(res);
        }
        t->conn_lost++;
        goto done;
    }
    if (t->wlen == 0) {
        /* Nothing queued: try to send now. */
        Py_ssize_t n = send_some(t->fd, p, len);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            PyErr_SetFromErrno(PyExc_OSError);
            PyBuffer_Release(&view);
            return fatal_error(self, "Fatal write error on socket transport") < 0
                   ? NULL : Py_NewRef(Py_None);
        }
        if (n > 0) {
            p += n;
            len -= n;
            if (len == 0) {
                goto done;
            }
        }
        /* Buffer first, then register: the writer is never registered with
         * nothing to write, even when one of the two fails. */
        if (wbuf_append(t, p, len) < 0) {
            goto error;
        }
        if (io_start(self, t, 1) < 0) {
            wbuf_clear(t);
            goto error;
        }
    }
    else if (wbuf_append(t, p, len) < 0) {
        goto error;
    }
    if (maybe_pause_protocol(self, t) < 0) {
        goto error;
    }
done:
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
error:
    PyBuffer_Release(&view);
    return NULL;
}

/* ---- event dispatch ----------------------------------------------------------- */

int
ql_transport_io_ready(PyObject *tr, int writer)
{
    ql_transport *t = TR(tr);
    /* Unregistered since epoll reported it (the stdlib's handle is then
     * cancelled, and stays so if the fd is registered again). */
    char *queued = writer ? &t->write_queued : &t->read_queued;
    if (!*queued) {
        return 0;
    }
    *queued = 0;
    PyObject *context = writer ? t->write_context : t->read_context;
    if (t->loop == NULL || context == NULL) {
        return 0;
    }
    PyObject *loop = Py_NewRef(t->loop);
    Py_INCREF(context);
    Py_INCREF(tr);
    int rc = -1;
    if (PyContext_Enter(context) == 0) {
        rc = writer ? write_ready(tr, t) : read_ready(tr, t);
        if (PyContext_Exit(context) < 0) {
            rc = -1;
        }
    }
    if (rc < 0 && !is_fatal_exit()) {
        /* Escaped the transport's own handling: report it as the stdlib's
         * handle for self._read_ready/_write_ready would. */
        PyObject *exc = ql_err_take();
        PyObject *fn = PyObject_GetAttrString(tr, writer ? "_write_ready" : "_read_ready");
        PyObject *args = fn ? PyTuple_New(0) : NULL;
        if (args != NULL) {
            ql_err_restore(exc);
            rc = ql_handle_report_error(loop, fn, args, context);
        }
        else {
            Py_DECREF(exc);
        }
        Py_XDECREF(fn);
        Py_XDECREF(args);
    }
    Py_DECREF(tr);
    Py_DECREF(context);
    Py_DECREF(loop);
    return rc;
}

/* ---- methods ------------------------------------------------------------------ */

static PyObject *
none_or_null(int rc)
{
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* _init_core(loop, sock, fd): the C state; the Python constructor does the rest. */
static PyObject *
transport_init_core(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    ql_transport *t = TR(self);
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "_init_core(loop, sock, fd)");
        return NULL;
    }
    if (!ql_loop_check(args[0])) {
        PyErr_Format(PyExc_TypeError, "expected a quickloop loop, got %R", args[0]);
        return NULL;
    }
    int fd = ql_long_as_int(args[2]);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_XSETREF(t->loop, Py_NewRef(args[0]));
    Py_XSETREF(t->sock, Py_NewRef(args[1]));
    t->fd = fd;
    t->high_water = 64 * 1024;
    t->low_water = 16 * 1024;
    Py_RETURN_NONE;
}

static PyObject *
transport_set_protocol(PyObject *self, PyObject *protocol)
{
    ql_transport *t = TR(self);
    int buffered = PyObject_IsInstance(protocol, ql_state.buffered_protocol);
    if (buffered < 0) {
        return NULL;
    }
    t->buffered = (char)buffered;
    Py_XSETREF(t->protocol, Py_NewRef(protocol));
    t->protocol_connected = 1;
    Py_RETURN_NONE;
}

static PyObject *
transport_get_protocol(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ql_transport *t = TR(self);
    return Py_NewRef(t->protocol ? t->protocol : Py_None);
}

static int
is_reading(ql_transport *t)
{
    return !t->closing && !t->paused;
}

static PyObject *
transport_is_reading(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(is_reading(TR(self)));
}

static PyObject *
transport_is_closing(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(TR(self)->closing);
}

/* _start_reading(): the stdlib's self._add_reader(fd, self._read_ready). */
static PyObject *
transport_start_reading(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ql_transport *t = TR(self);
    if (!is_reading(t)) {
        Py_RETURN_NONE;
    }
    return none_or_null(io_start(self, t, 0));
}

static PyObject *
transport_pause_reading(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ql_transport *t = TR(self);
    if (!is_reading(t)) {
        Py_RETURN_NONE;
    }
    t->paused = 1;
    if (io_stop(t, 0) < 0) {
        return NULL;
    }
    return none_or_null(debug_log(self, t, "%r pauses reading"));
}

static PyObject *
transport_resume_reading(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ql_transport *t = TR(self);
    if (t->closing || !t->paused) {
        Py_RETURN_NONE;
    }
    t->paused = 0;
    if (io_start(self, t, 0) < 0) {
        return NULL;
    }
    return none_or_null(debug_log(self, t, "%r resumes reading"));
}

static PyObject *
transport_close(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return none_or_null(transport_close_impl(self, TR(self)));
}

static PyObject *
transport_abort(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return none_or_null(force_close(self, TR(self), Py_None));
}

static PyObject *
transport_force_close(PyObject *self, PyObject *exc)
{
    return none_or_null(force_close(self, TR(self), exc));
}

static PyObject *
transport_call_connection_lost(PyObject *self, PyObject *exc)
{
    return none_or_null(call_connection_lost(self, TR(self), exc));
}

static PyObject *
transport_read_ready(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return none_or_null(read_ready(self, TR(self)));
}

static PyObject *
transport_write_ready(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return none_or_null(write_ready(self, TR(self)));
}

static PyObject *
transport_write_eof(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ql_transport *t = TR(self);
    if (t->closing || t->eof) {
        Py_RETURN_NONE;
    }
    t->eof = 1;
    if (t->wlen == 0 && shutdown(t->fd, SHUT_WR) < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyObject *
transport_can_write_eof(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_TRUE;
}

static PyObject *
transport_get_write_buffer_size(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(TR(self)->wlen);
}

static PyObject *
transport_get_write_buffer_limits(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ql_transport *t = TR(self);
    return Py_BuildValue("(nn)", t->low_water, t->high_water);
}

static PyObject *
transport_maybe_pause_protocol(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return none_or_null(maybe_pause_protocol(self, TR(self)));
}

static PyObject *
transport_maybe_resume_protocol(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return none_or_null(maybe_resume_protocol(self, TR(self)));
}

#define NOARGS(f) (PyCFunction)(void (*)(void))(f), METH_NOARGS

static PyMethodDef transport_methods[] = {
    {"_init_core", (PyCFunction)(void (*)(void))transport_init_core, METH_FASTCALL, NULL},
    {"write", (PyCFunction)transport_write, METH_O,
     "Write bytes, bytearray or memoryview data to the transport without blocking."},
    {"set_protocol", (PyCFunction)transport_set_protocol, METH_O, NULL},
    {"get_protocol", NOARGS(transport_get_protocol), NULL},
    {"is_reading", NOARGS(transport_is_reading), NULL},
    {"is_closing", NOARGS(transport_is_closing), NULL},
    {"pause_reading", NOARGS(transport_pause_reading), NULL},
    {"resume_reading", NOARGS(transport_resume_reading), NULL},
    {"_start_reading", NOARGS(transport_start_reading), NULL},
    {"close", NOARGS(transport_close), NULL},
    {"abort", NOARGS(transport_abort), NULL},
    {"_force_close", (PyCFunction)transport_force_close, METH_O, NULL},
    {"_call_connection_lost", (PyCFunction)transport_call_connection_lost, METH_O, NULL},
    {"_read_ready", NOARGS(transport_read_ready), NULL},
    {"_write_ready", NOARGS(transport_write_ready), NULL},
    {"write_eof", NOARGS(transport_write_eof), NULL},
    {"can_write_eof", NOARGS(transport_can_write_eof), NULL},
    {"get_write_buffer_size", NOARGS(transport_get_write_buffer_size), NULL},
    {"get_write_buffer_limits", NOARGS(transport_get_write_buffer_limits), NULL},
    {"_maybe_pause_protocol", NOARGS(transport_maybe_pause_protocol), NULL},
    {"_maybe_resume_protocol", NOARGS(transport_maybe_resume_protocol), NULL},
    {NULL, NULL, 0, NULL},
};

/* ---- attributes ---------------------------------------------------------------- */

/* Object fields, by offset in ql_transport: NULL reads as None. */
static PyObject *
get_object(PyObject *self, void *closure)
{
    PyObject *v = *(PyObject **)((char *)TR(self) + (Py_ssize_t)closure);
    return Py_NewRef(v ? v : Py_None);
}

static int
set_object(PyObject *self, PyObject *value, void *closure)
{
    PyObject **slot = (PyObject **)((char *)TR(self) + (Py_ssize_t)closure);
    Py_XSETREF(*slot, value == Py_None ? NULL : Py_XNewRef(value));
    return 0;
}

/* char flags, by offset. */
static PyObject *
get_flag(PyObject *self, void *closure)
{
    return PyBool_FromLong(*((char *)TR(self) + (Py_ssize_t)closure));
}

static int
set_flag(PyObject *self, PyObject *value, void *closure)
{
    int v;
    if (ql_bool_value(value, &v) < 0) {
        return -1;
    }
    *((char *)TR(self) + (Py_ssize_t)closure) = (char)v;
    return 0;
}

/* Py_ssize_t limits, by offset: ints (huge ones clamped) or floats (floored). */
static PyObject *
get_ssize(PyObject *self, void *closure)
{
    return PyLong_FromSsize_t(*(Py_ssize_t *)((char *)TR(self) + (Py_ssize_t)closure));
}

static int
set_ssize(PyObject *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete attribute");
        return -1;
    }
    if (PyFloat_Check(value)) {
        /* Compared with integer sizes only, so its floor compares the same. */
        double d = floor(PyFloat_AS_DOUBLE(value));
        if (isnan(d)) {
            PyErr_SetString(PyExc_ValueError, "write buffer limit must not be NaN");
            return -1;
        }
        *(Py_ssize_t *)((char *)TR(self) + (Py_ssize_t)closure) =
            d >= (double)PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX
            : d <= (double)PY_SSIZE_T_MIN ? PY_SSIZE_T_MIN : (Py_ssize_t)d;
        return 0;
    }
    PyObject *index = PyNumber_Index(value);
    if (index == NULL) {
        return -1;
    }
    Py_ssize_t v = PyLong_AsSsize_t(index);
    if (v == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            Py_DECREF(index);
            return -1;
        }
        PyErr_Clear();
        PyObject *zero = PyLong_FromLong(0);
        int negative = zero ? PyObject_RichCompareBool(index, zero, Py_LT) : -1;
        Py_XDECREF(zero);
        if (negative < 0) {
            Py_DECREF(index);
            return -1;
        }
        v = negative ? PY_SSIZE_T_MIN : PY_SSIZE_T_MAX;
    }
    Py_DECREF(index);
    *(Py_ssize_t *)((char *)TR(self) + (Py_ssize_t)closure) = v;
    return 0;
}

static PyObject *
get_fd(PyObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromLong(TR(self)->fd);
}

static PyObject *
get_conn_lost(PyObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromLong(TR(self)->conn_lost);
}

static int
set_conn_lost(PyObject *self, PyObject *value, void *Py_UNUSED(c))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete attribute");
        return -1;
    }
    int v = ql_long_as_int(value);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    TR(self)->conn_lost = v;
    return 0;
}

#define OFF(field) ((void *)offsetof(ql_transport, field))

static PyGetSetDef transport_getset[] = {
    {"_loop", get_object, NULL, NULL, OFF(loop)},
    {"_sock", get_object, NULL, NULL, OFF(sock)},
    {"_sock_fd", get_fd, NULL, NULL, NULL},
    {"_protocol", get_object, set_object, NULL, OFF(protocol)},
    {"_server", get_object, set_object, NULL, OFF(server)},
    {"_extra", get_object, set_object, NULL, OFF(extra)},
    {"_empty_waiter", get_object, set_object, NULL, OFF(empty_waiter)},
    {"_closing", get_flag, set_flag, NULL, OFF(closing)},
    {"_paused", get_flag, set_flag, NULL, OFF(paused)},
    {"_eof", get_flag, set_flag, NULL, OFF(eof)},
    {"_protocol_paused", get_flag, set_flag, NULL, OFF(protocol_paused)},
    {"_protocol_connected", get_flag, set_flag, NULL, OFF(protocol_connected)},
    {"_high_water", get_ssize, set_ssize, NULL, OFF(high_water)},
    {"_low_water", get_ssize, set_ssize, NULL, OFF(low_water)},
    {"_conn_lost", get_conn_lost, set_conn_lost, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- type ---------------------------------------------------------------------- */

static int
transport_traverse(PyObject *self, visitproc visit, void *arg)
{
    ql_transport *t = TR(self);
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(t->loop);
    Py_VISIT(t->sock);
    Py_VISIT(t->protocol);
    Py_VISIT(t->server);
    Py_VISIT(t->extra);
    Py_VISIT(t->empty_waiter);
    Py_VISIT(t->read_context);
    Py_VISIT(t->write_context);
    return 0;
}

static int
transport_clear(PyObject *self)
{
    ql_transport *t = TR(self);
    Py_CLEAR(t->loop);
    Py_CLEAR(t->sock);
    Py_CLEAR(t->protocol);
    Py_CLEAR(t->server);
    Py_CLEAR(t->extra);
    Py_CLEAR(t->empty_waiter);
    Py_CLEAR(t->read_context);
    Py_CLEAR(t->write_context);
    return 0;
}

/* The base's slots are shadowed by our descriptors and never set, so only
 * our own state is released here (a Python subclass's dealloc has already
 * run __del__ and cleared its dict and weak references). */
static void
transport_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    transport_clear(self);
    ql_transport *t = TR(self);
    PyMem_Free(t->wbuf);
    t->wbuf = NULL;
    tp->tp_free(self);
    Py_DECREF(tp);
}

int
ql_transport_type_ready(PyObject *module)
{
    transport_offset = ql_subclass_offset(ql_state.flow_control_mixin);
    PyType_Slot slots[] = {
        {Py_tp_doc, "The C core of quickloop's stream socket transport."},
        {Py_tp_traverse, transport_traverse},
        {Py_tp_clear, transport_clear},
        {Py_tp_dealloc, transport_dealloc},
        {Py_tp_methods, transport_methods},
        {Py_tp_getset, transport_getset},
        {0, NULL},
    };
    PyType_Spec spec = {
        .name = "quickloop._core.SocketTransportCore",
        .basicsize = (int)(transport_offset + sizeof(ql_transport)),
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
        .slots = slots,
    };
    ql_transport_type = (PyTypeObject *)PyType_FromSpecWithBases(
        &spec, ql_state.flow_control_mixin);
    if (ql_transport_type == NULL) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "SocketTransportCore", (PyObject *)ql_transport_type);
}
