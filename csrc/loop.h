/* loop.h - the loop core: ready queue, timer heap, epoll poller and wake-up
 * fd, and the iteration that ties them together.  quickloop.Loop (Python)
 * subclasses this type for the cold paths. */
#ifndef QL_LOOP_H
#define QL_LOOP_H

#include <stdint.h>
#include "handle.h"
#include "poller.h"
#include "ready.h"
#include "timer.h"
#include "wakeup.h"

typedef struct {
    PyObject_HEAD
    ql_ready ready;
    ql_timer_heap timers;
    ql_poller poller;
    ql_wakeup wakeup;
    PyObject *current_handle;       /* debug mode: the handle being run */
    PyObject *task_factory;         /* NULL: quickloop.Task */
    uint64_t timer_seq;
    uint64_t iterations;
    uint64_t polls;              /* epoll waits made (busy iterations may skip one) */
    unsigned long thread_id;        /* valid while running */
    double slow_callback_duration;
    int running;
    int stopping;
    int closed;
    int debug;
    int custom_time;    /* time() overridden (subclass or instance): timers follow it */
} ql_loop;

extern PyTypeObject ql_loop_type;

static inline int
ql_loop_check(PyObject *op)
{
    return PyObject_TypeCheck(op, &ql_loop_type);
}

/* Queue a C entry on loop's ready ring.  1: queued; 0: not done, because loop
 * is not a quickloop loop or is in debug mode (the caller falls back to
 * loop.call_soon); -1: error (a closed loop raises RuntimeError). */
/* Make room on loop's ready ring for n ql_loop_queue() entries, so that
 * queueing them cannot fail for lack of memory (a no-op where ql_loop_queue
 * would fall back to call_soon).  -1 with MemoryError. */
int ql_loop_reserve(PyObject *loop, size_t n);
int ql_loop_queue(PyObject *loop, ql_ready_kind kind, PyObject *obj, PyObject *arg,
                  PyObject *context);

/* Nanoseconds on CLOCK_MONOTONIC, the clock of time.monotonic(). */
int64_t ql_monotonic_ns(void);

/* For C callers: loop.time(), loop.call_soon(callback) and
 * loop.call_at(when, callback) in the current context, on any loop. */
int ql_loop_time(PyObject *loop, double *now);
PyObject *ql_loop_call_soon(PyObject *loop, PyObject *callback);
PyObject *ql_loop_call_at(PyObject *loop, double when, PyObject *callback);

/* Register obj (a transport) as fd's reader (writer=0) or writer, replacing
 * what was there: loop._add_reader/_add_writer without a Handle.  -1 with
 * RuntimeError on a closed loop, OSError from epoll. */
int ql_loop_io_start(PyObject *loop, int fd, int writer, PyObject *obj);
/* loop._remove_reader/_remove_writer(fd): 1 if something was removed. */
int ql_loop_io_stop(PyObject *loop, int fd, int writer);

int ql_loop_type_ready(PyObject *module);

#endif /* QL_LOOP_H */
