#!/usr/bin/env python3
"""A fast SMTP sink that counts how many times each recipient arrived (for
bench/crash-duplicates.sh). Pipelining, no TLS, accepts everything. Writes
{"rcpt": count, ...} to OUT every half second and on SIGTERM.

usage: count-sink.py PORT OUT
"""

import asyncio
import json
import signal
import sys
from collections import Counter

COUNTS = Counter()


class Sink(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
        self.buf = b""
        self.data = False
        self.rcpts = []
        transport.write(b"220 count-sink ESMTP\r\n")

    def data_received(self, chunk):
        self.buf += chunk
        out = []
        while True:
            if self.data:
                end = self.buf.find(b"\r\n.\r\n")
                if end < 0:
                    # Keep only what a split end mark needs.
                    self.buf = self.buf[-4:]
                    break
                self.buf = self.buf[end + 5:]
                self.data = False
                COUNTS.update(self.rcpts)
                self.rcpts = []
                out.append(b"250 2.0.0 ok\r\n")
                continue
            nl = self.buf.find(b"\r\n")
            if nl < 0:
                break
            line, self.buf = self.buf[:nl], self.buf[nl + 2:]
            verb = line[:4].upper()
            if verb == b"EHLO":
                out.append(b"250-count-sink\r\n250 PIPELINING\r\n")
            elif verb == b"RCPT":
                self.rcpts.append(line[8:].strip(b"<> ").decode(errors="replace"))
                out.append(b"250 ok\r\n")
            elif verb == b"DATA":
                self.data = True
                out.append(b"354 go\r\n")
                # The data may start right after the command: a line start.
                self.buf = b"\r\n" + self.buf
            elif verb == b"QUIT":
                out.append(b"221 bye\r\n")
                self.t.write(b"".join(out))
                self.t.close()
                return
            else:
                out.append(b"250 ok\r\n")
        if out:
            self.t.write(b"".join(out))


async def main(port, path):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Sink, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def dump():
        with open(path + ".tmp", "w") as f:
            json.dump(COUNTS, f)
        import os
        os.replace(path + ".tmp", path)

    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass
        dump()
    server.close()
    dump()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
