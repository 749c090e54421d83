#!/usr/bin/env python3
"""Adaptive delivery end to end (issue 22). `Adaptive`: an aiosmtpd sink answers binding b1's mail to
one.test with Yahoo's `421 4.7.0 [TSS04]` while `storm` is on; a response rule registered
from Lua with `msys.adaptive.registerRules` (trigger 2 per 60 s, suspend 1 hour) must
suspend exactly b1::one.test, while b1's other domain and the group's other binding keep
sending. The console shows the suspension in Momentum's layout, a restart keeps it (the
book is kept beside the spool), the held mail is not retried while it runs, and
`adaptive override` lifts it: the mail then goes. While it holds, `msg:binding_group`
passes over b1 for one.test's mail.

b1 sends from 127.0.0.2 and b2 from 127.0.0.3 (loopback addresses that need no setup);
the policy assigns the binding named in the message's X-Binding header.

`SweepRules`: Momentum's `adaptive_sweep_rule` on a rising rate of spam refusals.
`SystemRules`: Momentum's system rules (Yahoo's [TS03]) with no script of the operator's.
`WarmupPlan`: a binding held to its warm-up plan's daily cap.
"""

import datetime
import json
import os
import subprocess
import time
import unittest
import urllib.request

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


class AdaptiveSuite(SinkSuite):
    """What the suites below share: a console socket, an HTTP listener for /metrics, and
    mail sent on the binding its X-Binding header names. A suite's `daemon_config` ends with
    `cls.listeners()`."""

    @classmethod
    def prepare(cls):
        cls.sock = os.path.join(cls.tmp, "bindery.sock")

    @classmethod
    def listeners(cls):
        return f"""
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
Control_Listener {{ Listen "{cls.sock}" {{ }} }}
HTTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
"""

    @classmethod
    def started(cls):
        cls.http = cls.d.wait_log(r"listening \(HTTP\).*?addr=(127\.0\.0\.1:\d+)")

    def restart(self):
        """Stops the daemon and starts it again on the same folder and configuration."""
        type(self).d.stop()
        type(self).d = Daemon(self.tmp, config=self.daemon_config())
        type(self).started()

    def metrics(self):
        with urllib.request.urlopen(f"http://{self.http}/metrics", timeout=10) as r:
            text = r.read().decode()
        p = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return text.splitlines()

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


class Adaptive(AdaptiveSuite):
    NAME = "adaptive"
    SCRIPT = SCRIPT
    SCRIPT_FILE = "adaptive.lua"
    SINK = StormSink
    DNS_EXTRA = ("--mx-host=two.test,mx.one.test,10",)

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
""" + cls.listeners()

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
        # `bindery adaptive explain`: the rule, the reply, when it lifts, the history.
        r = subprocess.run([BIN, "adaptive", "explain", "-s", self.sock, "b1", "one.test"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Suspended by rule one.test#1", r.stdout)
        self.assertIn("[TSS04]", r.stdout)
        self.assertIn("message: Yahoo asks us to slow down", r.stdout)
        self.assertRegex(r.stdout, r"lifts at \d+ \(in 3[0-9]{3} s\)")
        self.assertRegex(r.stdout, r"one.test#1: suspended for 1 hour after \"421 4.7.0 \[TSS04\]")
        e = json.loads(subprocess.run(
            [BIN, "adaptive", "explain", "--json", "-s", self.sock, "b1", "one.test"],
            capture_output=True, text=True, timeout=30).stdout)
        self.assertEqual(e["explanation"]["suspension"]["rule"], "one.test#1")
        self.assertTrue(e["adaptive_enabled"])
        calm = self.console("adaptive", "explain", "b2", "one.test")
        self.assertIn("Not suspended", calm)
        self.assertIn("no rule has fired", calm)
        m = self.metrics()
        self.assertIn('bindery_adaptive_suspended{binding="b1"} 1.0', m)
        self.assertIn('bindery_adaptive_actions_total{binding="b1",action="suspend"} 1', m)

    def test_3_a_restart_keeps_the_suspension(self):
        state = os.path.join(self.d.spoolbase, "adaptive.state")
        with open(state) as f:
            kept = [json.loads(l) for l in f if l.strip()]
        self.assertEqual([(k["binding"], k["domain"]) for k in kept], [("b1", "one.test")])
        self.restart()
        line = [l for l in self.console("adaptive", "suspensions").splitlines() if "one.test" in l]
        self.assertEqual(line[0].split()[:2], ["b1", "one.test"])
        before = len(self.tries_from_b1())
        time.sleep(3)
        self.assertEqual(len(self.tries_from_b1()), before, "the restarted daemon sent b1::one.test's mail")

    def test_3a_the_group_passes_over_the_suspended_binding(self):
        # msg:binding_group("g") picks at random between b1 and b2; toward one.test b1 is
        # suspended, so every message goes by b2 (by chance alone: 1 in 256), while
        # two.test's mail still goes by both.
        for i in range(8):
            self.send_group(f"group{i}@one.test")
        for i in range(8):
            self.assertEqual(self.arrived(f"group{i}@one.test")["peer"], "127.0.0.3")
        for i in range(12):
            self.send_group(f"group{i}@two.test")
        peers = {self.arrived(f"group{i}@two.test")["peer"] for i in range(12)}
        self.assertEqual(peers, {"127.0.0.2", "127.0.0.3"}, "two.test's mail used one binding only")

    def send_group(self, rcpt):
        with self.session() as s:
            s.sendmail("app@origin.test", [rcpt],
                       f"From: app@origin.test\r\nTo: {rcpt}\r\nX-Binding-Group: g\r\n"
                       f"Subject: to {rcpt}\r\n\r\nHello.\r\n")

    def test_4_override_lifts_it_and_the_mail_goes(self):
        self.sink.storm = False
        self.assertIn("Overrode 1 entries",
                      self.console("adaptive", "override", "--binding", "b1", "--domain", "one.test"))
        line = [l for l in self.console("adaptive", "suspensions").splitlines() if "one.test" in l]
        self.assertEqual(line[0].split()[3], "0", "kept, not enabled")
        m = self.metrics()
        self.assertIn('bindery_adaptive_suspended{binding="b1"} 0.0', m)
        self.assertIn('bindery_adaptive_overridden{binding="b1"} 1.0', m)
        for i in range(4):
            self.assertEqual(self.arrived(f"storm{i}@one.test", timeout=30)["peer"], "127.0.0.2")


class Blocks(Handler):
    """Refuses b1's mail to one.test as spam (bounce class 52) in a pattern: none, one in
    four, or three in four. Any run of k >= 4 consecutive attempts then holds between 14 %
    and 40 % refusals under `quarter`, and at least 60 % under `most`, wherever a sweep cuts."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if session.peer[0] == "127.0.0.2" and address.endswith("@one.test"):
            n = self.sink.seen
            self.sink.seen += 1
            refuse = {"none": False, "quarter": n % 4 == 0, "most": n % 4 != 0}[self.sink.mode]
            if refuse:
                return "550 5.7.1 Message classified as spam"
        if session.peer[0] == "127.0.0.3" and address.endswith("@one.test"):
            self.sink.seen_b2 += 1
            if self.sink.seen_b2 % 2 == 0:
                return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


class BlocksSink(Sink):
    def __init__(self, ip):
        super().__init__(ip)
        self.mode = "none"
        self.seen = 0
        self.seen_b2 = 0
        self.handler = Blocks(self)


class SweepRules(AdaptiveSuite):
    """A sweep rule on a rising spam-refusal rate (issue 22): `blocks` watches bc:52 for b1
    with Momentum's own stanza; the bounce sweep runs every 2 s and needs 4 attempts. No
    refusals: nothing. One in four (over the 10 % low threshold): `throttle down`. Three in
    four (over 50 %): suspended for an hour, and `adaptive rules` shows the rule's
    count/total. b2, without sweep rules, has Momentum's rejection-rate suspension on."""

    NAME = "sweep"
    SCRIPT = ASSIGN_BY_HEADER
    SINK = BlocksSink

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
adaptive_enabled = true
adaptive {{ suspend_sweep_interval = 1  bounce_sweep_interval = 2 }}
adaptive_attempt_threshold = 4
binding "b1" {{
  Bind_Address = 127.0.0.2
  adaptive_sweep_rule "blocks" {{
    codes = ( "bc:52" )
    low_threshold = 10
    low_action = ( "throttle" "down" )
    high_threshold = 50
    high_action = ( "suspend" "1 hour" )
  }}
}}
binding "b2" {{
  Bind_Address = 127.0.0.3
  adaptive_sweep_rule_enabled = false
  adaptive_default_suspension_enabled = true
  adaptive_rejection_rate_suspension_percentage = 30
  adaptive_default_suspension = "2 hours"
}}
scriptlet "scriptlet" {{ script "assign" {{ source = "assign" }} }}
""" + cls.listeners()


    def phase(self, mode, count, first):
        self.sink.mode = mode
        for i in range(first, first + count):
            self.send("b1", f"r{i}@one.test")

    def tried(self):
        return self.sink.seen

    def adaptive_records(self):
        return [r for r in self.d.records("adaptive") if r["binding"] == "b1"]

    def test_b_half_refused_suspends_by_the_rejection_rate(self):
        # b2 has no sweep rules; Momentum's rejection-rate suspension (30 %) takes half
        # refused: suspended for adaptive_default_suspension, 2 hours.
        for i in range(8):
            self.send("b2", f"half{i}@one.test")
        self.wait_until(lambda: [r for r in self.d.records("adaptive") if r["binding"] == "b2"],
                        30, "no rejection-rate suspension")
        rec = [r for r in self.d.records("adaptive") if r["binding"] == "b2"][0]
        self.assertIn("suspended", rec["action"])
        self.assertIn("by rule rejection_rate_suspension", rec["action"])
        self.assertIn("over adaptive_rejection_rate_suspension_percentage 30 %", rec["reply"])
        line = [l for l in self.console("adaptive", "suspensions").splitlines() if l.startswith("b2 ")]
        self.assertEqual(len(line), 1, line)
        self.assertTrue(7000 < int(line[0].split()[2]) <= 7200, line)

    def test_a_rising_spam_rate_throttles_then_suspends(self):
        # No refusals: two sweeps pass and nothing happens.
        self.phase("none", 16, 0)
        self.wait_until(lambda: self.tried() >= 16, 30, "phase 1 not delivered")
        time.sleep(5)
        self.assertEqual(self.adaptive_records(), [])
        # One in four: the low threshold, `throttle down`.
        self.phase("quarter", 16, 16)
        self.wait_until(lambda: self.adaptive_records(), 30, "no sweep at 25 %")
        rec = self.adaptive_records()[0]
        self.assertEqual(rec["domain"], "one.test")
        self.assertIn("outbound_throttle_messages lowered", rec["action"])
        self.assertIn("sweep rule blocks: low threshold 10 % met", rec["reply"])
        self.assertIn("outbound_throttle_messages", self.console("adaptive", "list"))
        why = self.console("adaptive", "explain", "b1", "one.test")
        self.assertIn("outbound_throttle_messages = ", why)
        self.assertIn("(configured: unlimited)", why)
        self.assertRegex(why, r"Next step back at \d+")
        self.assertIn('blocks: outbound_throttle_messages lowered to 10/1 after "low threshold 10 % met', why)
        self.assertRegex(why, r"Sweep rule blocks: \d+/\d+ in the last window")
        self.wait_until(lambda: self.tried() >= 32, 30, "phase 2 not tried")
        time.sleep(5)
        self.assertFalse([r for r in self.adaptive_records() if "suspended" in r["action"]],
                         "25 % is under the high threshold")
        # Three in four: the high threshold, suspended. The console shows the window that
        # fired (count/total) until the next sweep cuts a new one.
        self.phase("most", 16, 32)
        windows = []

        def blocks_counted():
            sweep = json.loads(self.console("adaptive", "rules", "--binding", "b1", "--domain",
                                            "one.test", json_out=True))["sweep"]
            rows = [r for r in sweep if r["rule"] == "blocks" and r["count"] > 0]
            windows.extend(rows)
            return [r for r in self.adaptive_records() if "suspended" in r["action"]]

        self.wait_until(blocks_counted, 30, "no suspension at 75 %")
        rec = [r for r in self.adaptive_records() if "suspended" in r["action"]][0]
        self.assertIn("by rule blocks", rec["action"])
        self.assertIn("high threshold 50 % met", rec["reply"])
        count, total = map(int, rec["reply"].rsplit("(", 1)[1].rstrip(")").split("/"))
        self.assertGreaterEqual(total, 4)
        self.assertGreaterEqual(count / total, 0.5, rec["reply"])
        self.assertTrue(windows, "the console never showed the window blocks counted")
        self.assertTrue(all(r["codes"] == ["bc:52"] and r["total"] >= r["count"] for r in windows),
                        windows)
        line = [l for l in self.console("adaptive", "suspensions").splitlines() if "one.test" in l]
        self.assertEqual(line[0].split()[:2], ["b1", "one.test"])
        # Held: what comes now is not tried.
        time.sleep(1)
        before = self.tried()
        self.send("b1", "after@one.test")
        time.sleep(3)
        self.assertEqual(self.tried(), before, "sent while suspended")
        # The console shows the rule with Momentum's fields; the default FBL rule joins it.
        text = self.console("adaptive", "rules", "--binding", "b1", "--domain", "one.test")
        self.assertIn("blocks blocks", text)
        self.assertIn("codes         => bc:52", text)
        self.assertIn("high_action_p1=> 1 hour", text)
        self.assertIn("default_fbl_rule", text)
        self.assertNotIn("default_bounce_rule", text)
        self.assertRegex(text, r"count/total   => \d+/\d+")


TS03 = "421 4.7.1 [TS03] All messages from 127.0.0.2 will be permanently deferred; Retrying will NOT succeed."


class Ts03(Handler):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.sink.tries.append((session.peer[0], address))
        if session.peer[0] == "127.0.0.2" and address.endswith("@ymail.com"):
            return TS03
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


class Ts03Sink(Sink):
    def __init__(self, ip):
        super().__init__(ip)
        self.tries = []
        self.handler = Ts03(self)


class SystemRules(AdaptiveSuite):
    """Momentum's system rules with no script of the operator's: ymail.com is an alias of
    yahoo.com there, and Yahoo's `[TS03]` suspends at its first occurrence for 4 hours. The
    configuration has the module and `adaptive_enabled`, nothing else."""

    NAME = "system-rules"
    SCRIPT = ASSIGN_BY_HEADER
    SINK = Ts03Sink
    DNS_EXTRA = ("--mx-host=ymail.com,mx.one.test,10",)

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
domain "ymail.com" {{ Remote_SMTP_Port = {cls.sink.port} }}
adaptive_enabled = true
adaptive {{ }}
binding "b1" {{ Bind_Address = 127.0.0.2 }}
scriptlet "scriptlet" {{ script "assign" {{ source = "assign" }} }}
""" + cls.listeners()


    def test_yahoos_ts03_suspends_for_four_hours(self):
        self.send("b1", "someone@ymail.com")
        self.wait_until(lambda: self.d.records("adaptive"), 30, "no adaptive record")
        rec = self.d.records("adaptive")[0]
        self.assertEqual((rec["binding"], rec["domain"]), ("b1", "ymail.com"))
        self.assertIn("suspended", rec["action"])
        self.assertIn("by rule yahoo.com#", rec["action"])
        line = [l for l in self.console("adaptive", "suspensions").splitlines() if "ymail.com" in l]
        self.assertEqual(len(line), 1)
        self.assertTrue(14000 < int(line[0].split()[2]) <= 14400, line)
        why = self.console("adaptive", "explain", "b1", "ymail.com")
        self.assertIn("message: Remediation with Yahoo required", why)
        rules = self.console("adaptive", "rules", "--binding", "b1", "--domain", "ymail.com")
        self.assertIn("system rules", rules)
        self.assertIn("TS03", rules)


class WarmupPlan(AdaptiveSuite):
    """A warm-up plan (issue 22, bindery's own): b1 has `warmup_plan = ( 3 5 )` from today
    (UTC). It sends one.test three recipients today and holds the rest in its queue, not
    bounced and not retried, while b2, without a plan, sends all of its mail. The next
    day comes by moving `warmup_start` back a day from the console (the daemon runs on the
    real clock; the day rolling over on a manual clock is the engine test
    `a_warmup_plan_holds_a_binding_to_its_daily_cap`): two more go, up to day 2's cap of
    five, and past the plan the last one goes. A restart on day 1 does not give its cap
    again."""

    NAME = "warmup"
    SCRIPT = ASSIGN_BY_HEADER

    @staticmethod
    def day(offset=0):
        return (datetime.datetime.now(datetime.timezone.utc).date()
                + datetime.timedelta(days=offset)).isoformat()

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
Retry_Interval = 1
binding "b1" {{
  Bind_Address = 127.0.0.2
  warmup_plan = ( 3 5 )
  warmup_start = "{cls.day()}"
}}
binding "b2" {{ Bind_Address = 127.0.0.3 }}
scriptlet "scriptlet" {{ script "assign" {{ source = "assign" }} }}
""" + cls.listeners()



    def from_b1(self):
        return [m for m in self.sink.got if m["peer"] == "127.0.0.2"]

    def test_the_cap_holds_today_and_the_rest_goes_on_later_days(self):
        for i in range(6):
            self.send("b1", f"w{i}@one.test")
        for i in range(3):
            self.send("b2", f"v{i}@one.test")
        for i in range(3):
            self.assertEqual(self.arrived(f"v{i}@one.test")["peer"], "127.0.0.3")
        self.wait_until(lambda: len(self.from_b1()) >= 3, 20, "day 1's three not sent")
        time.sleep(3)
        self.assertEqual(len(self.from_b1()), 3, "more than the day's cap")
        rec = self.d.records("warmup")
        self.assertEqual(len(rec), 1, rec)
        self.assertEqual((rec[0]["binding"], rec[0]["domain"]), ("b1", "one.test"))
        self.assertIn("warm-up day 1 cap of 3 reached", rec[0]["action"])
        # Waiting in b1's queue, not failed: no bounce went to the sender.
        self.assertIn("one.test", self.console("binding", "active", "b1"))
        self.assertFalse([m for m in self.sink.got if "app@origin.test" in m["rcpts"]])
        self.assertIn('bindery_adaptive_actions_total{binding="b1",action="warmup_cap"} 1',
                      self.metrics())
        # A restart goes on from the day's count (kept in stats.json): still three.
        self.restart()
        time.sleep(3)
        self.assertEqual(len(self.from_b1()), 3, "the restart gave the day's cap again")
        # Day 2: five in all.
        self.console("config", "set", "binding", "b1", "warmup_start", self.day(-1))
        self.wait_until(lambda: len(self.from_b1()) >= 5, 20, "day 2's cap not used")
        time.sleep(2)
        self.assertEqual(len(self.from_b1()), 5, "more than day 2's cap")
        # Past the plan: the last one.
        self.console("config", "set", "binding", "b1", "warmup_start", self.day(-2))
        self.wait_until(lambda: len(self.from_b1()) >= 6, 20, "the rest not sent past the plan")
        self.assertEqual(sorted(r for m in self.from_b1() for r in m["rcpts"]),
                         [f"w{i}@one.test" for i in range(6)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
