"""Integration with real clients: aiohttp server+client, and an external load generator.

Every test runs on the stdlib loop (the reference) and on quickloop through the
``loop_kind`` fixture of conftest.py, so a difference between the two shows up
as one parametrisation failing and the other passing.

* aiohttp: an ``aiohttp.web.Application`` served with ``AppRunner``/``TCPSite``
  on 127.0.0.1:0 and driven by an ``aiohttp.ClientSession`` in the same loop,
  all inside ``quickloop.run(...)`` (or ``asyncio.Runner`` on the stdlib
  selector loop).  Each run installs a loop exception handler that records
  every context, records every warning, and after the loop is closed collects
  garbage (so "Unclosed client session", "Task was destroyed but it is
  pending!" and ResourceWarnings from unclosed sockets surface) and asserts
  that nothing was recorded.

* loadgen: ``tests/loadgen.py`` runs as a separate process (blocking sockets,
  threads) against a length-prefixed echo server in this process, written
  once with ``asyncio.Protocol`` and once with ``asyncio.start_server``
  streams.  The test checks the loadgen's exit status and JSON summary, and
  the server's own counts of connections, echoed messages, clean EOFs and
  resets.

No sleeping for luck: waits are on events/futures with generous timeouts, and
nothing asserts on how long anything took.  Loopback only.
"""
import asyncio
import functools
import gc
import hashlib
import io
import json
import logging
import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

try:
    import quickloop
except ImportError:  # reported by the tests that need it (conftest.make_loop)
    quickloop = None

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402

HERE = Path(__file__).resolve().parent
LOADGEN = HERE / "loadgen.py"
HOST = "127.0.0.1"
WAIT = 20.0           # generous bound for anything awaited on an event
MiB = 1 << 20


# --------------------------------------------------------------------------
# Running a scenario on a loop kind, recording everything that went wrong
# --------------------------------------------------------------------------

class Recorder:
    """What a run left behind: exception-handler contexts, warnings, log errors."""

    def __init__(self):
        self.contexts = []
        self.warnings = []
        self.log_records = []
        self.loop_type = None

    def handler(self, loop, context):
        self.contexts.append(dict(context))

    @staticmethod
    def describe_context(ctx):
        exc = ctx.get("exception")
        extra = {k: repr(v)[:200] for k, v in ctx.items() if k not in ("message", "exception")}
        return f"{ctx.get('message')!r} exception={exc!r} {extra}"

    def relevant_warnings(self):
        out = []
        for w in self.warnings:
            text = str(w.message)
            if (issubclass(w.category, (ResourceWarning, RuntimeWarning))
                    or "Unclosed" in text or "destroyed" in text
                    or "never awaited" in text):
                out.append(f"{w.category.__name__}: {text} ({w.filename}:{w.lineno})")
        return out

    def assert_clean(self, allow_context=lambda ctx: False):
        bad = [self.describe_context(c) for c in self.contexts if not allow_context(c)]
        assert not bad, "exception handler was called:\n  " + "\n  ".join(bad)
        ws = self.relevant_warnings()
        assert not ws, "warnings:\n  " + "\n  ".join(ws)
        logs = [f"{r.name}: {r.getMessage()}" for r in self.log_records]
        assert not logs, "error log records:\n  " + "\n  ".join(logs)


class _ListHandler(logging.Handler):
    def __init__(self, sink):
        super().__init__(level=logging.ERROR)
        self.sink = sink

    def emit(self, record):
        self.sink.append(record)


def expected_loop_type(kind):
    if kind == "quickloop":
        assert quickloop is not None, "quickloop is not importable (make dev; PYTHONPATH=python)"
        return quickloop.Loop
    return asyncio.SelectorEventLoop


def run_on(kind, main_fn):
    """Run ``await main_fn()`` on a fresh loop of ``kind``; return (result, Recorder).

    quickloop: ``quickloop.run(...)``; stdlib: ``asyncio.Runner`` with the
    stdlib unix selector loop.  The exception handler, the warning filter and
    the log capture stay in place while the runner shuts down, the loop is
    closed and garbage is collected.
    """
    rec = Recorder()
    want = expected_loop_type(kind)

    async def wrapper():
        loop = asyncio.get_running_loop()
        rec.loop_type = type(loop)
        assert type(loop) is want, f"running loop is {type(loop)!r}, wanted {want!r}"
        loop.set_exception_handler(rec.handler)
        return await main_fn()

    log_handler = _ListHandler(rec.log_records)
    loggers = [logging.getLogger(n) for n in ("asyncio", "aiohttp")]
    for lg in loggers:
        lg.addHandler(log_handler)
    try:
        with warnings.catch_warnings(record=True) as wlist:
            warnings.simplefilter("always")
            try:
                if kind == "quickloop":
                    result = quickloop.run(wrapper())
                else:
                    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
                        result = runner.run(wrapper())
            finally:
                gc.collect()
                gc.collect()
            rec.warnings = list(wlist)
    finally:
        for lg in loggers:
            lg.removeHandler(log_handler)
    return result, rec


def leftover_tasks():
    cur = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not cur and not t.done()]


# --------------------------------------------------------------------------
# aiohttp application
# --------------------------------------------------------------------------

def det_bytes(size, seed):
    """Deterministic pseudo-random bytes (cheap: a hash chain, then repeated)."""
    block = b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(1024))
    reps, rest = divmod(size, len(block))
    return block * reps + block[:rest]


class AppState:
    def __init__(self):
        self.slow_started = asyncio.Event()
        self.slow_cancelled = asyncio.Event()
        self.slow_completed = False
        self.slow_started_count = 0
        self.slow_cancelled_count = 0
        self.handler_loop_types = set()
        self.ws_messages = 0
        self.ws_closed = asyncio.Event()
        self.stream_chunks_written = 0


def make_app(state):
    routes = web.RouteTableDef()

    def note_loop():
        state.handler_loop_types.add(type(asyncio.get_running_loop()))

    @routes.get("/text")
    async def text(request):
        note_loop()
        return web.Response(text="hello from " + type(asyncio.get_running_loop()).__name__)

    @routes.get("/item/{i}")
    async def item(request):
        note_loop()
        i = int(request.match_info["i"])
        await asyncio.sleep(0)      # yield once: requests interleave
        return web.json_response({"i": i, "square": i * i})

    @routes.post("/json")
    async def json_echo(request):
        note_loop()
        try:
            data = await request.json()
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"bad JSON: {exc}") from None
        return web.json_response({"echo": data,
                                  "loop": type(asyncio.get_running_loop()).__name__})

    @routes.post("/upload")
    async def upload(request):
        note_loop()
        body = await request.read()
        return web.json_response({"size": len(body),
                                  "sha256": hashlib.sha256(body).hexdigest()})

    @routes.post("/echo-bytes")
    async def echo_bytes(request):
        note_loop()
        body = await request.read()
        return web.Response(body=body, content_type="application/octet-stream")

    @routes.get("/download")
    async def download(request):
        note_loop()
        size = int(request.query["size"])
        data = det_bytes(size, request.query.get("seed", "d"))
        return web.Response(body=data, content_type="application/octet-stream",
                            headers={"X-SHA256": hashlib.sha256(data).hexdigest()})

    @routes.get("/stream")
    async def stream(request):
        note_loop()
        chunks = int(request.query["chunks"])
        size = int(request.query["size"])
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(chunks):
            await resp.write(det_bytes(size, f"s{i}"))
            state.stream_chunks_written += 1
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    @routes.get("/slow")
    async def slow(request):
        note_loop()
        state.slow_started_count += 1
        state.slow_started.set()
        try:
            await asyncio.Event().wait()   # never set: only cancellation ends this
        except asyncio.CancelledError:
            state.slow_cancelled_count += 1
            state.slow_cancelled.set()
            raise
        state.slow_completed = True
        return web.Response(text="should not get here")

    @routes.get("/ws")
    async def ws_echo(request):
        note_loop()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    state.ws_messages += 1
                    await ws.send_str("echo:" + msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    state.ws_messages += 1
                    await ws.send_bytes(msg.data[::-1])
        finally:
            state.ws_closed.set()
        return ws

    app = web.Application(client_max_size=8 * MiB)
    app.add_routes(routes)
    return app


class AioEnv:
    """Server (AppRunner/TCPSite on 127.0.0.1:0) plus a ClientSession."""

    def __init__(self):
        self.state = AppState()
        self.runner = None
        self.session = None
        self.port = None

    def url(self, path):
        return f"http://{HOST}:{self.port}{path}"

    async def __aenter__(self):
        # handler_cancellation: cancel the handler task when the client goes away
        # (off by default since aiohttp 3.9).
        self.runner = web.AppRunner(make_app(self.state), handler_cancellation=True,
                                    access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, HOST, 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        assert self.port
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT))
        return self

    async def __aexit__(self, *exc):
        try:
            if self.session is not None:
                await self.session.close()
        finally:
            if self.runner is not None:
                await self.runner.cleanup()
        if exc[0] is None:
            loop_types = self.state.handler_loop_types
            assert loop_types <= {type(asyncio.get_running_loop())}, loop_types
            assert not self.state.slow_completed
            left = leftover_tasks()
            assert not left, f"tasks still pending after clean shutdown: {left!r}"
        return False


def run_aiohttp(kind, body):
    """Run ``await body(env)`` with an AioEnv on ``kind``; assert a clean run."""

    async def main():
        async with AioEnv() as env:
            await body(env)
            return env.state

    state, rec = run_on(kind, main)
    assert rec.loop_type is expected_loop_type(kind)
    rec.assert_clean()
    return state


# -- scenario pieces (shared by the focused tests and the everything-at-once one)

async def check_text(env):
    async with env.session.get(env.url("/text")) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    assert text == "hello from " + type(asyncio.get_running_loop()).__name__
    async with env.session.get(env.url("/no/such/route")) as resp:
        assert resp.status == 404
        await resp.read()


JSON_DOC = {
    "str": "h\u00e9llo \u2603 \U0001f40d",
    "int": 2 ** 53 + 1,
    "neg": -7,
    "float": 1.5,
    "bool": [True, False],
    "none": None,
    "nested": {"list": list(range(50)), "deep": {"a": {"b": {"c": []}}}},
    "big": "x" * 100_000,
}


async def check_json(env):
    async with env.session.post(env.url("/json"), json=JSON_DOC) as resp:
        assert resp.status == 200
        got = await resp.json()
    assert got["echo"] == JSON_DOC
    assert got["loop"] == type(asyncio.get_running_loop()).__name__
    # Malformed JSON body: a server-side error response, not a crash.
    async with env.session.post(env.url("/json"), data=b"{not json",
                                headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
        assert (await resp.text()).startswith("bad JSON")


async def check_large_bodies(env):
    # io.BytesIO: aiohttp warns (ResourceWarning) about large raw-bytes bodies.
    up = det_bytes(MiB, "upload")
    async with env.session.post(env.url("/upload"), data=io.BytesIO(up)) as resp:
        assert resp.status == 200
        got = await resp.json()
    assert got == {"size": MiB, "sha256": hashlib.sha256(up).hexdigest()}

    async with env.session.get(env.url("/download"),
                               params={"size": str(MiB), "seed": "down"}) as resp:
        assert resp.status == 200
        data = await resp.read()
        want = resp.headers["X-SHA256"]
    assert len(data) == MiB
    assert hashlib.sha256(data).hexdigest() == want
    assert data == det_bytes(MiB, "down")

    body = det_bytes(MiB + 12345, "echo")
    async with env.session.post(env.url("/echo-bytes"), data=io.BytesIO(body)) as resp:
        assert resp.status == 200
        back = await resp.read()
    assert hashlib.sha256(back).hexdigest() == hashlib.sha256(body).hexdigest()


async def check_streaming(env, chunks=40, size=16 * 1024):
    want = hashlib.sha256(b"".join(det_bytes(size, f"s{i}") for i in range(chunks)))
    got = hashlib.sha256()
    total = 0
    pieces = 0
    async with env.session.get(env.url("/stream"),
                               params={"chunks": str(chunks), "size": str(size)}) as resp:
        assert resp.status == 200
        assert resp.headers.get("Transfer-Encoding", "").lower() == "chunked"
        async for piece in resp.content.iter_chunked(4096):
            got.update(piece)
            total += len(piece)
            pieces += 1
    assert total == chunks * size
    assert got.hexdigest() == want.hexdigest()
    assert pieces >= chunks * size // 4096


async def check_concurrent(env, n=200):
    async def one(i):
        async with env.session.get(env.url(f"/item/{i}")) as resp:
            assert resp.status == 200, (i, resp.status)
            return await resp.json()

    results = await asyncio.gather(*(one(i) for i in range(n)))
    assert results == [{"i": i, "square": i * i} for i in range(n)]


async def check_client_timeout(env):
    state = env.state
    before = state.slow_cancelled_count
    state.slow_started.clear()
    state.slow_cancelled.clear()
    # Warm the pool first, so the 1 s budget below covers only sending a request
    # on an open keep-alive connection (no resolver thread or connect in it).
    async with env.session.get(env.url("/text")) as resp:
        await resp.read()
    with pytest.raises(asyncio.TimeoutError):
        async with env.session.get(env.url("/slow"),
                                   timeout=aiohttp.ClientTimeout(total=1.0)) as resp:
            await resp.read()
    # The client gave up and dropped the connection; the server cancels the handler.
    assert state.slow_started.is_set(), "the slow handler never started"
    await asyncio.wait_for(state.slow_cancelled.wait(), WAIT)
    assert state.slow_cancelled_count == before + 1
    # The session is still usable afterwards.
    async with env.session.get(env.url("/text")) as resp:
        assert resp.status == 200
        await resp.read()


async def check_client_disconnect(env):
    state = env.state
    before = state.slow_cancelled_count
    state.slow_started.clear()
    state.slow_cancelled.clear()

    async def fetch():
        async with env.session.get(env.url("/slow")) as resp:
            await resp.read()

    task = asyncio.create_task(fetch())
    await asyncio.wait_for(state.slow_started.wait(), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(state.slow_cancelled.wait(), WAIT)
    assert state.slow_cancelled_count == before + 1


async def check_websocket(env):
    texts = ["hello", "", "\u2603" * 1000, "x" * 70_000, "last"]
    blobs = [b"\x00\x01\x02", det_bytes(64 * 1024, "ws")]
    async with env.session.ws_connect(env.url("/ws")) as ws:
        for t in texts:
            await ws.send_str(t)
            msg = await ws.receive(timeout=WAIT)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            assert msg.data == "echo:" + t
        for b in blobs:
            await ws.send_bytes(b)
            msg = await ws.receive(timeout=WAIT)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            assert msg.data == b[::-1]
        # Pipelined: send several, then read them all back in order.
        for i in range(20):
            await ws.send_str(f"p{i}")
        for i in range(20):
            msg = await ws.receive(timeout=WAIT)
            assert msg.data == f"echo:p{i}"
        await ws.close()
        assert ws.closed
        assert ws.close_code == aiohttp.WSCloseCode.OK
    await asyncio.wait_for(env.state.ws_closed.wait(), WAIT)
    assert env.state.ws_messages >= len(texts) + len(blobs) + 20


# -- the tests ---------------------------------------------------------------

def test_aiohttp_text_and_json(loop_kind):
    async def body(env):
        await check_text(env)
        await check_json(env)

    state = run_aiohttp(loop_kind, body)
    assert state.handler_loop_types == {expected_loop_type(loop_kind)}


def test_aiohttp_1mib_upload_download(loop_kind):
    run_aiohttp(loop_kind, check_large_bodies)


def test_aiohttp_streaming_response(loop_kind):
    state = run_aiohttp(loop_kind, check_streaming)
    assert state.stream_chunks_written == 40


def test_aiohttp_200_concurrent_requests(loop_kind):
    run_aiohttp(loop_kind, check_concurrent)


def test_aiohttp_client_timeout_cancels_handler(loop_kind):
    state = run_aiohttp(loop_kind, check_client_timeout)
    assert state.slow_started_count == 1
    assert state.slow_cancelled_count == 1
    assert not state.slow_completed


def test_aiohttp_client_disconnect_cancels_handler(loop_kind):
    state = run_aiohttp(loop_kind, check_client_disconnect)
    assert state.slow_cancelled_count == 1


def test_aiohttp_websocket_echo(loop_kind):
    state = run_aiohttp(loop_kind, check_websocket)
    assert state.ws_messages == 5 + 2 + 20


def test_aiohttp_everything_at_once(loop_kind):
    """All of the above concurrently on one server and one session."""

    async def body(env):
        await check_client_timeout(env)   # uses the shared slow_* events: first, alone
        await asyncio.gather(
            check_text(env),
            check_json(env),
            check_large_bodies(env),
            check_streaming(env),
            check_concurrent(env),
            check_websocket(env),
        )
        await check_client_disconnect(env)

    state = run_aiohttp(loop_kind, body)
    assert state.slow_cancelled_count == 2


def test_aiohttp_unclosed_session_is_detected(loop_kind):
    """The harness can fail: a leaked ClientSession is reported on both loops."""

    async def main():
        session = aiohttp.ClientSession()
        del session                  # dropped without close(): __del__ complains

    _, rec = run_on(loop_kind, main)
    msgs = [c.get("message") for c in rec.contexts]
    assert "Unclosed client session" in msgs, msgs
    assert any("Unclosed client session" in w for w in rec.relevant_warnings()), \
        rec.relevant_warnings()
    with pytest.raises(AssertionError, match="Unclosed client session"):
        rec.assert_clean()


# --------------------------------------------------------------------------
# Echo servers driven by tests/loadgen.py
# --------------------------------------------------------------------------

HDR = struct.Struct("!I")


class ServerStats:
    def __init__(self, expected_connections):
        self.expected = expected_connections
        self.made = 0
        self.lost = 0
        self.messages = 0
        self.clean_eofs = 0
        self.incomplete_eofs = 0
        self.resets = 0
        self.other_errors = []
        self.all_lost = asyncio.Event()

    def connection_lost(self):
        self.lost += 1
        if self.lost >= self.expected:
            self.all_lost.set()

    def as_dict(self):
        return {k: getattr(self, k) for k in (
            "made", "lost", "messages", "clean_eofs", "incomplete_eofs", "resets",
            "other_errors")}


class EchoProtocol(asyncio.Protocol):
    """Length-prefixed echo with asyncio.Protocol."""

    def __init__(self, stats, corrupt=False):
        self.stats = stats
        self.corrupt = corrupt
        self.buf = bytearray()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.stats.made += 1

    def data_received(self, data):
        buf = self.buf
        buf += data
        pos = 0
        while len(buf) - pos >= HDR.size:
            (n,) = HDR.unpack_from(buf, pos)
            end = pos + HDR.size + n
            if len(buf) < end:
                break
            out = bytes(buf[pos:end])
            if self.corrupt and n >= 1024:
                out = out[:-1] + bytes([out[-1] ^ 0xFF])
            self.transport.write(out)
            self.stats.messages += 1
            pos = end
        if pos:
            del buf[:pos]

    def eof_received(self):
        if self.buf:
            self.stats.incomplete_eofs += 1
        else:
            self.stats.clean_eofs += 1
        return False            # close once the replies are flushed

    def connection_lost(self, exc):
        if isinstance(exc, ConnectionResetError):
            self.stats.resets += 1
        elif exc is not None:
            self.stats.other_errors.append(repr(exc))
        self.stats.connection_lost()


async def start_protocol_server(stats, corrupt=False):
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: EchoProtocol(stats, corrupt), HOST, 0)


async def start_streams_server(stats):
    async def handle(reader, writer):
        stats.made += 1
        reset = False
        try:
            while True:
                try:
                    hdr = await reader.readexactly(HDR.size)
                except asyncio.IncompleteReadError as e:
                    if e.partial:
                        stats.incomplete_eofs += 1
                    else:
                        stats.clean_eofs += 1
                    break
                (n,) = HDR.unpack(hdr)
                try:
                    payload = await reader.readexactly(n)
                except asyncio.IncompleteReadError:
                    stats.incomplete_eofs += 1
                    break
                writer.write(hdr + payload)
                await writer.drain()
                stats.messages += 1
        except ConnectionResetError:
            reset = True
        except Exception as exc:  # noqa: BLE001 - counted, asserted empty
            stats.other_errors.append(repr(exc))
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionResetError:
                reset = True
            except Exception as exc:  # noqa: BLE001
                stats.other_errors.append("wait_closed: " + repr(exc))
            if reset:
                stats.resets += 1
            stats.connection_lost()

    return await asyncio.start_server(handle, HOST, 0)


SERVERS = {"protocol": start_protocol_server, "streams": start_streams_server}

LOADGEN_ARGS = dict(threads=8, requests=500, sizes="1,1024,10240,102400",
                    reset_clients=16, halfclose_clients=16, halfclose_messages=4)


def loadgen_cmd(port, **kw):
    cmd = [sys.executable, str(LOADGEN), "--host", HOST, "--port", str(port),
           "--timeout", "10", "--deadline", "30"]
    for k, v in kw.items():
        cmd += ["--" + k.replace("_", "-"), str(v)]
    return cmd


async def run_loadgen(port, **kw):
    loop = asyncio.get_running_loop()
    proc = await loop.run_in_executor(None, functools.partial(
        subprocess.run, loadgen_cmd(port, **kw), capture_output=True, text=True,
        timeout=45, env={**os.environ, "PYTHONPATH": ""}))
    lines = proc.stdout.strip().splitlines()
    summary = json.loads(lines[-1]) if lines else None
    return proc.returncode, summary, proc.stderr


def is_reset_noise(ctx):
    return isinstance(ctx.get("exception"),
                      (ConnectionResetError, BrokenPipeError, ConnectionAbortedError))


def noise_key(ctx):
    return (ctx.get("message"), type(ctx.get("exception")).__name__)


def load_scenario(kind, server_kind, args):
    """Serve, run the loadgen against it, wait until the server saw every connection end."""
    expected_conns = args["threads"] + args["reset_clients"] + args["halfclose_clients"]

    async def main():
        stats = ServerStats(expected_conns)
        server = await SERVERS[server_kind](stats)
        try:
            port = server.sockets[0].getsockname()[1]
            rc, summary, stderr = await run_loadgen(port, **args)
            try:
                await asyncio.wait_for(stats.all_lost.wait(), WAIT)
            except asyncio.TimeoutError:
                pass    # reported by the count assertions, with the numbers
        finally:
            server.close()
            await server.wait_closed()
        return rc, summary, stderr, stats.as_dict()

    (rc, summary, stderr, stats), rec = run_on(kind, main)
    return rc, summary, stderr, stats, rec


_reference_noise = {}


def reference_noise(server_kind):
    """Reset noise the stdlib loop reports for the same scenario (computed once)."""
    if server_kind not in _reference_noise:
        *_, rec = load_scenario("stdlib", server_kind, LOADGEN_ARGS)
        _reference_noise[server_kind] = {noise_key(c) for c in rec.contexts if is_reset_noise(c)}
    return _reference_noise[server_kind]


@pytest.mark.parametrize("server_kind", sorted(SERVERS))
def test_loadgen_echo_server(loop_kind, server_kind):
    a = LOADGEN_ARGS
    rc, summary, stderr, stats, rec = load_scenario(loop_kind, server_kind, a)
    print(f"\nloadgen summary ({loop_kind}, {server_kind}): {json.dumps(summary)}")
    print(f"server stats ({loop_kind}, {server_kind}): {stats}")

    assert summary is not None, f"no JSON summary; rc={rc} stderr={stderr!r}"
    assert rc == 0, f"loadgen failed rc={rc}: {json.dumps(summary, indent=1)}\n{stderr}"
    assert summary["ok"] is True
    assert summary["errors"] == 0 and summary["mismatches"] == 0

    echo_requests = a["threads"] * a["requests"]
    half_requests = a["halfclose_clients"] * a["halfclose_messages"]
    connections = a["threads"] + a["reset_clients"] + a["halfclose_clients"]
    ph = summary["phases"]
    assert ph["echo"]["connections"] == a["threads"]
    assert ph["echo"]["requests"] == echo_requests
    sizes = [int(s) for s in a["sizes"].split(",")]
    per_cycle = sum(4 + s for s in sizes)
    assert a["requests"] % len(sizes) == 0
    assert ph["echo"]["bytes_sent"] == ph["echo"]["bytes_received"] \
        == a["threads"] * (a["requests"] // len(sizes)) * per_cycle
    assert ph["reset"]["connections"] == a["reset_clients"]
    assert ph["reset"]["requests"] == a["reset_clients"]
    assert ph["reset"]["resets_sent"] == a["reset_clients"]
    assert ph["halfclose"]["connections"] == a["halfclose_clients"]
    assert ph["halfclose"]["requests"] == half_requests
    assert ph["halfclose"]["clean_eofs"] == a["halfclose_clients"]
    assert ph["halfclose"]["bytes_sent"] == ph["halfclose"]["bytes_received"]
    assert summary["connections"] == connections

    # The server's side of the story.
    assert stats["other_errors"] == []
    assert stats["made"] == connections, stats
    assert stats["lost"] == connections, stats
    assert stats["messages"] == echo_requests + a["reset_clients"] + half_requests, stats
    # echo and half-close clients end with FIN at a frame boundary.
    assert stats["clean_eofs"] == a["threads"] + a["halfclose_clients"], stats
    # every reset client left a half frame behind and then an RST (or, at worst,
    # the server saw the partial frame end without the RST being reported).
    assert stats["resets"] + stats["incomplete_eofs"] == a["reset_clients"], stats

    noise = [c for c in rec.contexts if is_reset_noise(c)]
    rec.assert_clean(allow_context=is_reset_noise)
    if noise and loop_kind != "stdlib":
        ref = reference_noise(server_kind)
        extra = {noise_key(c) for c in noise} - ref
        assert not extra, (f"reset noise the stdlib loop does not report: {extra}; "
                           + "; ".join(Recorder.describe_context(c) for c in noise[:5]))


def test_loadgen_detects_corruption(loop_kind):
    """The load generator can fail: a server flipping a byte in large replies."""
    args = dict(threads=2, requests=8, sizes="1,1024", reset_clients=0,
                halfclose_clients=0, halfclose_messages=0, phases="echo")

    async def main():
        stats = ServerStats(2)
        server = await start_protocol_server(stats, corrupt=True)
        try:
            rc, summary, stderr = await run_loadgen(server.sockets[0].getsockname()[1], **args)
            await asyncio.wait_for(stats.all_lost.wait(), WAIT)
        finally:
            server.close()
            await server.wait_closed()
        return rc, summary, stderr

    (rc, summary, stderr), rec = run_on(loop_kind, main)
    assert rc == 1, (rc, summary, stderr)
    assert summary["ok"] is False
    # each thread fails on its first 1 KiB message (request 1) and stops
    assert summary["mismatches"] == 2, summary
    assert summary["phases"]["echo"]["requests"] == 2, summary
    rec.assert_clean()
