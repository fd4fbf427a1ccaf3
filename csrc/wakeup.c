/* wakeup.c - eventfd wake-ups (see wakeup.h).  One write per batch: while a
 * wake-up is pending, further call_soon_threadsafe calls skip the syscall. */
#include "wakeup.h"
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

int
ql_wakeup_init(ql_wakeup *w)
{
    w->pending = 0;
    w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

void
ql_wakeup_signal(ql_wakeup *w)
{
    if (w->pending || w->fd < 0) {
        return;
    }
    w->pending = 1;
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(w->fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    /* EAGAIN means the counter is saturated: the loop is awake anyway. */
}

void
ql_wakeup_drain(ql_wakeup *w)
{
    uint64_t value;
    ssize_t n;
    do {
        n = read(w->fd, &value, sizeof(value));
    } while (n < 0 && errno == EINTR);
    w->pending = 0;
}

int
ql_wakeup_reopen(ql_wakeup *w)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (w->fd >= 0) {
        close(w->fd);
    }
    w->fd = fd;
    w->pending = 0;
    return 0;
}

void
ql_wakeup_close(ql_wakeup *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
}
