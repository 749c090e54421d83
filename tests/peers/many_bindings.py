#!/usr/bin/env python3
"""A thousand bindings to one MX (issue 17): connect pacing across bindings against a real peer.

dnsmasq serves `wide.test MX 10 mx.wide.test -> 127.0.0.20`; an aiosmtpd sink listens there
with a small accept backlog (16, where Linux's default is 4,096). A Lua policy puts each
message on the binding its `X-Binding` header names; the 1,000 bindings have their own source
addresses (127.1.x.y), so the sink tells them apart. Every binding's queue wants its first
connection at once (the mail is queued with the group's delivery suspended, then the console
lifts it): without pacing across bindings that was a connection storm, hundreds of SYNs the
backlog drops and the kernel retries after 1 s, 3 s, 7 s. With
`Host_Max_Connects_In_Progress` (default 16) no connection waits in SYN-SENT as long as a
second: `ss` is sampled every 50 ms and each socket's time in SYN-SENT measured.

Run by `cargo test` (crates/bindery/tests/peers.rs) with BINDERY_BIN set.
"""

import os
import smtplib
import subprocess
import sys
import threading
import time
import unittest

from deliver import Sink, SinkSuite

BINDINGS = 1000
MESSAGES = 2000

SCRIPT = r"""
require("msys.core")
require("msys.extended.message")

local mod = {}

function mod:validate_set_binding(msg)
  local named = msg:header("X-Binding")
  if #named > 0 then
    msg:binding(named[1])
  end
  return msys.core.VALIDATE_CONT
end

msys.registerModule("assign", mod)
"""


class SmallBacklogSink(Sink):
    """The delivery tests' sink, listening with an accept backlog of 16."""

    async def _listen(self):
        return await self.loop.create_server(self._session, self.ip, self.port,
                                             reuse_address=True, backlog=16)


def source(i):
    return f"127.1.{i // 250}.{i % 250 + 1}"


def listen_drops():
    """The kernel's count of connections dropped at a full accept queue (all sockets)."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:]))
            return int(row.get("ListenDrops", 0))
    return 0


class SynSent:
    """Samples `ss` every 50 ms for sockets in SYN-SENT to `dst` and keeps, per socket, how
    long it was seen there."""

    def __init__(self, dst):
        self.dst = dst
        self.first = {}
        self.last = {}
        self.most = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.is_set():
            out = subprocess.run(["ss", "-Htn", "state", "syn-sent", "dst", self.dst],
                                 capture_output=True, text=True).stdout
            now = time.monotonic()
            socks = [line.split()[-2] for line in out.splitlines() if line.strip()]
            self.most = max(self.most, len(socks))
            for s in socks:
                self.first.setdefault(s, now)
                self.last[s] = now
            time.sleep(0.05)

    def stop(self):
        self.stopping.set()
        self.thread.join(5)

    def longest(self):
        return max((self.last[s] - self.first[s] for s in self.first), default=0.0)


class ManyBindings(SinkSuite):
    NAME = "many"
    SCRIPT = SCRIPT
    DNS_EXTRA = ["--mx-host=wide.test,mx.wide.test,10", "--host-record=mx.wide.test,127.0.0.20"]
    SINK = SmallBacklogSink

    @classmethod
    def daemon_config(cls):
        bindings = "\n".join(f'  binding "b{i}" {{ Bind_Address = {source(i)} }}'
                             for i in range(BINDINGS))
        return f"""
Resolv_Conf = "{cls.dns.resolv}"
Relay_Hosts = ( 127.0.0.1 )
Retry_Interval = 1
Idle_Timeout = 2
domain "wide.test" {{ Remote_SMTP_Port = {cls.sink.port} }}
binding_group "many" {{
  Suspend_Delivery = true
{bindings}
}}
Control_Listener {{ Listen "{cls.tmp}/bindery.sock" {{ }} }}
scriptlet "scriptlet" {{
  script "assign" {{ source = "assign.lua" }}
}}
ESMTP_Listener {{
  Listen "127.0.0.1:0" {{ }}
}}
"""

    def test_a_thousand_bindings_never_leave_a_connect_waiting_a_second(self):
        def send(part):
            with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
                s.ehlo("client.test")
                for i in range(part, MESSAGES, 4):
                    msg = (f"From: s@origin.test\r\nTo: r{i}@wide.test\r\n"
                           f"X-Binding: b{i % BINDINGS}\r\nSubject: many\r\n\r\nhello\r\n")
                    s.sendmail("s@origin.test", [f"r{i}@wide.test"], msg)

        senders = [threading.Thread(target=send, args=(p,)) for p in range(4)]
        for t in senders:
            t.start()
        for t in senders:
            t.join(120)
        self.assertEqual(self.sink.got, [], "held by suspend_delivery")
        drops = listen_drops()
        syn = SynSent(f"127.0.0.20:{self.sink.port}")
        began = time.monotonic()
        subprocess.run([os.environ["BINDERY_BIN"], "console", "-s",
                        os.path.join(self.tmp, "bindery.sock"), "config", "set",
                        "binding_group", "many", "suspend_delivery", "false"],
                       check=True, capture_output=True, timeout=30)
        self.sink.wait(MESSAGES, timeout=120)
        took = time.monotonic() - began
        syn.stop()
        dropped = listen_drops() - drops
        got = self.sink.got
        print(f"\n{BINDINGS} bindings, {MESSAGES} messages: {len(got)} delivered in {took:.1f} s; "
              f"{len(syn.first)} sockets seen in SYN-SENT (at most {syn.most} at once), "
              f"longest {syn.longest():.2f} s; ListenDrops +{dropped}", file=sys.stderr)
        self.assertEqual(len(got), MESSAGES, self.d.stderr_text()[-2000:])
        self.assertEqual(len({m["peer"] for m in got}), BINDINGS, "every binding sent as itself")
        self.assertLess(syn.longest(), 1.0, "a connect waited for the kernel's SYN retry")
        self.assertEqual(self.d.records("transient"), [], "no deferral")


if __name__ == "__main__":
    unittest.main(verbosity=2)
