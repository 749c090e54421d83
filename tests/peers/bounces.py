#!/usr/bin/env python3
"""Bounce classification end to end (issue 22): an aiosmtpd sink answers like providers,
and every failure's class reaches the JSON mainlog, the bouncelog, `/metrics` (checked by
promtool), the console and Lua's `msys.bounce`.

The sink acts on the recipient's local part: `unknown` gets Gmail's 550 5.1.1, `full`
Gmail's 552 5.2.2 over quota, `tss` Yahoo's 421 [TSS04], `rude` a 550 only the
`bounce_classifier_override` file classifies (custom class 99); anything else is accepted.
"""

import base64
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


OOB_SCRIPT = r"""
require("msys.core")
require("msys.bounce")
local mod = {}
function mod:validate_data_spool(msg, accept, vctx)
  local to = msg:header("To")
  if #to > 0 and string.find(to[1], "pass.bounces.test", 1, true) then
    local code, symbol, description, rcpt = msys.bounce.classify(msg)
    msg:header("X-OOB-Class", code .. " " .. symbol .. " " .. rcpt)
  end
  return msys.core.VALIDATE_CONT
end
msys.registerModule("oob", mod)
"""


def dsn(bounce_to, rcpt, returned_headers, status="5.1.1",
        diagnostic="550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
        with_status_part=True):
    """A DSN as Postfix writes one, returning the original's headers."""
    diag = diagnostic.format(rcpt=rcpt)
    parts = [
        "Content-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message "
        "could not be delivered to one or more recipients.\r\n",
    ]
    if with_status_part:
        parts.append(
            "Content-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.remote.test\r\n\r\n"
            f"Final-Recipient: rfc822; {rcpt}\r\nOriginal-Recipient: rfc822;{rcpt}\r\n"
            f"Action: failed\r\nStatus: {status}\r\nRemote-MTA: dns; mx.remote.test\r\n"
            f"Diagnostic-Code: smtp; {diag}\r\n")
    parts.append("Content-Type: text/rfc822-headers\r\n\r\n" + returned_headers)
    body = "".join(f"--b\r\n{p}" for p in parts) + "--b--\r\n"
    return ("From: MAILER-DAEMON@mx.remote.test (Mail Delivery System)\r\n"
            f"To: {bounce_to}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <dsn-1@mx.remote.test>\r\n"
            "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n"
            "\r\n" + body)


def arf(fbl_to, rcpt, returned=None):
    """An ARF report (RFC 5965) as a provider sends one, the original attached."""
    parts = [
        "Content-Type: text/plain\r\n\r\nThis is an email abuse report for an email message "
        "received from IP 127.0.0.2.\r\n",
        "Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
        "User-Agent: ProviderFBL/1.0\r\nVersion: 1\r\n"
        "Original-Mail-From: <app@origin.test>\r\n"
        f"Original-Rcpt-To: <{rcpt}>\r\nSource-IP: 127.0.0.2\r\n"
        "Arrival-Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n",
    ]
    if returned is not None:
        parts.append("Content-Type: message/rfc822\r\n\r\n" + returned)
    body = "".join(f"--p\r\n{p}" for p in parts) + "--p--\r\n"
    return ("From: feedback@provider.test\r\n"
            f"To: {fbl_to}\r\nSubject: complaint about message from 127.0.0.2\r\n"
            "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <arf-1@provider.test>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=feedback-report; boundary=\"p\"\r\n"
            "\r\n" + body)


SISIMAI_MAKE = r"""
use strict; use warnings; use Sisimai;
my $v = Sisimai->make($ARGV[0], 'input' => 'email') || [];
for my $e (@$v) { print join("\t", $e->reason, $e->recipient->address, $e->feedbacktype // ''), "\n"; }
"""


class OutOfBand(SinkSuite):
    """Bounces and complaints that come back as mail: bindery marks what it sends (X-MSFBL),
    and a DSN and an ARF report about that message are matched to it, logged and dropped."""

    NAME = "oob"
    SCRIPT = OOB_SCRIPT
    SCRIPT_FILE = "oob.lua"
    SINK = ScriptedSink

    @classmethod
    def prepare(cls):
        cls.bouncelog = os.path.join(cls.tmp, "bouncelog.ec")
        cls.fbllog = os.path.join(cls.tmp, "fbllog.ec")

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
scriptlet "scriptlet" {{ script "oob" {{ source = "oob" }} }}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
HTTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
bounce_logger "bounce_logger" {{ bouncelog = "{cls.bouncelog}" }}
Bounce_Domains = ( "bounces.test" "pass.bounces.test" )
Bounce_Pattern = "^bounces-"
Bounce_Behavior = "blackhole"
Bounce_Suppress_List = "postmaster@bounces.test,@remote.test"
fbl {{
  Addresses = ( "^fbl@fbl\\.test$" )
  Auto_Log = true
  Log_Path = "{cls.fbllog}"
}}
Enable_FBL_Header_Insertion = true
domain "pass.bounces.test" {{
  Bounce_Behavior = "pass"
  Gateway = "127.0.0.20:{cls.sink.port}"
}}
"""

    @classmethod
    def started(cls):
        cls.http = cls.d.wait_log(r"listening \(HTTP\).*?addr=(127\.0\.0\.1:\d+)")
        with smtplib.SMTP("127.0.0.1", cls.d.port, timeout=20) as s:
            s.sendmail("bounces-7@bounces.test", ["ok@one.test"],
                       "From: app@origin.test\r\nTo: ok@one.test\r\nSubject: original\r\n"
                       "Message-ID: <orig-7@origin.test>\r\n\r\nHello.\r\n")
        got = cls.sink.wait(1)
        cls.original = [m for m in got if "ok@one.test" in m["rcpts"]][0]
        head = cls.original["data"].split(b"\r\n\r\n", 1)[0].decode()
        cls.returned_headers = head + "\r\n"
        cls.original_id = re.search(r"\(Bindery\) with \S+ id (\S+)", head).group(1)

    def send(self, rcpt, text, sender=""):
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=20) as s:
            s.sendmail(sender, [rcpt], text)
        path = os.path.join(self.tmp, f"sent-{rcpt}.eml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def records(self, kind, where, count=1, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = [r for r in self.d.records(kind) if where(r)]
            if len(got) >= count:
                return got
            time.sleep(0.05)
        self.fail(f"no {kind} record: {self.d.records()[-5:]}")

    def sisimai(self, path):
        p = subprocess.run(["perl", "-e", SISIMAI_MAKE, path], capture_output=True, text=True,
                           check=True)
        return [l.split("\t") for l in p.stdout.splitlines()]

    def test_1_sent_mail_carries_the_fbl_mark(self):
        mark = re.search(rb"X-MSFBL: (\S+)", self.original["data"])
        self.assertIsNotNone(mark, self.original["data"][:500])
        self.assertEqual(base64.b64decode(mark.group(1)), b"ok@one.test@default@default@")

    def test_2_a_dsn_is_matched_logged_classified_and_dropped(self):
        path = self.send("bounces-7@bounces.test", dsn("bounces-7@bounces.test", "ok@one.test",
                                                       self.returned_headers))
        rec = self.records("oob_bounce", lambda r: r["bounce_address"] == "bounces-7@bounces.test")[0]
        self.assertEqual(rec["original_id"], self.original_id)
        self.assertEqual(rec["original_message_id"], "orig-7@origin.test")
        self.assertEqual(rec["rcpt"], "ok@one.test")
        self.assertEqual(rec["bounce_class"], 10)
        self.assertEqual((rec["binding"], rec["binding_group"]), ("default", "default"),
                         "from the mark in the returned headers")
        self.assertEqual(rec["report"], "dsn")
        # The bouncelog: a B line at stage 21 under the original's id.
        deadline = time.time() + 10
        b = []
        while time.time() < deadline and not b:
            with open(self.bouncelog) as f:
                b = [l.rstrip("\n").split("@") for l in f if "@B@" in l and "@21@" in l]
            time.sleep(0.05)
        self.assertTrue(b)
        f = b[0]
        self.assertEqual((f[1], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12]),
                         (self.original_id, "ok", "one.test", "bounces-7", "bounces.test",
                          "default", "default", "21", "10"), f)
        # Sisimai reads the same DSN, and agrees.
        got = self.sisimai(path)
        self.assertEqual([g[:2] for g in got], [["userunknown", "ok@one.test"]], got)
        # Blackholed: nothing spooled for the bounce address.
        self.assertFalse([m for m in self.sink.got if "bounces-7@bounces.test" in m["rcpts"]])

    def test_3_an_arf_report_is_logged_as_feedback(self):
        path = self.send("fbl@fbl.test", arf("fbl@fbl.test", "ok@one.test",
                                             self.returned_headers + "\r\nHello.\r\n"))
        rec = self.records("feedback", lambda r: r["fbl_address"] == "fbl@fbl.test")[0]
        self.assertEqual((rec["original_id"], rec["rcpt"], rec["feedback_type"], rec["binding"]),
                         (self.original_id, "ok@one.test", "abuse", "default"))
        deadline = time.time() + 10
        lines = []
        while time.time() < deadline and not lines:
            if os.path.exists(self.fbllog):
                with open(self.fbllog) as f:
                    lines = [l.rstrip("\n").split("@") for l in f]
            time.sleep(0.05)
        self.assertEqual(lines[0][1:], [self.original_id, "F", "ok", "one.test", "default",
                                        "default", "abuse", "fbl.test", ""], lines)
        got = self.sisimai(path)
        self.assertEqual(got[0][0], "feedback", got)
        self.assertEqual(got[0][2], "abuse", got)
        with urllib.request.urlopen(f"http://{self.http}/metrics", timeout=10) as r:
            text = r.read().decode()
        self.assertRegex(text, r'bindery_feedback_reports_total\{binding="default",'
                         r'domain="one.test",type="abuse"\} 1')

    def test_4_bad_reports_are_logged_refusals(self):
        # A DSN without its status part: read as an MDN, the reason in the log and record.
        self.send("bounces-8@bounces.test", dsn("bounces-8@bounces.test", "ok@one.test",
                                                self.returned_headers, with_status_part=False))
        rec = self.records("oob_bounce", lambda r: r["bounce_address"] == "bounces-8@bounces.test")[0]
        self.assertIn("without its delivery-status part", rec["malformed"])
        self.assertEqual(rec["report"], "mdn")
        self.assertEqual(rec["original_id"], self.original_id)
        self.assertEqual(rec["rcpt"], "ok@one.test", "from the mark, not the suppressed remote.test")
        # An ARF report with no original attached.
        self.send("fbl@fbl.test", arf("fbl@fbl.test", "lost@one.test"))
        rec = self.records("feedback", lambda r: r["rcpt"] == "lost@one.test")[0]
        self.assertEqual((rec["original_id"], rec["binding"]), ("", ""))
        self.d.wait_log(r"(feedback report without its original message)")
        self.d.wait_log(r"(malformed report read as an MDN)")

    def test_5_pass_delivers_and_lua_classifies(self):
        self.send("bounces-9@pass.bounces.test",
                  dsn("bounces-9@pass.bounces.test", "full@one.test", self.returned_headers,
                      status="5.2.2", diagnostic="552 5.2.2 <{rcpt}>: Mailbox full"))
        rec = self.records("oob_bounce", lambda r: r["bounce_address"] == "bounces-9@pass.bounces.test")[0]
        self.assertEqual(rec["bounce_class"], 22)
        deadline = time.time() + 20
        got = []
        while time.time() < deadline and not got:
            got = [m for m in self.sink.got if "bounces-9@pass.bounces.test" in m["rcpts"]]
            time.sleep(0.05)
        self.assertTrue(got, "Bounce_Behavior = pass: the report goes on")
        self.assertIn(b"X-OOB-Class: 22 BC_SOFT_MAILBOX_FULL full@one.test", got[0]["data"])


if __name__ == "__main__":
    unittest.main()
