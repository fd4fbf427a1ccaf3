/* registry.h - quickloop's live tasks, which asyncio.all_tasks() lists.
 *
 * asyncio registers each task in a module-level WeakSet of asyncio.tasks
 * (_all_tasks, 3.12: _scheduled_tasks), one weakref object per task: one more object for
 * the cyclic GC to walk for every pending task.  quickloop's tasks are
 * instead linked into a list threaded through the tasks themselves, and
 * python/quickloop/registry.py puts in place of that WeakSet one that lists
 * them too.  Until that is installed, tasks go through asyncio's
 * _register_task. */
#ifndef QL_REGISTRY_H
#define QL_REGISTRY_H

#include "compat.h"

/* A task's place in the list (in ql_task); next is NULL when not linked. */
typedef struct ql_registry_link {
    struct ql_registry_link *prev;
    struct ql_registry_link *next;
} ql_registry_link;

/* Register a new quickloop task (link it, or asyncio's _register_task). */
int ql_registry_add(PyObject *task);

/* Take task off the list, if it is on it (finalizer, clear, dealloc). */
void ql_registry_forget(PyObject *task);

/* The module functions registry.py uses (_registry_*). */
int ql_registry_functions_add(PyObject *module);

#endif /* QL_REGISTRY_H */
