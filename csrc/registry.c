/* registry.c - quickloop tasks in asyncio's task registry (see registry.h).
 *
 * asyncio registers a task with WeakSet.add(task), which stores
 * weakref.ref(task, the set's _remove) in the set's `data`; when the task
 * dies, _remove discards that weakref (or, while the set is being iterated,
 * queues it on `_pending_removals`).  Two Python calls per task: about 4,300
 * of the 29,000 instructions that creating, starting, cancelling and
 * gathering one sleeping task costs on quickloop (callgrind).  When the
 * registry is a plain weakref.WeakSet, this does the same in C: the same
 * weakref in the same `data`, with a C callback doing what _remove does, so
 * all_tasks(), `task in registry` and discard() see no difference.  Any other
 * registry, or one with removals pending, gets asyncio's _register_task.
 * _weakrefset.WeakSet (identical in 3.11 to 3.13) never rebinds `data`,
 * `_pending_removals` or `_iterating`, so they are looked up once. */
#include "registry.h"
#include "module.h"

static PyObject *registry;          /* the WeakSet; NULL: always _register_task */
static PyObject *registry_data;     /* its data (a set of weakrefs) */
static PyObject *registry_pending;  /* its _pending_removals (a list) */
static PyObject *registry_iterating;/* its _iterating (a set) */
static PyObject *registry_remove;   /* the weakref callback below */

/* WeakSet's _remove, for the weakrefs added here; wr is the dead task's. */
static PyObject *
remove_dead(PyObject *Py_UNUSED(module), PyObject *wr)
{
    int rc = PySet_GET_SIZE(registry_iterating) > 0
                 ? PyList_Append(registry_pending, wr)
                 : PySet_Discard(registry_data, wr);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef remove_dead_def = {
    "_remove", remove_dead, METH_O,
    "Drop a dead task's weakref from asyncio's task registry (WeakSet._remove in C).",
};

/* o.name if it is exactly of type tp, else NULL (no exception). */
static PyObject *
attr_of_type(PyObject *o, const char *name, PyTypeObject *tp)
{
    PyObject *v = PyObject_GetAttrString(o, name);
    if (v == NULL) {
        PyErr_Clear();
        return NULL;
    }
    if (!Py_IS_TYPE(v, tp)) {
        Py_DECREF(v);
        return NULL;
    }
    return v;
}

int
ql_registry_init(PyObject *weakset_type, PyObject *reg)
{
    if (Py_IS_TYPE(reg, (PyTypeObject *)weakset_type)) {
        registry_data = attr_of_type(reg, "data", &PySet_Type);
        registry_pending = attr_of_type(reg, "_pending_removals", &PyList_Type);
        registry_iterating = attr_of_type(reg, "_iterating", &PySet_Type);
        registry_remove = PyCFunction_New(&remove_dead_def, NULL);
        if (registry_remove == NULL) {
            return -1;
        }
    }
    if (registry_data != NULL && registry_pending != NULL && registry_iterating != NULL
        && registry_remove != NULL) {
        registry = Py_NewRef(reg);
    }
    /* else not the WeakSet this knows: every task goes through asyncio's way */
    return 0;
}

int
ql_registry_add(PyObject *task)
{
    if (registry == NULL || PyList_GET_SIZE(registry_pending) > 0) {
        PyObject *res = PyObject_CallOneArg(ql_state.register_task, task);
        Py_XDECREF(res);
        return res == NULL ? -1 : 0;
    }
    PyObject *wr = PyWeakref_NewRef(task, registry_remove);
    if (wr == NULL) {
        return -1;
    }
    int rc = PySet_Add(registry_data, wr);
    Py_DECREF(wr);
    return rc;
}
