"""quickloop.transport: the stream socket transport for TCP and Unix sockets.

asyncio's _SelectorSocketTransport (3.11) with reading, writing, flow control
and closing in C (quickloop._core.SocketTransportCore); what is here runs once
per connection or on errors: construction, repr, the finalizer, _fatal_error
and the sendfile hooks.
"""
import selectors
import warnings
from asyncio import base_events, constants, futures, selector_events
from asyncio.log import logger

from . import _compat
from ._core import SocketTransportCore


class SocketTransport(SocketTransportCore):
    """A TCP or Unix stream transport driven by the quickloop C core."""

    max_size = 256 * 1024  # recv() size, as the stdlib's (fixed in C)
    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE

    def __init__(self, loop, sock, protocol, waiter=None, extra=None, server=None):
        self._init_core(loop, sock, sock.fileno())
        self._extra = {} if extra is None else extra
        self._extra["socket"] = selector_events.trsock.TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._protocol_connected = False
        self.set_protocol(protocol)
        self._server = server
        if server is not None:
            _compat.server_attach(server, self)
        loop._transports[self._sock_fd] = self
        base_events._set_nodelay(sock)
        loop.call_soon(protocol.connection_made, self)
        # Only start reading once connection_made() has run.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)

    def __repr__(self):
        info = [self.__class__.__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._sock_fd}")
        loop = self._loop
        if loop is not None and not loop.is_closed():
            polling = selector_events._test_selector_event(
                loop._selector, self._sock_fd, selectors.EVENT_READ
            )
            info.append("read=polling" if polling else "read=idle")
            polling = selector_events._test_selector_event(
                loop._selector, self._sock_fd, selectors.EVENT_WRITE
            )
            state = "polling" if polling else "idle"
            info.append(f"write=<{state}, bufsize={self.get_write_buffer_size()}>")
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn=warnings.warn):
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()

    def _fatal_error(self, exc, message="Fatal error on transport"):
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=exc)
        else:
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )
        self._force_close(exc)

    def _make_empty_waiter(self):
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        self._empty_waiter = self._loop.create_future()
        if not self.get_write_buffer_size():
            self._empty_waiter.set_result(None)
        return self._empty_waiter

    def _reset_empty_waiter(self):
        self._empty_waiter = None
