/* ready.h - the ready queue: a growable ring buffer of entries to run.  An
 * entry is a Handle, or work queued by C code without any Python-visible
 * handle: a task step, a task wake-up, or a future's done callback.
 * Invariant: entries[(head + i) & (cap - 1)] for i < len hold owned
 * references; cap is zero or a power of two.
 * A Handle that call_soon() queues while its loop runs, and a task woken
 * from an anchored wait, stay off the cyclic GC's lists while queued
 * (anchor.h): a handle leaves the ring tracked if anything else still holds
 * it, a task's step tracks it first thing, and ql_ready_track_all() tracks
 * every queued handle and task again when the loop stops. */
#ifndef QL_READY_H
#define QL_READY_H

#include "compat.h"

typedef enum {
    QL_READY_HANDLE,    /* obj: a Handle */
    QL_READY_STEP,      /* obj: a Task; arg: exception to throw in, or NULL */
    QL_READY_WAKEUP,    /* obj: a Task; arg: the future it was waiting on */
    QL_READY_CALLBACK,  /* obj: a done callback; arg: its future; context */
    QL_READY_IO_READ,   /* obj: a transport whose fd is readable */
    QL_READY_IO_WRITE,  /* obj: a transport whose fd is writable */
} ql_ready_kind;

typedef struct {
    PyObject *obj;
    PyObject *arg;
    PyObject *context;
    ql_ready_kind kind;
} ql_ready_entry;

typedef struct {
    ql_ready_entry *entries;
    size_t head;
    size_t len;
    size_t cap;
} ql_ready;

/* Make room for one more entry, so the next push cannot fail. -1 with
 * MemoryError. */
int ql_ready_reserve(ql_ready *q);
/* Make room for n more entries. -1 with MemoryError. */
int ql_ready_reserve_n(ql_ready *q, size_t n);
/* Append an entry; takes new references to obj, arg and context (the last
 * two may be NULL). -1 with MemoryError (never after ql_ready_reserve). */
int ql_ready_push(ql_ready *q, ql_ready_kind kind, PyObject *obj, PyObject *arg,
                  PyObject *context);
/* Take the newest entry's Handle off the GC's lists: it was just queued by
 * call_soon() in the running loop (see above). */
void ql_ready_untrack_newest(ql_ready *q);
/* Track every queued handle and task again: the loop stops running. */
void ql_ready_track_all(ql_ready *q);
/* Move the oldest entry (owned references) to *out; 0 if the queue is empty. */
int ql_ready_pop(ql_ready *q, ql_ready_entry *out);
/* Release a popped entry; a handle anything else still holds is tracked
 * again first. */
void ql_ready_entry_clear(ql_ready_entry *e);
void ql_ready_clear(ql_ready *q);
int ql_ready_traverse(ql_ready *q, visitproc visit, void *arg);

#endif /* QL_READY_H */
