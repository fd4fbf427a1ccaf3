/* poller.c - epoll backend (see poller.h).  Level-triggered, like the selector
 * loop: a reader keeps firing while data is unread. */
#include "poller.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#define POLLER_MIN_EVENTS 64

int
ql_poller_init(ql_poller *p)
{
    p->fds = NULL;
    p->nfds = 0;
    p->nwatchers = 0;
    p->max_events = POLLER_MIN_EVENTS;
    p->events = PyMem_Malloc(sizeof(struct epoll_event) * p->max_events);
    if (p->events == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        PyMem_Free(p->events);
        p->events = NULL;
        return -1;
    }
    return 0;
}

static int
fd_table_reserve(ql_poller *p, int fd)
{
    if (fd < p->nfds) {
        return 0;
    }
    /* Ask the kernel before growing the table: a bad fd (10**7, INT_MAX)
     * must cost an EBADF, not a huge allocation.  An open fd is below
     * RLIMIT_NOFILE, which bounds the table. */
    if (fcntl(fd, F_GETFD) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    size_t n = p->nfds ? (size_t)p->nfds : 64;
    while (n <= (size_t)fd) {
        n *= 2;
    }
    if (n > INT_MAX) {
        n = (size_t)fd + 1;
    }
    ql_fd_entry *fds = PyMem_Realloc(p->fds, sizeof(ql_fd_entry) * n);
    if (fds == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = (size_t)p->nfds; i < n; i++) {
        fds[i] = (ql_fd_entry){NULL, NULL, 0};
    }
    p->fds = fds;
    p->nfds = (int)n;
    return 0;
}

/* Make the kernel's mask for fd equal to want; tolerate an fd the kernel
 * dropped behind our back (closed and possibly reused). */
static int
epoll_update(ql_poller *p, int fd, uint32_t have, uint32_t want)
{
    struct epoll_event ev = {.events = want, .data.fd = fd};
    int rc;
    if (want == 0) {
        rc = epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, &ev);
        return (rc < 0 && errno != EBADF && errno != ENOENT) ? -1 : 0;
    }
    if (have == 0) {
        rc = epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
        if (rc < 0 && errno == EEXIST) {
            rc = epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev);
        }
    }
    else {
        rc = epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev);
        if (rc < 0 && errno == ENOENT) {
            rc = epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
        }
    }
    return rc;
}

int
ql_poller_set(ql_poller *p, int fd, int writer, PyObject *handle, PyObject **old)
{
    *old = NULL;
    if (fd_table_reserve(p, fd) < 0) {
        return -1;
    }
    ql_fd_entry *e = &p->fds[fd];
    uint32_t bit = writer ? EPOLLOUT : EPOLLIN;
    uint32_t want = e->registered | bit;
    /* Always tell the kernel: fd may have been closed and its number reused
     * since it was registered, which silently dropped the registration. */
    if (epoll_update(p, fd, e->registered, want) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    e->registered = want;
    PyObject **slot = writer ? &e->writer : &e->reader;
    *old = *slot;
    *slot = Py_NewRef(handle);
    if (*old == NULL) {
        p->nwatchers++;
    }
    return 0;
}

void
ql_poller_unset(ql_poller *p, int fd, int writer, PyObject **old)
{
    *old = NULL;
    if (fd < 0 || fd >= p->nfds) {
        return;
    }
    ql_fd_entry *e = &p->fds[fd];
    uint32_t bit = writer ? EPOLLOUT : EPOLLIN;
    if (!(e->registered & bit)) {
        return;
    }
    uint32_t want = e->registered & ~bit;
    (void)epoll_update(p, fd, e->registered, want);
    e->registered = want;
    PyObject **slot = writer ? &e->writer : &e->reader;
    *old = *slot;
    *slot = NULL;
    if (*old != NULL) {
        p->nwatchers--;
    }
}

int
ql_poller_add_internal(ql_poller *p, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#  define QL_HAVE_EPOLL_PWAIT2 1
/* Set once epoll_pwait2 is found missing (old kernel: ENOSYS) or refused (a
 * seccomp filter or valgrind: EPERM/ENOSYS): epoll_wait from then on.  Written
 * without the GIL, but only ever from 0 to 1. */
static int pwait2_unavailable;
#endif

int
ql_poller_wait(ql_poller *p, int64_t timeout_ns)
{
    int n = -1;
    if (timeout_ns == 0) {
        /* A poll that cannot block keeps the GIL: releasing and taking it
         * back on every busy iteration costs more than the poll. */
        n = epoll_wait(p->epfd, p->events, p->max_events, 0);
        goto polled;
    }
    Py_BEGIN_ALLOW_THREADS
#ifdef QL_HAVE_EPOLL_PWAIT2
    if (!pwait2_unavailable) {
        /* epoll_pwait2 takes nanoseconds: no rounding a short timer up to 1 ms. */
        struct timespec ts, *tsp = NULL;
        if (timeout_ns >= 0) {
            ts.tv_sec = timeout_ns / 1000000000;
            ts.tv_nsec = timeout_ns % 1000000000;
            tsp = &ts;
        }
        n = epoll_pwait2(p->epfd, p->events, p->max_events, tsp, NULL);
        if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
            pwait2_unavailable = 1;
        }
    }
    if (pwait2_unavailable)
#endif
    {
        /* Round up: waking early would only cost an extra iteration. */
        int ms = timeout_ns < 0 ? -1
                 : timeout_ns >= (int64_t)INT32_MAX * 1000000 ? INT32_MAX
                 : (int)((timeout_ns + 999999) / 1000000);
        n = epoll_wait(p->epfd, p->events, p->max_events, ms);
    }
    Py_END_ALLOW_THREADS
polled:
    if (n == p->max_events) {
        /* A full buffer: offer a bigger one next time (best effort). */
        struct epoll_event *ev = PyMem_Realloc(p->events,
                                               sizeof(*ev) * p->max_events * 2);
        if (ev != NULL) {
            p->events = ev;
            p->max_events *= 2;
        }
    }
    return n;
}

int
ql_poller_reopen(ql_poller *p)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    close(p->epfd);
    p->epfd = epfd;
    for (int fd = 0; fd < p->nfds; fd++) {
        ql_fd_entry *e = &p->fds[fd];
        if (e->registered && epoll_update(p, fd, 0, e->registered) < 0) {
            /* The fd is gone in this process: forget its interest bits but
             * keep the handles, so remove_reader() still reports them. */
            e->registered = 0;
        }
    }
    return 0;
}

void
ql_poller_close(ql_poller *p)
{
    ql_fd_entry *fds = p->fds;
    int nfds = p->nfds;
    p->fds = NULL;
    p->nfds = 0;
    p->nwatchers = 0;
    for (int i = 0; i < nfds; i++) {
        Py_XDECREF(fds[i].reader);
        Py_XDECREF(fds[i].writer);
    }
    PyMem_Free(fds);
    PyMem_Free(p->events);
    p->events = NULL;
    if (p->epfd >= 0) {
        close(p->epfd);
        p->epfd = -1;
    }
}

int
ql_poller_traverse(ql_poller *p, visitproc visit, void *arg)
{
    for (int i = 0; i < p->nfds; i++) {
        Py_VISIT(p->fds[i].reader);
        Py_VISIT(p->fds[i].writer);
    }
    return 0;
}

int
ql_fileobj_to_fd(PyObject *fileobj)
{
    long fd;
    if (PyLong_Check(fileobj)) {
        fd = PyLong_AsLong(fileobj);
        if (fd == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    else {
        PyObject *res = PyObject_CallMethod(fileobj, "fileno", NULL);
        if (res != NULL) {
            fd = PyLong_AsLong(res);
            Py_DECREF(res);
            if (fd == -1 && PyErr_Occurred()) {
                res = NULL;
            }
        }
        if (res == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)
                && !PyErr_ExceptionMatches(PyExc_TypeError)
                && !PyErr_ExceptionMatches(PyExc_ValueError)) {
                return -1;
            }
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "Invalid file object: %R", fileobj);
            return -1;
        }
    }
    if (fd < 0) {
        PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %ld", fd);
        return -1;
    }
    if (fd > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to C int");
        return -1;
    }
    return (int)fd;
}
