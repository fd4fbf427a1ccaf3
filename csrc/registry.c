/* registry.c - quickloop's live tasks, in a list threaded through them (see
 * registry.h).
 *
 * A task is on the list from its registration until it is finalized,
 * cleared or deallocated, whichever comes first: as with asyncio's WeakSet,
 * whose weakref dies when the task does (before the finalizers, when the
 * cyclic GC frees it), a task being destroyed is no longer listed.  The
 * list holds no references, so it changes nothing the GC sees; Python reads
 * it only as a snapshot list, filled without running any code once the list
 * is made (making it may run the GC: see registry_tasks). */
#include "registry.h"
#include "module.h"
#include "task.h"

static ql_registry_link head = {&head, &head};
static Py_ssize_t count;
static int installed;           /* registry.py's registry is in place */

static inline ql_registry_link *
link_of(PyObject *task)
{
    return &ql_task_of(task)->registry;
}

static inline PyObject *
task_of(ql_registry_link *link)
{
    return (PyObject *)((char *)link - offsetof(ql_task, registry));
}

static void
link_task(PyObject *task)
{
    ql_registry_link *link = link_of(task);
    if (link->next == NULL) {
        link->prev = head.prev;
        link->next = &head;
        head.prev->next = link;
        head.prev = link;
        count++;
    }
}

/* 1 if task was on the list. */
static int
unlink_task(PyObject *task)
{
    ql_registry_link *link = link_of(task);
    if (link->next == NULL) {
        return 0;
    }
    link->prev->next = link->next;
    link->next->prev = link->prev;
    link->prev = link->next = NULL;
    count--;
    return 1;
}

int
ql_registry_add(PyObject *task)
{
    if (installed) {
        link_task(task);
        return 0;
    }
    PyObject *res = PyObject_CallOneArg(ql_state.register_task, task);
    Py_XDECREF(res);
    return res == NULL ? -1 : 0;
}

void
ql_registry_forget(PyObject *task)
{
    (void)unlink_task(task);
}

static PyObject *
registry_install(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    installed = 1;
    Py_RETURN_NONE;
}

static PyObject *
registry_tasks(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    /* Making the list may run the cyclic GC, whose finalizers take dying
     * tasks off the list (or run code that makes tasks): size it again. */
    Py_ssize_t n = count;
    PyObject *list = PyList_New(n);
    while (list != NULL && n != count) {
        Py_DECREF(list);
        n = count;
        list = PyList_New(n);
    }
    if (list == NULL) {
        return NULL;
    }
    Py_ssize_t i = 0;
    for (ql_registry_link *link = head.next; link != &head; link = link->next) {
        PyList_SET_ITEM(list, i++, Py_NewRef(task_of(link)));
    }
    return list;
}

static PyObject *
registry_len(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(count);
}

static PyObject *
registry_has(PyObject *Py_UNUSED(module), PyObject *task)
{
    return PyBool_FromLong(ql_task_check(task) && link_of(task)->next != NULL);
}

static PyObject *
registry_link(PyObject *Py_UNUSED(module), PyObject *task)
{
    if (!ql_task_check(task)) {
        Py_RETURN_FALSE;
    }
    link_task(task);
    Py_RETURN_TRUE;
}

static PyObject *
registry_unlink(PyObject *Py_UNUSED(module), PyObject *task)
{
    return PyBool_FromLong(ql_task_check(task) && unlink_task(task));
}

static PyMethodDef registry_methods[] = {
    {"_registry_install", registry_install, METH_NOARGS,
     "Link new tasks into quickloop's list: quickloop.registry's registry lists them."},
    {"_registry_tasks", registry_tasks, METH_NOARGS,
     "A new list of quickloop's live registered tasks."},
    {"_registry_len", registry_len, METH_NOARGS,
     "How many quickloop tasks are registered."},
    {"_registry_has", registry_has, METH_O,
     "Whether task is a registered quickloop task."},
    {"_registry_link", registry_link, METH_O,
     "Register a quickloop task again; False if task is not a quickloop task."},
    {"_registry_unlink", registry_unlink, METH_O,
     "Unregister a quickloop task; True if it was registered."},
    {NULL, NULL, 0, NULL},
};

int
ql_registry_functions_add(PyObject *module)
{
    return PyModule_AddFunctions(module, registry_methods);
}
