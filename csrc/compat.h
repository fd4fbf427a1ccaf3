/* compat.h - the one place for CPython version differences (3.11, 3.12, 3.13).
 * Everything else in csrc/ calls the ql_ wrappers below and never tests
 * PY_VERSION_HEX itself. */
#ifndef QL_COMPAT_H
#define QL_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>      /* offsetof */

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

/* Subclassing _asyncio.Future/Task: from 3.12 they are heap types whose
 * traverse visits the type and whose dealloc releases it, so a subclass must
 * not do either a second time. */
#if PY_VERSION_HEX >= 0x030C0000
#  define QL_ASYNCIO_BASE_IS_HEAPTYPE 1
#else
#  define QL_ASYNCIO_BASE_IS_HEAPTYPE 0
#endif

/* The C layout of _asyncio.Future and _asyncio.Task (FutureObj_HEAD and
 * TaskObj in CPython's Modules/_asynciomodule.c).  quickloop's Future and
 * Task keep their state in these very fields, with the base type's meaning
 * (callback0/context0, a list of (fn, context) tuples for the rest, ...), so
 * they are no bigger than asyncio's own objects: the cyclic GC's full
 * collections stream through every tracked object's memory, and a pending
 * task's bytes are what they cost.  A base method called on a quickloop
 * object thus reads consistent fields.  ql_asyncio_layout_check() compares
 * these with the base types' sizes and dict/weakref offsets at import.
 * Field names are quickloop's; the comments give CPython's. */
#define QL_FUTURE_FIELDS_FIRST                                                 \
    PyObject_HEAD                                                               \
    PyObject *loop;                 /* fut_loop */                             \
    ql_fut_callback cb0;            /* fut_callback0, fut_context0 */          \
    PyObject *callbacks;            /* fut_callbacks */                        \
    PyObject *exception;            /* fut_exception */                        \
    PyObject *exception_tb;         /* fut_exception_tb */                     \
    PyObject *result;               /* fut_result */                           \
    PyObject *source_traceback;     /* fut_source_tb */                        \
    PyObject *cancel_msg;           /* fut_cancel_msg */
#if PY_VERSION_HEX >= 0x030D0000
/* 3.13: the instance dict and weakref list are managed (before the object);
 * the flags of Future and Task share one bit-field word. */
#  define QL_FUTURE_FIELDS                                                     \
    QL_FUTURE_FIELDS_FIRST                                                      \
    PyObject *cancelled_exc;        /* fut_cancelled_exc */                    \
    ql_fut_state state;             /* fut_state */                            \
    unsigned log_tb: 1;             /* fut_log_tb */                           \
    unsigned blocking: 1;           /* fut_blocking */
#  define QL_TASK_FIELDS                                                       \
    QL_FUTURE_FIELDS                                                            \
    unsigned must_cancel: 1;        /* task_must_cancel */                     \
    unsigned log_destroy_pending: 1;/* task_log_destroy_pending */             \
    int num_cancels_requested;      /* task_num_cancels_requested */           \
    PyObject *fut_waiter;           /* task_fut_waiter */                      \
    PyObject *coro;                 /* task_coro */                            \
    PyObject *name;                 /* task_name */                            \
    PyObject *base_context;         /* task_context: None, see task.h */
#  define QL_ASYNCIO_MANAGED_DICT 1
#  define QL_ASYNCIO_DICT_OFFSETS(type) -1, -1
#else
#  define QL_FUTURE_FIELDS                                                     \
    QL_FUTURE_FIELDS_FIRST                                                      \
    ql_fut_state state;             /* fut_state */                            \
    int log_tb;                     /* fut_log_tb */                           \
    int blocking;                   /* fut_blocking */                         \
    PyObject *dict_;                /* dict: the runtime's (tp_dictoffset) */  \
    PyObject *weakreflist_;         /* fut_weakreflist: the runtime's */       \
    PyObject *cancelled_exc;        /* fut_cancelled_exc */
#  define QL_TASK_FIELDS                                                       \
    QL_FUTURE_FIELDS                                                            \
    PyObject *fut_waiter;           /* task_fut_waiter */                      \
    PyObject *coro;                 /* task_coro */                            \
    PyObject *name;                 /* task_name */                            \
    PyObject *base_context;         /* task_context: None, see task.h */       \
    int must_cancel;                /* task_must_cancel */                     \
    int log_destroy_pending;        /* task_log_destroy_pending */             \
    int num_cancels_requested;      /* task_num_cancels_requested */
#  define QL_ASYNCIO_MANAGED_DICT 0
#  define QL_ASYNCIO_DICT_OFFSETS(type) offsetof(type, dict_), offsetof(type, weakreflist_)
#endif

/* 0 if base (an _asyncio type) has the layout QL_*_FIELDS describe, whose
 * size is size (dict_off/weak_off: where the fields say the instance dict
 * and weakref list are, QL_ASYNCIO_DICT_OFFSETS(struct)); else ImportError. */
static inline int
ql_asyncio_layout_check(PyTypeObject *base, Py_ssize_t size, Py_ssize_t dict_off,
                        Py_ssize_t weak_off)
{
    if (base->tp_basicsize == size
        && (QL_ASYNCIO_MANAGED_DICT
            || (base->tp_dictoffset == dict_off && base->tp_weaklistoffset == weak_off))) {
        return 0;
    }
    PyErr_Format(PyExc_ImportError,
                 "quickloop: %s has a C layout this build does not know (size %zd, "
                 "expected %zd); see csrc/compat.h", base->tp_name, base->tp_basicsize, size);
    return -1;
}

/* asyncio's "current loop or the policy's" getter used by Future(loop=None):
 * private _get_event_loop in 3.11, public get_event_loop from 3.12. */
#if PY_VERSION_HEX >= 0x030C0000
#  define QL_GET_EVENT_LOOP_NAME "get_event_loop"
#else
#  define QL_GET_EVENT_LOOP_NAME "_get_event_loop"
#endif

/* asyncio.eager_task_factory (eager_start=True tasks) exists from 3.12 on. */
#define QL_HAS_ASYNCIO_EAGER_TASKS (PY_VERSION_HEX >= 0x030C0000)

/* Task.uncancel() clears a pending cancel request when the count reaches
 * zero from 3.13 on. */
#define QL_UNCANCEL_CLEARS_MUST_CANCEL (PY_VERSION_HEX >= 0x030D0000)

/* asyncio.Timeout.__aexit__ of an expired timeout, from 3.13: any
 * CancelledError subclass becomes TimeoutError (before: CancelledError
 * itself only), and another exception leaving the block gets a TimeoutError
 * put before the CancelledError in its __context__ chain (gh-96037). */
#define QL_TIMEOUT_MARKS_OTHER_EXCEPTIONS (PY_VERSION_HEX >= 0x030D0000)

/* Future.set_exception(StopIteration) raises TypeError up to 3.12; from
 * 3.13 it sets a RuntimeError whose cause and context are the StopIteration
 * (any subclass too). */
#define QL_SET_EXCEPTION_WRAPS_STOP_ITERATION (PY_VERSION_HEX >= 0x030D0000)

/* asyncio.Server._attach()/_detach() take the transport from 3.13 on (the
 * server keeps its clients for close_clients()); before, they take nothing. */
#define QL_SERVER_ATTACH_TAKES_TRANSPORT (PY_VERSION_HEX >= 0x030D0000)

/* int(obj) as a C int: PyLong_AsInt is public from 3.13. */
static inline int
ql_long_as_int(PyObject *obj)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyLong_AsInt(obj);
#else
    return _PyLong_AsInt(obj);
#endif
}

/* getattr that returns 0 (no exception) when the attribute is missing. */
static inline int
ql_getattr_optional(PyObject *obj, PyObject *name, PyObject **result)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyObject_GetOptionalAttr(obj, name, result);
#else
    *result = PyObject_GetAttr(obj, name);
    if (*result != NULL) {
        return 1;
    }
    if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
#endif
}

/* A bool attribute setter's value: 0 or 1 in *out; -1 on deletion (which
 * these attributes refuse) or when truth testing fails. */
static inline int
ql_bool_value(PyObject *value, int *out)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete attribute");
        return -1;
    }
    int truth = PyObject_IsTrue(value);
    if (truth < 0) {
        return -1;
    }
    *out = truth;
    return 0;
}

/* Vectorcall argument parsing for the hot methods: name the keyword
 * arguments (kwlist, NULL-ended; the first npos may also be positional) and
 * get borrowed values, NULL where not given. -1 with TypeError otherwise. */
static inline int
ql_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
              const char *const *kwlist, Py_ssize_t npos, Py_ssize_t nrequired,
              PyObject **out)
{
    Py_ssize_t n = 0;
    while (kwlist[n] != NULL) {
        out[n++] = NULL;
    }
    if (nargs > npos) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd positional arguments (%zd given)",
                     fname, npos, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        out[i] = args[i];
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = 0;
        while (i < n && PyUnicode_CompareWithASCIIString(key, kwlist[i]) != 0) {
            i++;
        }
        if (i == n) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%S'",
                         fname, key);
            return -1;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
                         fname, kwlist[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < nrequired; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'",
                         fname, kwlist[i]);
            return -1;
        }
    }
    return 0;
}

/* 3.12 deprecates the (type, value, traceback) signature of throw()
 * (gh-96348): asyncio's future iterator warns when given more than one
 * argument, and so does quickloop's.  Returns -1 if the warning raised. */
static inline int
ql_warn_throw_signature(Py_ssize_t nargs)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (nargs > 1) {
        return PyErr_WarnEx(PyExc_DeprecationWarning,
                            "the (type, exc, tb) signature of throw() is deprecated, "
                            "use the single-arg signature instead.",
                            1);
    }
#else
    (void)nargs;
#endif
    return 0;
}

#endif /* QL_COMPAT_H */
