#!/usr/bin/env python3
"""A pipelining SMTP injector for loads smtp-source cannot make: message i goes to
r<i>@d<i mod DOMAINS>.test. Each of SESSIONS connections sends MAIL, RCPT and DATA in one
write, then the body; it checks every reply and exits 1 on the first unexpected one.

usage: inject.py PORT COUNT SESSIONS SIZE DOMAINS
"""

import asyncio
import sys


async def session(port, indexes, body, domains):
    r, w = await asyncio.open_connection("127.0.0.1", port)

    async def reply(want):
        while True:
            line = await r.readline()
            if not line:
                raise RuntimeError("connection closed")
            if line[3:4] != b"-":
                if not line.startswith(want):
                    raise RuntimeError(f"wanted {want!r}, got {line!r}")
                return

    await reply(b"220")
    w.write(b"EHLO inject.test\r\n")
    await reply(b"250")
    for i in indexes:
        rcpt = f"r{i}@d{i % domains}.test"
        w.write(f"MAIL FROM:<s@origin.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        await reply(b"250")
        await reply(b"250")
        await reply(b"354")
        w.write(f"To: {rcpt}\r\n".encode() + body)
        await reply(b"250")
    w.write(b"QUIT\r\n")
    await w.drain()
    w.close()


async def main():
    port, count, sessions, size, domains = (int(a) for a in sys.argv[1:6])
    line = b"x" * 76 + b"\r\n"
    head = b"From: s@origin.test\r\nSubject: bench\r\n\r\n"
    body = head + line * max(0, (size - len(head)) // len(line)) + b".\r\n"
    await asyncio.gather(*(session(port, range(s, count, sessions), body, domains)
                           for s in range(sessions)))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as e:  # noqa: BLE001 - a bench tool: say what failed and exit 1
        print(f"inject.py: {e}", file=sys.stderr)
        sys.exit(1)
