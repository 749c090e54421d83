#!/usr/bin/env python3
"""Lua policy end to end: one daemon, several bindings, a script assigning each message;
an aiosmtpd sink on 127.0.0.20 sees which source address every message came from.

Run by `cargo test` (crates/bindery/tests/peers.rs) with BINDERY_BIN set. Reuses the DNS
(dnsmasq) and sink helpers of deliver.py.

Bindings (source address, EHLO):
  default        127.0.0.9  default.bindery.test   messages no rule matched
  b2             127.0.0.2  two.bindery.test       X-Binding: b2
  b3             127.0.0.3  three.bindery.test     sender domain three.test
  pool: p4, p5   127.0.0.4, 127.0.0.5              sender domain bulk.test (binding group)
  pool: p6       127.0.0.6  suspended              never chosen while p4/p5 are up
"""

import smtplib
import time
import unittest

from deliver import SinkSuite, relay_to_sink

SCRIPT = r"""
require("msys.core")
require("msys.extended.message")

local mod = {}

local function domain_of(address)
  return string.lower(string.match(address or "", "@([^@]+)$") or "")
end

function mod:validate_rcptto(msg, rcpt, accept, vctx)
  local lp = string.match(rcpt, "^([^@]+)")
  if lp == "blocked" then
    vctx:set_code(550, "5.7.1 recipient blocked by policy")
  elseif lp == "crash" then
    error("deliberate failure for " .. rcpt)
  elseif lp == "loop" then
    while true do end
  end
  return msys.core.VALIDATE_CONT
end

function mod:validate_set_binding(msg)
  -- The seed's pattern: the general binding first, specific ones in the if blocks.
  local binding = "default"
  local named = msg:header("X-Binding")
  if #named > 0 then
    binding = named[1]
  elseif domain_of(msg:mailfrom()) == "three.test" then
    binding = "b3"
  elseif domain_of(msg:mailfrom()) == "bulk.test" then
    msg:binding_group("pool")
    return msys.core.VALIDATE_DONE
  elseif domain_of(msg:mailfrom()) == "broken.test" then
    msg:binding("b2")
    local t = nil
    return t.nothing
  end
  msg:binding(binding)
  return msys.core.VALIDATE_CONT
end

msys.registerModule("assign", mod)
"""


def config(dns, sink, script):
    return relay_to_sink(dns, sink) + f"""
binding "default" {{ Bind_Address = 127.0.0.9 EHLO_Hostname = "default.bindery.test" }}
binding "b2" {{ Bind_Address = 127.0.0.2 EHLO_Hostname = "two.bindery.test" }}
binding "b3" {{ Bind_Address = 127.0.0.3 EHLO_Hostname = "three.bindery.test" }}
binding_group "pool" {{
  binding "p4" {{ Bind_Address = 127.0.0.4 EHLO_Hostname = "four.bindery.test" }}
  binding "p5" {{ Bind_Address = 127.0.0.5 EHLO_Hostname = "five.bindery.test" }}
  binding "p6" {{ Bind_Address = 127.0.0.6 Suspend_Delivery = true }}
}}
scriptlet "scriptlet" {{
  Instruction_Limit = 200000
  script "assign" {{ source = "{script}" }}
}}
ESMTP_Listener {{
  Listen "127.0.0.1:0" {{ }}
}}
"""


def message(sender, rcpt, extra=""):
    return (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: policy test\r\n{extra}\r\nHello.\r\n")


class Policy(SinkSuite):
    NAME = "policy"
    SCRIPT = SCRIPT  # `source = "assign"`: no `.lua`, relative to the configuration file

    @classmethod
    def daemon_config(cls):
        return config(cls.dns, cls.sink, "assign")

    def send(self, sender, rcpt, extra=""):
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail(sender)
            code, text = s.rcpt(rcpt)
            self.assertEqual(code, 250, text)
            code, text = s.data(message(sender, rcpt, extra))
            self.assertEqual(code, 250, text)

    def reception(self, rcpt):
        recs = [r for r in self.d.records("reception") if rcpt in r["recipients"]]
        self.assertEqual(len(recs), 1, recs)
        return recs[0]

    def test_header_sender_domain_and_default(self):
        cases = [
            ("app@origin.test", "hdr@one.test", "X-Binding: b2\r\n", "b2", "127.0.0.2", "two.bindery.test"),
            ("news@three.test", "dom@one.test", "", "b3", "127.0.0.3", "three.bindery.test"),
            ("plain@origin.test", "nomatch@one.test", "", "default", "127.0.0.9", "default.bindery.test"),
            # An unknown name: msg:binding returns nil and the message stays on default.
            ("app@origin.test", "unknown@one.test", "X-Binding: nosuch\r\n", "default", "127.0.0.9", "default.bindery.test"),
        ]
        for sender, rcpt, extra, *_ in cases:
            self.send(sender, rcpt, extra)
        for sender, rcpt, extra, binding, ip, ehlo in cases:
            m = self.arrived(rcpt)
            self.assertEqual((m["peer"], m["ehlo"]), (ip, ehlo), rcpt)
            r = self.reception(rcpt)
            self.assertEqual((r["binding_group"], r["binding"]), ("default", binding), rcpt)

    def test_binding_group_prefers_unsuspended_bindings(self):
        rcpts = [f"bulk{i}@one.test" for i in range(8)]
        for r in rcpts:
            self.send("promo@bulk.test", r)
        for r in rcpts:
            m = self.arrived(r)
            self.assertIn(m["peer"], ("127.0.0.4", "127.0.0.5"), r)
            rec = self.reception(r)
            self.assertEqual(rec["binding_group"], "pool")
            self.assertIn(rec["binding"], ("p4", "p5"), "p6 is suspended")

    def test_rcpt_refusal_and_script_errors(self):
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail("someone@origin.test")
            code, text = s.rcpt("blocked@one.test")
            self.assertEqual((code, text), (550, b"5.7.1 recipient blocked by policy"))
            code, text = s.rcpt("crash@one.test")
            self.assertEqual(code, 451, text)
            code, text = s.rcpt("loop@one.test")
            self.assertEqual(code, 451, text)
            # The session lives on: a good recipient still goes through.
            code, text = s.rcpt("fine@one.test")
            self.assertEqual(code, 250, text)
            code, text = s.data(message("someone@origin.test", "fine@one.test"))
            self.assertEqual(code, 250, text)
        self.assertEqual(self.arrived("fine@one.test")["peer"], "127.0.0.9")
        log = self.d.stderr_text()
        self.assertIn("assign.lua:16: deliberate failure for crash@one.test", log)
        self.assertIn("script stopped: it ran past its budget of 200000 instructions", log)

    def test_a_bounce_names_the_binding_and_address_that_failed(self):
        """A 550 to mail on b2: the bounce record names b2 and its source address, while the
        bounce itself is queued on the default binding."""
        self.send("app@origin.test", "reject-b2@one.test", "X-Binding: b2\r\n")
        bounces = lambda: [r for r in self.d.records("bounce")
                           if r["rcpts"] == ["reject-b2@one.test"]]
        self.wait_until(bounces, 20, f"no bounce record: {self.d.records()}")
        b = bounces()
        self.assertEqual(len(b), 1, self.d.records())
        b = b[0]
        self.assertEqual((b["binding_group"], b["binding"], b["report_binding"]),
                         ("default", "b2", "default"))
        self.assertEqual((b["source_ip"], b["remote_host"], b["remote_ip"]),
                         ("127.0.0.2", "mx.one.test", "127.0.0.20"))
        self.assertTrue(b["replies"][0].startswith("550 5.1.1"), b)

    def test_error_in_set_binding_keeps_the_binding_and_accepts(self):
        self.send("x@broken.test", "broken@one.test")
        m = self.arrived("broken@one.test")
        # The script set b2 before failing: the message keeps it.
        self.assertEqual(m["peer"], "127.0.0.2")
        # Lua 5.1's wording (Momentum's Lua), with the script's line.
        self.assertIn("assign.lua:37: attempt to index local 't' (a nil value)", self.d.stderr_text())


BAD = r"""
local mod = {}
function mod:validate_connect(ac, vctx)
  if ac:peer() == "127.0.0.7" then error("connect fails for " .. ac:peer()) end
  return msys.core.VALIDATE_CONT
end
function mod:validate_ehlo(str, ac, vctx)
  if str == "crash.test" then error("ehlo fails") end
  return msys.core.VALIDATE_CONT
end
function mod:validate_mailfrom(str, ac, vctx)
  if string.find(tostring(str), "^alloc@") then
    local t = {}
    while true do t[#t + 1] = string.rep("x", 1000000) .. #t end
  end
  return msys.core.VALIDATE_CONT
end
function mod:validate_rcptto(msg, str, ac, vctx)
  if string.find(tostring(str), "^missing@") then msys.no_such_function(str) end
  return msys.core.VALIDATE_CONT
end
function mod:validate_data(msg, ac, vctx)
  if #msg:header("X-Bad") > 0 then msg:header("X-Set", true) end
  return msys.core.VALIDATE_CONT
end
msys.registerModule("bad", mod)
"""


class BadScripts(SinkSuite):
    """Scripts that go wrong in every phase, through the daemon: each session gets a 4xx
    (421 at the greeting), the error in the log names the script's line, and the daemon goes
    on serving: a script that raises at connect or EHLO, allocates without bound at MAIL (the
    64 MB limit), calls a function that does not exist at RCPT, or gives msg:header a boolean
    at DATA."""

    NAME = "bad-scripts"
    SCRIPT = BAD
    SCRIPT_FILE = "bad.lua"
    # A callout that allocates 64 MB takes a while.
    SESSION_TIMEOUT = 20

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
Relay_Hosts = ( 127.0.0.0/8 )
scriptlet "scriptlet" {{
  script "bad" {{ source = "bad" }}
}}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
"""


    def assert_logged(self, text):
        self.wait_until(lambda: text in self.d.stderr_text(), 10, f"{text!r} not in the log")

    def test_every_phase_fails_soft_and_the_daemon_lives(self):
        with self.assertRaises(smtplib.SMTPConnectError) as e:
            self.session("127.0.0.7")
        self.assertEqual(e.exception.smtp_code, 421)
        self.assert_logged("bad.lua:4: connect fails for 127.0.0.7")
        with self.session() as s:
            code, _ = s.ehlo("crash.test")
            self.assertEqual(code, 451)
            self.assertEqual(s.ehlo("client.test")[0], 250)
            code, _ = s.mail("alloc@origin.test")
            self.assertEqual(code, 451)
            self.assertEqual(s.mail("someone@origin.test")[0], 250)
            code, _ = s.rcpt("missing@one.test")
            self.assertEqual(code, 451)
            self.assertEqual(s.rcpt("fine@one.test")[0], 250)
            code, _ = s.data(b"From: a@origin.test\r\nX-Bad: 1\r\nSubject: bad\r\n\r\nHi.\r\n")
            self.assertEqual(code, 451)
        log = self.d.stderr_text()
        self.assertIn("bad.lua:8: ehlo fails", log)
        self.assertRegex(log, r"bad\.lua:1[1-4]: out of memory")
        self.assertIn("bad.lua:19: attempt to call field 'no_such_function' (a nil value)", log)
        self.assertIn("msg:header: a header value must be a string, got boolean", log)
        # Still serving, and memory was given back.
        with self.session() as s:
            s.sendmail("someone@origin.test", ["after@one.test"],
                       b"From: someone@origin.test\r\nSubject: after\r\n\r\nStill here.\r\n")
        self.arrived("after@one.test")


if __name__ == "__main__":
    unittest.main(verbosity=2)
