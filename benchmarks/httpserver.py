"""The HTTP/1.1 server the http_wrk benchmark runs in a subprocess:

    python -m benchmarks.httpserver --loop quickloop --fd FD   (inherited listening socket)
    python -m benchmarks.httpserver --loop uvloop --port 8080  (try it by hand)

asyncio.Protocol, minimal parsing: a request is everything up to a blank
line (no request bodies), only GET, keep-alive unless the request says
"Connection: close", pipelining allowed; every request gets the same 200
response with the body 'Hello'.  GET /__benchmark_stop__ answers
"served <count>" and stops the server.
"""
import argparse
import asyncio
import re
import socket
import sys

from .net import HTTP_RESPONSE, HTTP_STOP_PATH

MAX_HEAD = 64 * 1024
_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_STOP = b"GET " + HTTP_STOP_PATH.encode() + b" "


class State:
    def __init__(self, stop):
        self.served = 0
        self.stop = stop


class HttpProtocol(asyncio.Protocol):
    def __init__(self, state):
        self.state = state
        self.buf = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        start = 0
        answered = 0
        close = stop = bad = False
        while True:
            end = buf.find(b"\r\n\r\n", start)
            if end < 0:
                break
            head = buf[start:end]
            start = end + 4
            if not head.startswith(b"GET "):
                bad = True
                break
            if head.startswith(_STOP):
                stop = True
                break
            answered += 1
            if b"lose" in head and _CLOSE.search(head):
                close = True
                break
        self.buf = buf[start:]
        out = HTTP_RESPONSE * answered if answered else b""
        self.state.served += answered
        if bad or (not close and not stop and len(self.buf) > MAX_HEAD):
            self.transport.write(out + _BAD_REQUEST)
            self.transport.close()
        elif stop:
            body = b"served %d" % self.state.served
            self.transport.write(out + b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                                 % (len(body), body))
            self.transport.close()
            if not self.state.stop.done():
                self.state.stop.set_result(None)
        else:
            if out:
                self.transport.write(out)
            if close:
                self.transport.close()


def serve(loop, sock, announce=False):
    """Serve on the listening socket until the stop request; the count served."""

    async def main():
        state = State(loop.create_future())
        server = await loop.create_server(lambda: HttpProtocol(state), sock=sock, backlog=1024)
        if announce:
            host, port = sock.getsockname()[:2]
            print(f"serving on http://{host}:{port}/ (GET {HTTP_STOP_PATH} stops)", flush=True)
        await state.stop
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)  # let the stop response's close complete
        return state.served

    return loop.run_until_complete(main())


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.httpserver")
    p.add_argument("--loop", default="stdlib", help="loop name as in python -m benchmarks --loops")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--fd", type=int, help="an inherited listening socket")
    g.add_argument("--port", type=int, help="listen on 127.0.0.1:PORT")
    args = p.parse_args(argv)

    from .runner import resolve_loop

    factory, reason = resolve_loop(args.loop)
    if factory is None:
        print(f"loop {args.loop}: {reason}", file=sys.stderr)
        return 2
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = socket.create_server(("127.0.0.1", args.port), backlog=1024)
    sock.setblocking(False)
    loop = factory()
    try:
        served = serve(loop, sock, announce=args.fd is None)
    finally:
        loop.close()
    print(f"served {served}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
