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
    uint64_t timer_seq;
    uint64_t iterations;
    unsigned long thread_id;        /* valid while running */
    double slow_callback_duration;
    int running;
    int stopping;
    int closed;
    int debug;
} ql_loop;

extern PyTypeObject ql_loop_type;

/* Nanoseconds on CLOCK_MONOTONIC, the clock of time.monotonic(). */
int64_t ql_monotonic_ns(void);

int ql_loop_type_ready(PyObject *module);

#endif /* QL_LOOP_H */
