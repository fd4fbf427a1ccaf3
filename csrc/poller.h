/* poller.h - the epoll backend: an epoll instance plus an fd table indexed by
 * fd holding each fd's reader and writer handles.
 * Invariant: fds[fd].registered is exactly the event mask the kernel holds for
 * fd (0: not registered), and a handle is present iff its interest bit is. */
#ifndef QL_POLLER_H
#define QL_POLLER_H

#include <stdint.h>
#include <sys/epoll.h>
#include "compat.h"

typedef struct {
    PyObject *reader;       /* ql_handle or NULL */
    PyObject *writer;       /* ql_handle or NULL */
    uint32_t registered;    /* EPOLLIN / EPOLLOUT as registered in the kernel */
} ql_fd_entry;

typedef struct {
    int epfd;
    ql_fd_entry *fds;
    int nfds;                       /* size of fds */
    struct epoll_event *events;
    int max_events;
    int nwatchers;                  /* reader and writer slots holding a handle */
} ql_poller;

int ql_poller_init(ql_poller *p);
/* Set fd's reader (writer=0) or writer (writer=1) to handle (new reference).
 * The replaced handle, if any, is returned in *old (owned). -1 with OSError. */
int ql_poller_set(ql_poller *p, int fd, int writer, PyObject *handle, PyObject **old);
/* Drop fd's reader or writer; the handle removed (owned) goes to *old, NULL if
 * none was set. Never fails: a kernel error (fd already closed) is ignored. */
void ql_poller_unset(ql_poller *p, int fd, int writer, PyObject **old);
/* Wait up to timeout_ns (-1: forever) with the GIL released. Returns the
 * number of events, or -1 with errno set (EINTR included). */
int ql_poller_wait(ql_poller *p, int64_t timeout_ns);
/* Register a bare fd for input (the wake-up fd); its events carry data.fd. */
int ql_poller_add_internal(ql_poller *p, int fd);
/* A fresh epoll instance holding the same registrations (after fork). */
int ql_poller_reopen(ql_poller *p);
/* Drop every handle and close the epoll fd. */
void ql_poller_close(ql_poller *p);
int ql_poller_traverse(ql_poller *p, visitproc visit, void *arg);

/* Convert an int or an object with fileno() to an fd, as selectors does. */
int ql_fileobj_to_fd(PyObject *fileobj);

#endif /* QL_POLLER_H */
