#!/usr/bin/env python3
"""Bounce classification end to end (issue 22): an aiosmtpd sink answers like providers,
and every failure's class reaches the JSON mainlog, the bouncelog, `/metrics` (checked by
promtool), the console and Lua's `msys.bounce`.

The sink acts on the recipient's local part: `unknown` gets Gmail's 550 5.1.1, `full`
Gmail's 552 5.2.2 over quota, `tss` Yahoo's 421 [TSS04], `rude` a 550 only the
`bounce_classifier_override` file classifies (custom class 99); anything else is accepted.
"""

import json
import os
import re
import smtplib
import subprocess
import time
import unittest
import urllib.request

from common import BIN
from deliver import Handler, Sink, SinkSuite, relay_to_sink

REPLIES = {
    "unknown": "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address",
    "full": "552 5.2.2 The email account that you tried to reach is over quota.",
    "tss": "421 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected volume or user complaints",
    "rude": "550 5.7.1 a rude little word",
}

SCRIPT = r"""
require("msys.core")
require("msys.bounce")
local mod = {}
function mod:validate_data_spool(msg, accept, vctx)
  local r = msg:header("X-Reply")
  if #r > 0 then
    local code, symbol, description = msys.bounce.classify_smtp_response(r[1], "one.test")
    msg:header("X-Class", code .. " " .. symbol .. " " .. description)
  end
  return msys.core.VALIDATE_CONT
end
msys.registerModule("classify", mod)
"""


class Scripted(Handler):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = REPLIES.get(address.split("@")[0])
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


class ScriptedSink(Sink):
    def __init__(self, ip):
        super().__init__(ip)
        self.handler = Scripted(self)


class BounceClasses(SinkSuite):
    NAME = "bounces"
    SCRIPT = SCRIPT
    SCRIPT_FILE = "classify.lua"
    SINK = ScriptedSink

    @classmethod
    def prepare(cls):
        cls.ovr = os.path.join(cls.tmp, "user_smtp_classification.ovr")
        with open(cls.ovr, "w") as f:
            f.write("# domain,bounce_code,rule\n,99,rude|word\n")
        cls.sock = os.path.join(cls.tmp, "bindery.sock")
        cls.bouncelog = os.path.join(cls.tmp, "bouncelog.ec")

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
scriptlet "scriptlet" {{ script "classify" {{ source = "classify" }} }}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
Control_Listener {{ Listen "{cls.sock}" {{ }} }}
HTTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
bounce_logger "bounce_logger" {{ bouncelog = "{cls.bouncelog}" }}
bounce_classifier_override {{
  user_smtp_classification_override = "{cls.ovr}"
  refresh = 3600
  custom_classes = [ 99 = "profanity" ]
}}
"""

    @classmethod
    def started(cls):
        cls.http = cls.d.wait_log(r"listening \(HTTP\).*?addr=(127\.0\.0\.1:\d+)")
        with smtplib.SMTP("127.0.0.1", cls.d.port, timeout=20) as s:
            for local in ["unknown", "full", "tss", "rude"]:
                s.sendmail("app@origin.test", [f"{local}@one.test"],
                           f"From: app@origin.test\r\nTo: {local}@one.test\r\n"
                           f"Subject: {local}\r\n\r\nHello.\r\n")
            s.sendmail("app@origin.test", ["ok@one.test"],
                       "From: app@origin.test\r\nTo: ok@one.test\r\nSubject: ok\r\n"
                       "X-Reply: 452 4.2.2 The email account that you tried to reach is over quota\r\n"
                       "\r\nHello.\r\n")

    def console(self, *words, json_out=False):
        args = [BIN, "console", "-s", self.sock] + (["--json"] if json_out else [])
        r = subprocess.run(args + list(words), capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def record(self, kind, rcpt):
        deadline = time.time() + 20
        while time.time() < deadline:
            got = [r for r in self.d.records(kind) if r["rcpt"] == rcpt]
            if got:
                return got[0]
            time.sleep(0.05)
        self.fail(f"no {kind} record for {rcpt}: {self.d.records()[-5:]}")

    def test_1_each_failure_is_classified_in_the_mainlog_and_bouncelog(self):
        self.assertEqual(self.record("permanent", "unknown@one.test")["bounce_class"], 10)
        self.assertEqual(self.record("permanent", "full@one.test")["bounce_class"], 22)
        self.assertEqual(self.record("transient", "tss@one.test")["bounce_class"], 51)
        self.assertEqual(self.record("permanent", "rude@one.test")["bounce_class"], 99,
                         "the override file's custom class")
        deadline = time.time() + 10
        while time.time() < deadline:
            with open(self.bouncelog) as f:
                b = [l.rstrip("\n").split("@") for l in f if "@B@" in l]
            if len(b) >= 3:
                break
            time.sleep(0.05)
        classes = {(f[5], f[12]) for f in b}
        self.assertTrue({("unknown", "10"), ("full", "22"), ("rude", "99")} <= classes, b)

    def test_2_lua_classifies_with_msys_bounce(self):
        got = self.sink.wait(1)
        msg = [m for m in got if "ok@one.test" in m["rcpts"]]
        self.assertTrue(msg, got)
        self.assertIn(b"X-Class: 22 BC_SOFT_MAILBOX_FULL The message bounced due to the remote "
                      b"mailbox being over quota.", msg[0]["data"])

    def test_3_metrics_count_per_binding_domain_and_class(self):
        self.record("permanent", "rude@one.test")
        self.record("transient", "tss@one.test")
        with urllib.request.urlopen(f"http://{self.http}/metrics", timeout=10) as r:
            text = r.read().decode()
        for cls, kind in [("10", "permanent"), ("22", "permanent"), ("51", "transient"),
                          ("99", "permanent")]:
            self.assertRegex(text, r'bindery_bounces_total\{binding="default",domain="one.test",'
                             rf'class="{cls}",kind="{kind}"\}} [1-9]')
        p = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_4_console_tests_a_reply_and_reloads_the_overrides(self):
        out = self.console("bounce_classifier_override", "test", "550", "5.7.1", "a", "rude",
                           "little", "word")
        self.assertTrue(out.startswith("99 profanity (BC_CUSTOM)"), out)
        self.assertIn("user_smtp_classification.ovr:2", out)
        out = self.console("bounce_classifier_override", "test", "421 4.7.0 [TSS04] deferred")
        self.assertTrue(out.startswith("51 Spam Block (BC_SPAM_BLOCK)"), out)
        self.assertIn("shipped.rules:", out)
        # A new rule is taken at `reload`, without a restart; a broken file is refused and
        # the rules in force stay.
        with open(self.ovr, "w") as f:
            f.write(",54,rude little word\n")
        out = self.console("bounce_classifier_override", "reload")
        self.assertIn("1 for every domain", out)
        out = json.loads(self.console("bounce_classifier_override", "test",
                                      "550 a rude little word", json_out=True))
        self.assertEqual(out["code"], 54, out)
        with open(self.ovr, "w") as f:
            f.write(",77,unknown class\n")
        r = subprocess.run([BIN, "console", "-s", self.sock, "bounce_classifier_override",
                            "reload"], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("user_smtp_classification.ovr:1:2", r.stdout + r.stderr)
        out = json.loads(self.console("bounce_classifier_override", "test",
                                      "550 a rude little word", json_out=True))
        self.assertEqual(out["code"], 54, "the rules in force stay")


if __name__ == "__main__":
    unittest.main()
