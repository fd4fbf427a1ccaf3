/* transport.h - the stream socket transport (TCP and Unix stream sockets):
 * asyncio's _SelectorSocketTransport (3.11) with its hot paths in C.  The
 * poller holds the transport itself as an fd's reader or writer, and the
 * loop calls ql_transport_io_ready() for its events: no Handle per event.
 * Invariant: reading/writing are set exactly while the loop's fd table
 * holds this transport as the fd's reader/writer (until the loop closes and
 * drops its table). */
#ifndef QL_TRANSPORT_H
#define QL_TRANSPORT_H

#include "compat.h"

typedef struct {
    PyObject *loop;             /* a quickloop loop; NULL once connection_lost ran */
    PyObject *sock;             /* socket.socket; NULL once closed */
    PyObject *protocol;
    PyObject *server;
    PyObject *extra;            /* dict behind get_extra_info() */
    PyObject *empty_waiter;     /* sendfile's "buffer drained" future */
    PyObject *read_context;     /* the contexts read and write events run in: */
    PyObject *write_context;    /* copies taken when the fd was registered */
    char *wbuf;                 /* write buffer: pending bytes are */
    Py_ssize_t wstart;          /* wbuf[wstart:wstart + wlen] */
    Py_ssize_t wlen;
    Py_ssize_t wcap;
    Py_ssize_t high_water;
    Py_ssize_t low_water;
    int fd;
    int conn_lost;              /* >0 once connection_lost is scheduled */
    char closing;
    char paused;                /* pause_reading() */
    char eof;                   /* write_eof() */
    char protocol_paused;       /* pause_writing() called */
    char protocol_connected;
    char buffered;              /* protocol is a BufferedProtocol */
    char reading;               /* registered as the fd's reader */
    char writing;               /* registered as the fd's writer */
    char big_reads;             /* the last read was large: read into a fresh bytes */
    char read_queued;           /* a read/write event is on the ready queue and */
    char write_queued;          /* still valid (cleared when unregistered) */
} ql_transport;

extern PyTypeObject *ql_transport_type;

/* The fd's reader (writer=0) or writer (writer=1) registration of transport
 * tr was dropped by the loop (removed or replaced). */
void ql_transport_io_dropped(PyObject *tr, int writer);
/* tr's read or write event goes on the ready queue: like the stdlib's
 * handle, it is dropped if tr unregisters before it runs. */
static inline void
ql_transport_io_queued(ql_transport *t, int writer)
{
    if (writer) {
        t->write_queued = 1;
    }
    else {
        t->read_queued = 1;
    }
}

/* The ql_transport state of transport object tr. */
ql_transport *ql_transport_state(PyObject *tr);

/* Run tr's read or write event.  Errors are reported as a failing callback
 * would be; -1 only for SystemExit/KeyboardInterrupt. */
int ql_transport_io_ready(PyObject *tr, int writer);

int ql_transport_type_ready(PyObject *module);

#endif /* QL_TRANSPORT_H */
