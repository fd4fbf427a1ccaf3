/* module.c - quickloop._core: type registration and the module state (the
 * asyncio helpers the C code calls on cold paths). */
#include "future.h"
#include "handle.h"
#include "helpers.h"
#include "loop.h"
#include "module.h"
#include "registry.h"
#include "task.h"
#include "transport.h"

ql_module_state ql_state;
long ql_fault_countdown;

static PyObject *
set_fault_countdown(PyObject *Py_UNUSED(module), PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    ql_fault_countdown = n < 0 ? 0 : n;
    Py_RETURN_NONE;
}

static PyObject *
get_fault_countdown(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(ql_fault_countdown);
}

static PyMethodDef core_methods[] = {
    {"_set_fault_countdown", set_fault_countdown, METH_O,
     "Test hook: make the n-th C allocation point from now fail with MemoryError "
     "(0 disarms)."},
    {"_fault_countdown", get_fault_countdown, METH_NOARGS,
     "Test hook: allocation points left before the injected failure (0: disarmed)."},
    {NULL, NULL, 0, NULL},
};

static int
import_attr(const char *module_name, const char *attr, PyObject **out)
{
    PyObject *module = PyImport_ImportModule(module_name);
    if (module == NULL) {
        return -1;
    }
    *out = PyObject_GetAttrString(module, attr);
    Py_DECREF(module);
    return *out == NULL ? -1 : 0;
}

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "quickloop._core",
    .m_doc = "The C core of quickloop: loop, handles, timers, poller.",
    .m_size = -1,
    .m_methods = core_methods,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    if (import_attr("quickloop._compat", "format_callback_source",
                    &ql_state.format_callback_source) < 0
        || import_attr("asyncio.format_helpers", "extract_stack",
                       &ql_state.extract_stack) < 0
        || import_attr("asyncio.coroutines", "iscoroutine", &ql_state.iscoroutine) < 0
        || import_attr("asyncio.coroutines", "iscoroutinefunction",
                       &ql_state.iscoroutinefunction) < 0
        || import_attr("asyncio.exceptions", "CancelledError", &ql_state.CancelledError) < 0
        || import_attr("asyncio.exceptions", "InvalidStateError",
                       &ql_state.InvalidStateError) < 0
        || import_attr("asyncio.base_futures", "_future_repr", &ql_state.future_repr) < 0
        || import_attr("asyncio.base_tasks", "_task_repr", &ql_state.task_repr) < 0
        || import_attr("asyncio.base_tasks", "_task_get_stack", &ql_state.task_get_stack) < 0
        || import_attr("asyncio.base_tasks", "_task_print_stack",
                       &ql_state.task_print_stack) < 0
        || import_attr("asyncio.events", QL_GET_EVENT_LOOP_NAME, &ql_state.get_event_loop) < 0
        || import_attr("asyncio.tasks", "_register_task", &ql_state.register_task) < 0
        || import_attr("asyncio.tasks", "_current_tasks", &ql_state.current_tasks) < 0
        || import_attr("asyncio.events", "get_running_loop", &ql_state.get_running_loop) < 0
        || import_attr("asyncio.tasks", "ensure_future", &ql_state.ensure_future) < 0
        || import_attr("asyncio.futures", "_set_result_unless_cancelled",
                       &ql_state.set_result_unless_cancelled) < 0
        || import_attr("asyncio", "Future", &ql_state.asyncio_future) < 0
        || import_attr("asyncio", "Task", &ql_state.asyncio_task) < 0
        || import_attr("asyncio.protocols", "BufferedProtocol",
                       &ql_state.buffered_protocol) < 0
        || import_attr("asyncio.transports", "_FlowControlMixin",
                       &ql_state.flow_control_mixin) < 0
        || import_attr("asyncio.log", "logger", &ql_state.logger) < 0) {
        return NULL;
    }
#if QL_HAS_ASYNCIO_EAGER_TASKS
    if (import_attr("asyncio.tasks", "eager_task_factory",
                    &ql_state.asyncio_eager_task_factory) < 0) {
        return NULL;
    }
#endif
    if (!PyType_Check(ql_state.asyncio_future) || !PyType_Check(ql_state.asyncio_task)
        || !PyDict_Check(ql_state.current_tasks)) {
        PyErr_SetString(PyExc_ImportError,
                        "quickloop needs asyncio's C Future and Task (_asyncio)");
        return NULL;
    }
    struct { PyObject **slot; const char *name; } names[] = {
        {&ql_state.str_context, "context"},
        {&ql_state.str_msg, "msg"},
        {&ql_state.str_call_soon, "call_soon"},
        {&ql_state.str_cancel, "cancel"},
        {&ql_state.str_get_loop, "get_loop"},
        {&ql_state.str_add_done_callback, "add_done_callback"},
        {&ql_state.str_asyncio_future_blocking, "_asyncio_future_blocking"},
        {&ql_state.str_throw, "throw"},
        {&ql_state.str_data_received, "data_received"},
        {&ql_state.str_buffer_updated, "buffer_updated"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].name);
        if (*names[i].slot == NULL) {
            return NULL;
        }
    }
    ql_state.kwnames_context = PyTuple_Pack(1, ql_state.str_context);
    ql_state.kwnames_msg = PyTuple_Pack(1, ql_state.str_msg);
    if (ql_state.kwnames_context == NULL || ql_state.kwnames_msg == NULL) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&core_module);
    if (module == NULL) {
        return NULL;
    }
    if (ql_handle_types_ready(module) < 0 || ql_loop_type_ready(module) < 0
        || ql_future_type_ready(module) < 0 || ql_task_type_ready(module) < 0
        || ql_helpers_ready(module) < 0 || ql_transport_type_ready(module) < 0
        || ql_registry_functions_add(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
