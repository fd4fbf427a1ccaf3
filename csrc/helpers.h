/* helpers.h - C versions of asyncio's cancellation helpers: timeout() and
 * timeout_at() (the Timeout context manager), shield() and
 * eager_task_factory().  Semantics are the running Python's asyncio ones
 * (3.12's for the eager factory, which 3.11 lacks). */
#ifndef QL_HELPERS_H
#define QL_HELPERS_H

#include "compat.h"

int ql_helpers_ready(PyObject *module);

#endif /* QL_HELPERS_H */
