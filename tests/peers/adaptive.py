#!/usr/bin/env python3
"""Adaptive delivery end to end (issue 22): an aiosmtpd sink answers binding b1's mail to
one.test with Yahoo's `421 4.7.0 [TSS04]` while `storm` is on; a response rule registered
from Lua with `msys.adaptive.registerRules` (trigger 2 per 60 s, suspend 1 hour) must
suspend exactly b1::one.test, while b1's other domain and the group's other binding keep
sending. The console shows the suspension in Momentum's layout, a restart keeps it (the
book is kept beside the spool), the held mail is not retried while it runs, and
`adaptive override` lifts it: the mail then goes.

b1 sends from 127.0.0.2 and b2 from 127.0.0.3 (loopback addresses that need no setup);
the policy assigns the binding named in the message's X-Binding header.
"""

import json
import os
import subprocess
import time
import unittest

from common import BIN, Daemon
from deliver import ASSIGN_BY_HEADER, Handler, Sink, SinkSuite, relay_to_sink

TSS04 = "421 4.7.0 [TSS04] Messages from 127.0.0.2 temporarily deferred due to unexpected volume or user complaints"

SCRIPT = r"""
require("msys.core")
require("msys.adaptive")
msys.adaptive.registerRules({
  ["one.test"] = {
    responses = {
      { code = "\\[TSS04\\]", trigger = "2/60", action = {"suspend", "1 hour"},
        message = "Yahoo asks us to slow down" },
    },
  },
  ["alias.test"] = "one.test",
}, "augment")
""" + ASSIGN_BY_HEADER


class Storm(Handler):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.sink.tries.append((session.peer[0], address))
        if self.sink.storm and session.peer[0] == "127.0.0.2" and address.endswith("@one.test"):
            return TSS04
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


class StormSink(Sink):
    def __init__(self, ip):
        super().__init__(ip)
        self.storm = True
        self.tries = []
        self.handler = Storm(self)


class Adaptive(SinkSuite):
    NAME = "adaptive"
    SCRIPT = SCRIPT
    SCRIPT_FILE = "adaptive.lua"
    SINK = StormSink
    DNS_EXTRA = ("--mx-host=two.test,mx.one.test,10",)

    @classmethod
    def prepare(cls):
        cls.sock = os.path.join(cls.tmp, "bindery.sock")

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
domain "two.test" {{ Remote_SMTP_Port = {cls.sink.port} }}
adaptive_enabled = true
adaptive {{ suspend_sweep_interval = 1  bounce_sweep_interval = 0 }}
binding_group "g" {{
  binding "b1" {{ Bind_Address = 127.0.0.2 }}
  binding "b2" {{ Bind_Address = 127.0.0.3 }}
}}
scriptlet "scriptlet" {{ script "adaptive" {{ source = "adaptive" }} }}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
Control_Listener {{ Listen "{cls.sock}" {{ }} }}
"""

    def console(self, *words, json_out=False):
        args = [BIN, "console", "-s", self.sock] + (["--json"] if json_out else [])
        r = subprocess.run(args + list(words), capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def send(self, binding, rcpt):
        with self.session() as s:
            s.sendmail("app@origin.test", [rcpt],
                       f"From: app@origin.test\r\nTo: {rcpt}\r\nX-Binding: {binding}\r\n"
                       f"Subject: to {rcpt}\r\n\r\nHello.\r\n")

    def tries_from_b1(self):
        return [t for t in self.sink.tries if t == ("127.0.0.2", t[1]) and t[1].endswith("@one.test")]

    def test_1_a_storm_suspends_exactly_that_binding_and_domain(self):
        for i in range(4):
            self.send("b1", f"storm{i}@one.test")
        self.wait_until(lambda: self.d.records("adaptive"), 30, "no adaptive record")
        rec = self.d.records("adaptive")[0]
        self.assertEqual((rec["binding"], rec["domain"]), ("b1", "one.test"))
        self.assertIn("suspended", rec["action"])
        self.assertIn("[TSS04]", rec["reply"])
        # The other domain of b1, and the other binding of the group, keep sending.
        self.send("b1", "fine@two.test")
        self.send("b2", "fine@one.test")
        self.assertEqual(self.arrived("fine@two.test")["peer"], "127.0.0.2")
        self.assertEqual(self.arrived("fine@one.test")["peer"], "127.0.0.3")
        # Held, not retried every second (Retry_Interval is 1 s).
        before = len(self.tries_from_b1())
        time.sleep(4)
        self.assertEqual(len(self.tries_from_b1()), before, "b1::one.test was retried while suspended")

    def test_2_the_console_shows_it_in_momentums_layout(self):
        text = self.console("adaptive", "suspensions")
        self.assertIn("Group/Binding", text)
        line = [l for l in text.splitlines() if "one.test" in l]
        self.assertEqual(len(line), 1, text)
        b, d, ttl, enable = line[0].split()
        self.assertEqual((b, d, enable), ("b1", "one.test", "1"))
        self.assertTrue(3500 < int(ttl) <= 3600, ttl)
        rows = json.loads(self.console("adaptive", "suspensions", "--binding", "b1", json_out=True))
        self.assertEqual(rows[0]["rule"], "one.test#1")
        self.assertEqual(rows[0]["message"], "Yahoo asks us to slow down")
        rules = self.console("adaptive", "rules", "--binding", "b1", "--domain", "alias.test")
        self.assertIn("\\[TSS04\\]", rules)
        self.assertIn("suspend 1 hour", rules)

    def test_3_a_restart_keeps_the_suspension(self):
        state = os.path.join(self.d.spoolbase, "adaptive.state")
        with open(state) as f:
            kept = [json.loads(l) for l in f if l.strip()]
        self.assertEqual([(k["binding"], k["domain"]) for k in kept], [("b1", "one.test")])
        type(self).d.stop()
        type(self).d = Daemon(self.tmp, config=self.daemon_config())
        line = [l for l in self.console("adaptive", "suspensions").splitlines() if "one.test" in l]
        self.assertEqual(line[0].split()[:2], ["b1", "one.test"])
        before = len(self.tries_from_b1())
        time.sleep(3)
        self.assertEqual(len(self.tries_from_b1()), before, "the restarted daemon sent b1::one.test's mail")

    def test_4_override_lifts_it_and_the_mail_goes(self):
        self.sink.storm = False
        self.assertIn("Overrode 1 entries",
                      self.console("adaptive", "override", "--binding", "b1", "--domain", "one.test"))
        line = [l for l in self.console("adaptive", "suspensions").splitlines() if "one.test" in l]
        self.assertEqual(line[0].split()[3], "0", "kept, not enabled")
        for i in range(4):
            self.assertEqual(self.arrived(f"storm{i}@one.test", timeout=30)["peer"], "127.0.0.2")


if __name__ == "__main__":
    unittest.main(verbosity=2)
