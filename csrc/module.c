/* module.c - quickloop._core: type registration and the module state (the
 * asyncio helpers the C code calls on cold paths). */
#include "handle.h"
#include "loop.h"
#include "module.h"

ql_module_state ql_state;

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
};

PyMODINIT_FUNC
PyInit__core(void)
{
    if (import_attr("asyncio.format_helpers", "_format_callback_source",
                    &ql_state.format_callback_source) < 0
        || import_attr("asyncio.format_helpers", "extract_stack",
                       &ql_state.extract_stack) < 0
        || import_attr("asyncio.coroutines", "iscoroutine", &ql_state.iscoroutine) < 0
        || import_attr("asyncio.coroutines", "iscoroutinefunction",
                       &ql_state.iscoroutinefunction) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&core_module);
    if (module == NULL) {
        return NULL;
    }
    if (ql_handle_types_ready(module) < 0 || ql_loop_type_ready(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
