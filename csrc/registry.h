/* registry.h - quickloop tasks in asyncio's task registry, the WeakSet that
 * asyncio.all_tasks() reads. */
#ifndef QL_REGISTRY_H
#define QL_REGISTRY_H

#include "compat.h"

/* At import: asyncio's registry (asyncio.tasks.<QL_TASK_REGISTRY_NAME>) and
 * the weakref.WeakSet type (borrowed). */
int ql_registry_init(PyObject *weakset_type, PyObject *registry);

/* Add task, as asyncio's _register_task(task) does. */
int ql_registry_add(PyObject *task);

#endif /* QL_REGISTRY_H */
