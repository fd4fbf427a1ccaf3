"""Profiling driver: N echo round trips of a SIZE-byte message (env SIZE, default 1024) over one loopback TCP
connection, client and server Protocols on the same loop (env N).

Usage: python tcp_echo.py stdlib|uvloop|quickloop [nogc]
"""
import asyncio, gc, os, sys, time
import quickloop
N = int(os.environ.get("N", 20_000))
MSG = b"x" * int(os.environ.get("SIZE", 1024))
class Echo(asyncio.Protocol):
    def connection_made(self, tr): self.tr = tr
    def data_received(self, data): self.tr.write(data)
class Client(asyncio.Protocol):
    def __init__(self, done): self.done, self.left, self.got = done, N, 0
    def connection_made(self, tr): self.tr = tr; tr.write(MSG)
    def data_received(self, data):
        self.got += len(data)
        if self.got < len(MSG): return
        self.got = 0; self.left -= 1
        if self.left: self.tr.write(MSG)
        else: self.done.set_result(None)
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    done = loop.create_future()
    t0 = time.perf_counter()
    tr, _ = await loop.create_connection(lambda: Client(done), *server.sockets[0].getsockname())
    await done
    print(sys.argv[1], "%.0f ns/round trip" % ((time.perf_counter() - t0) / N * 1e9))
    tr.close(); server.close(); await server.wait_closed()
mk = {"quickloop": quickloop.new_event_loop, "stdlib": asyncio.new_event_loop}
if sys.argv[1] == "uvloop":
    import uvloop; mk["uvloop"] = uvloop.new_event_loop
if "nogc" in sys.argv: gc.disable()
loop = mk[sys.argv[1]](); loop.run_until_complete(main()); loop.close()
