/* ready.h - the ready queue: a growable ring buffer of owned object pointers.
 * Invariant: items[(head + i) & (cap - 1)] for i < len are owned references;
 * cap is zero or a power of two. */
#ifndef QL_READY_H
#define QL_READY_H

#include "compat.h"

typedef struct {
    PyObject **items;
    size_t head;
    size_t len;
    size_t cap;
} ql_ready;

/* Append, stealing the reference to item. -1 with MemoryError (the
 * reference is released then too). */
int ql_ready_push(ql_ready *q, PyObject *item);
/* Remove and return the oldest entry (an owned reference); NULL if empty. */
PyObject *ql_ready_pop(ql_ready *q);
void ql_ready_clear(ql_ready *q);
int ql_ready_traverse(ql_ready *q, visitproc visit, void *arg);

#endif /* QL_READY_H */
