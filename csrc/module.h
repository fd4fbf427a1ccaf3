/* module.h - module-wide state: the asyncio helpers the C code calls on cold
 * paths (formatting, debug checks), looked up once at import. */
#ifndef QL_MODULE_H
#define QL_MODULE_H

#include "compat.h"

typedef struct {
    PyObject *format_callback_source;   /* quickloop._compat.format_callback_source (asyncio's, debug= from 3.13) */
    PyObject *extract_stack;            /* asyncio.format_helpers.extract_stack */
    PyObject *iscoroutine;              /* asyncio.coroutines.iscoroutine */
    PyObject *iscoroutinefunction;      /* asyncio.coroutines.iscoroutinefunction */
    PyObject *CancelledError;           /* asyncio.CancelledError */
    PyObject *InvalidStateError;        /* asyncio.InvalidStateError */
    PyObject *future_repr;              /* asyncio.base_futures._future_repr */
    PyObject *task_repr;                /* asyncio.base_tasks._task_repr */
    PyObject *task_get_stack;           /* asyncio.base_tasks._task_get_stack */
    PyObject *task_print_stack;         /* asyncio.base_tasks._task_print_stack */
    PyObject *get_event_loop;           /* asyncio.events (_)get_event_loop */
    PyObject *register_task;            /* asyncio.tasks._register_task */
    PyObject *current_tasks;            /* asyncio.tasks._current_tasks (dict) */
    PyObject *get_running_loop;         /* asyncio.events.get_running_loop */
    PyObject *ensure_future;            /* asyncio.tasks.ensure_future */
    PyObject *set_result_unless_cancelled;  /* asyncio.futures._set_result_unless_cancelled */
    PyObject *eager_task_factory;       /* quickloop's own, for create_task's fast path */
    PyObject *asyncio_eager_task_factory;   /* asyncio's (3.12+; NULL before): the same path */
    PyObject *asyncio_future;           /* asyncio.Future (the C base type) */
    PyObject *asyncio_task;             /* asyncio.Task (the C base type) */
    PyObject *buffered_protocol;        /* asyncio.BufferedProtocol */
    PyObject *flow_control_mixin;       /* asyncio.transports._FlowControlMixin */
    PyObject *logger;                   /* asyncio.log.logger */
    PyObject *str_context;              /* "context": interned names, for */
    PyObject *str_call_soon;            /* method calls that need no hashing */
    PyObject *str_cancel;
    PyObject *str_get_loop;
    PyObject *str_add_done_callback;
    PyObject *str_asyncio_future_blocking;
    PyObject *str_throw;
    PyObject *str_msg;                  /* "msg" */
    PyObject *str_data_received;        /* protocol methods the transport calls */
    PyObject *str_buffer_updated;
    PyObject *kwnames_context;          /* ("context",) */
    PyObject *kwnames_msg;              /* ("msg",) */
} ql_module_state;

extern ql_module_state ql_state;

/* Test hook (quickloop._core._set_fault_countdown): when the countdown is
 * armed, the n-th allocation point reached fails with MemoryError, so tests
 * can check every such failure leaves the loop usable.  One branch on a
 * global when unarmed. */
extern long ql_fault_countdown;

static inline int
ql_fault_point(void)
{
    if (ql_fault_countdown > 0 && --ql_fault_countdown == 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

#endif /* QL_MODULE_H */
