/* compat.h - the one place for CPython version differences (3.11, 3.12, 3.13).
 * Everything else in csrc/ calls the ql_ wrappers below and never tests
 * PY_VERSION_HEX itself. */
#ifndef QL_COMPAT_H
#define QL_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Take the raised exception (normalized, traceback attached) and clear it.
 * 3.12 deprecates PyErr_Fetch in favour of PyErr_GetRaisedException. */
static inline PyObject *
ql_err_take(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/* Re-raise an exception taken with ql_err_take (steals the reference). */
static inline void
ql_err_restore(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc,
                  PyException_GetTraceback(exc));
#endif
}

#endif /* QL_COMPAT_H */
