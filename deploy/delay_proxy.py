#!/usr/bin/env python3
"""A TCP proxy on loopback that adds a fixed one-way delay in each direction: the cross-site
link for two data centres on one machine (deploy/measure-sites.sh MEASURE_LINK_DELAY_MS).

    deploy/delay_proxy.py DELAY_MS LISTEN_PORT:TARGET_PORT [LISTEN_PORT:TARGET_PORT ...]

Bytes keep their order; each chunk is forwarded DELAY_MS after it was read. Listens and connects
on 127.0.0.1 only. Runs until killed (SIGTERM)."""
import asyncio
import sys


async def pump(reader, writer, delay_s):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            queue.put_nowait((loop.time() + delay_s, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((loop.time() + delay_s, None))
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def serve(listen_port, target_port, delay_s):
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, server_writer, delay_s),
                             pump(server_reader, client_writer, delay_s))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


async def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    delay_s = float(sys.argv[1]) / 1000
    pairs = [tuple(int(p) for p in arg.split(":")) for arg in sys.argv[2:]]
    await asyncio.gather(*(serve(listen, target, delay_s) for listen, target in pairs))


if __name__ == "__main__":
    asyncio.run(main())
