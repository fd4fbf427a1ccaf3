/* module.h - module-wide state: the asyncio helpers the C code calls on cold
 * paths (formatting, debug checks), looked up once at import. */
#ifndef QL_MODULE_H
#define QL_MODULE_H

#include "compat.h"

typedef struct {
    PyObject *format_callback_source;   /* asyncio.format_helpers._format_callback_source */
    PyObject *extract_stack;            /* asyncio.format_helpers.extract_stack */
    PyObject *iscoroutine;              /* asyncio.coroutines.iscoroutine */
    PyObject *iscoroutinefunction;      /* asyncio.coroutines.iscoroutinefunction */
} ql_module_state;

extern ql_module_state ql_state;

#endif /* QL_MODULE_H */
