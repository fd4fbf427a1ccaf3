/* ctxcopy.h - context copies owned by one quickloop object, kept off the
 * collector's lists.
 *
 * Every Handle without an explicit context, and every Task, runs in a copy of
 * the context current when it was made (PyContext_CopyCurrent), as asyncio
 * requires.  Such a copy has exactly one holder, its handle or task, so the
 * cyclic collector need not list it: the copy is untracked, and its owner's
 * tp_traverse visits the copy's own references in its place (ql_ctx_visit).
 * The collector sees the same reference graph with one object less per owner;
 * its cost grows with the number of tracked objects (a million pending timers
 * are a million contexts).
 *
 * The rules that keep this exact:
 * - ql_ctx_copy() makes an owned copy; nothing else is ever untracked.
 * - Before a copy gets a holder other than its owner (returned by
 *   get_context(), handed to another loop's call_soon or add_done_callback,
 *   stored in an error report's handle), ql_ctx_share() tracks it again, for
 *   good.  Storing any context given from outside goes through ql_ctx_share()
 *   too, which leaves an ordinary context as it is.
 * - The owner lets go of its copy only through ql_ctx_set() or
 *   ql_ctx_drop(), which track it first: CPython's context dealloc unlinks
 *   the object from the collector's list unconditionally.
 * - While the copy is entered (the callback or task step runs in it) the
 *   thread state and the running C code hold it too; the running C code also
 *   holds the owner, so the owner is reachable and its traverse stays exact.
 */
#ifndef QL_CTXCOPY_H
#define QL_CTXCOPY_H

#include "compat.h"

/* A copy of the current context owned by the caller (new reference). */
static inline PyObject *
ql_ctx_copy(void)
{
    PyObject *ctx = PyContext_CopyCurrent();
    if (ctx != NULL) {
        PyObject_GC_UnTrack(ctx);
    }
    return ctx;
}

/* Whether ctx is an owned copy (asyncio lets any object be passed as a
 * context and fails only when it is entered: those are never owned). */
static inline int
ql_ctx_is_owned(PyObject *ctx)
{
    return ctx != NULL && PyContext_CheckExact(ctx) && !PyObject_GC_IsTracked(ctx);
}

/* Make ctx (may be NULL or not a context) ordinary; returns ctx. */
static inline PyObject *
ql_ctx_share(PyObject *ctx)
{
    if (ql_ctx_is_owned(ctx)) {
        PyObject_GC_Track(ctx);
    }
    return ctx;
}

/* The owner's store into *slot, as Py_XSETREF: takes ctx (may be NULL),
 * then releases the context *slot held, tracked again first. */
static inline void
ql_ctx_set(PyObject **slot, PyObject *ctx)
{
    PyObject *old = *slot;
    *slot = ctx;
    if (old != NULL) {
        ql_ctx_share(old);
        Py_DECREF(old);
    }
}

/* The owner's release of *slot (a context it holds, or NULL). */
static inline void
ql_ctx_drop(PyObject **slot)
{
    ql_ctx_set(slot, NULL);
}

/* For the owner's tp_traverse: an owned copy's references, else ctx. */
static inline int
ql_ctx_visit(PyObject *ctx, visitproc visit, void *arg)
{
    if (ql_ctx_is_owned(ctx)) {
        return Py_TYPE(ctx)->tp_traverse(ctx, visit, arg);
    }
    Py_VISIT(ctx);
    return 0;
}

#endif /* QL_CTXCOPY_H */
