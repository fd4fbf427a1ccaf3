/* wakeup.h - the loop's wake-up fd: an eventfd written by
 * call_soon_threadsafe so a loop blocked in epoll returns at once.
 * Invariant (under the GIL): pending is 1 iff a write may be unread. */
#ifndef QL_WAKEUP_H
#define QL_WAKEUP_H

#include "compat.h"

typedef struct {
    int fd;
    int pending;
} ql_wakeup;

int ql_wakeup_init(ql_wakeup *w);
/* Wake the loop; safe from any thread holding the GIL. */
void ql_wakeup_signal(ql_wakeup *w);
/* Consume pending wake-ups (the loop thread, after epoll reported fd). */
void ql_wakeup_drain(ql_wakeup *w);
/* A fresh eventfd for this process (after fork). */
int ql_wakeup_reopen(ql_wakeup *w);
void ql_wakeup_close(ql_wakeup *w);

#endif /* QL_WAKEUP_H */
