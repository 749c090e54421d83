#!/usr/bin/env python3
"""Momentum's logs, written on real traffic and read the way an operator's script reads them
(issue 18): `ec_logger` (mainlog, rejectlog, paniclog) and `bounce_logger` (bouncelog).

smtplib injects mail through bindery to an aiosmtpd sink (found through dnsmasq) that takes
`ok@`, refuses `reject@` with 550 at RCPT and defers `soft@` twice. A client outside
Relay_Hosts (127.0.0.2) is refused at RCPT. The logs are then split on Momentum's separator
(`@`, unescaped) and checked field by field against the formats of
SparkPost/support-docs content/momentum/4/log-formats-{mainlog,rejectlog,paniclog,bouncelog}.md.

Run by `cargo test` (crates/bindery/tests/peers.rs) with BINDERY_BIN set.
"""

import os
import re
import subprocess
import time
import unittest

from common import BIN, send
from deliver import SinkSuite, relay_to_sink

SPLIT = re.compile(r"(?<!\\)@")


def fields(line):
    """An `@` record's fields, unescaped (`\\@` is an `@` inside a field)."""
    return [re.sub(r"\\(.)", r"\1", f) for f in SPLIT.split(line)]


def lines(path, rotated=True):
    """The log's lines, those of its rotated file (`PATH.1`, see the rotation test) first."""
    out = []
    for p in ([path + ".1"] if rotated else []) + [path]:
        if os.path.exists(p):
            with open(p) as f:
                out += [l.rstrip("\n") for l in f]
    return out


class MomentumLogs(SinkSuite):
    NAME = "momentum-logs"

    @classmethod
    def daemon_config(cls):
        cls.main = os.path.join(cls.tmp, "mainlog.ec")
        cls.reject = os.path.join(cls.tmp, "rejectlog.ec")
        cls.panic = os.path.join(cls.tmp, "paniclog.ec")
        cls.bounce = os.path.join(cls.tmp, "bouncelog.ec")
        return relay_to_sink(cls.dns, cls.sink) + f"""
Relay_Domains = ( "one.test" )
# The bounce to origin.test finds nothing listening: deferred at the first failure, not
# held for Momentum's 900 s (connect_timeout_to_delay).
Connect_Timeout_To_Delay = 0
ec_logger "ec_logger" {{
  mainlog = "{cls.main}"
  rejectlog = "{cls.reject}"
  paniclog = "{cls.panic}"
  mainlog_mode = 0640
  heartbeat = 1
}}
bounce_logger "bounce_logger" {{
  bouncelog = "{cls.bounce}"
  heartbeat = 1
}}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
Control_Listener {{ Listen "{cls.tmp}/bindery.sock" {{ }} }}
"""

    @classmethod
    def started(cls):
        s = cls.d.smtp()
        cls.ids = {
            "ok": send(s, "sender@origin.test", ["ok@one.test"]),
            "reject": send(s, "sender@origin.test", ["reject@one.test"]),
            "soft": send(s, "sender@origin.test", ["soft@one.test", "ok2@one.test"]),
        }
        s.quit()
        # Relaying from outside Relay_Hosts: refused at RCPT, into the rejectlog.
        s = cls.d.smtp(source=("127.0.0.2", 0))
        s.ehlo("outsider.test")
        s.mail("x@elsewhere.test")
        cls.relay = s.rcpt("y@not-ours.test")
        s.quit()

    def records(self, path, kind, count, timeout=20, where=lambda f: True):
        """The records of `kind` that `where` takes, once there are `count` of them (or the
        timeout passed)."""
        deadline = time.time() + timeout
        while True:
            got = [f for f in map(fields, lines(path))
                   if len(f) > 4 and f[4] == kind and where(f)]
            if len(got) >= count or time.time() > deadline:
                return got
            time.sleep(0.05)

    def test_the_bounce_bindery_makes_is_an_internal_reception(self):
        got = self.records(self.main, "R", 1, where=lambda f: f[11] == "internal")
        self.assertEqual(len(got), 1, lines(self.main))
        f = got[0]
        self.assertEqual(len(f), 14, f)
        self.assertEqual((f[5], f[6], f[7], f[8]), ("sender", "origin.test", "", ""))
        failed = self.records(self.main, "T", 1, where=lambda f: f[5] == "origin.test")
        self.assertTrue(failed, lines(self.main))
        self.assertEqual((failed[0][1], failed[0][3], failed[0][9], failed[0][6]),
                         (f[1], "", "0", "0"), "no connection: no id, stage 0, 0 bytes")

    def test_reception_records_one_per_recipient(self):
        got = self.records(self.main, "R", 4, where=lambda f: f[11] == "esmtp")
        self.assertEqual(len(got), 4, lines(self.main))
        for f in got:
            self.assertEqual(len(f), 14, f)
            self.assertTrue(f[0].isdigit() and len(f[0]) == 10, f)
            self.assertEqual(f[1], f[2], "message id and batch id")
            self.assertTrue(f[3], "the inbound connection has an id")
            self.assertEqual((f[7], f[8]), ("sender", "origin.test"))
            self.assertEqual(f[9], "127.0.0.1")
            self.assertTrue(int(f[10]) > 0)
            self.assertEqual(f[11:], ["esmtp", "default", "default"])
        by_rcpt = {(f[5], f[6]): f for f in got}
        self.assertEqual(by_rcpt[("ok", "one.test")][1], self.ids["ok"])
        soft = by_rcpt[("soft", "one.test")]
        self.assertEqual(by_rcpt[("ok2", "one.test")][1], soft[1], "one message, two lines")
        # One session: one connection id for every message it brought.
        self.assertEqual(len({f[3] for f in got}), 1)

    def test_deliveries_failures_and_retries(self):
        d = self.records(self.main, "D", 3)
        self.assertEqual(len(d), 3, lines(self.main))
        for f in d:
            self.assertEqual(len(f), 12, f)
            self.assertEqual(f[5], "one.test")
            self.assertTrue(int(f[6]) > 0, "size")
            self.assertEqual(f[7:9], ["default", "default"])
            self.assertRegex(f[10], r"^\d+\.\d{3}$")
            self.assertEqual(f[11], "127.0.0.20")
        soft_d = [f for f in d if f[1] == self.ids["soft"]]
        self.assertEqual(len(soft_d), 2, "soft@ and ok2@ are delivered")
        self.assertEqual(sorted(int(f[9]) for f in soft_d), [0, 2],
                         "ok2@ went at once, soft@ on its third attempt")
        p = self.records(self.main, "P", 1)
        self.assertEqual(len(p), 1, lines(self.main))
        f = p[0]
        self.assertEqual(len(f), 14, f)
        self.assertEqual(f[1], self.ids["reject"])
        self.assertEqual(f[5], "one.test")
        self.assertEqual(f[9], "4", "refused during RCPT TO")
        self.assertEqual(f[10], "0")
        self.assertEqual(f[12], "127.0.0.20")
        self.assertIn("550 5.1.1 <reject@one.test>", f[13])
        self.assertTrue(int(f[6]) > 0, "MAIL and RCPT went out")
        # The bounce for reject@ goes to origin.test, which takes no connection: its own
        # transient failures, at stage 0 (not connected), are left out here.
        t = self.records(self.main, "T", 2, where=lambda f: f[5] == "one.test")
        self.assertEqual(len(t), 2, lines(self.main))
        for f in t:
            self.assertEqual(len(f), 14, f)
            self.assertEqual(f[1], self.ids["soft"])
            self.assertEqual(f[9], "4")
            self.assertIn("451 4.2.0", f[13])
        self.assertEqual(sorted(f[10] for f in t), ["0", "1"])
        # Every attempt has its own outbound connection id.
        self.assertTrue(all(f[3] for f in d + p + t))
        self.assertEqual(oct(os.stat(self.main).st_mode & 0o777), "0o640")

    def test_heartbeats(self):
        deadline = time.time() + 5
        while time.time() < deadline:
            beats = [l for l in lines(self.main) if re.fullmatch(r"\d{10}@@@@M", l)]
            marks = [l for l in lines(self.reject) if re.fullmatch(r"\d{10}: Marker 1", l)]
            bounce_beats = [l for l in lines(self.bounce) if re.fullmatch(r"\d{10}@@@@M1", l)]
            if beats and marks and bounce_beats:
                break
            time.sleep(0.1)
        self.assertTrue(beats, lines(self.main))
        self.assertTrue(marks, lines(self.reject))
        self.assertTrue(bounce_beats, lines(self.bounce))

    def test_bouncelog(self):
        b = self.records(self.bounce, "B", 1)
        self.assertEqual(len(b), 1, lines(self.bounce))
        f = b[0]
        self.assertEqual(len(f), 16, f)
        self.assertEqual(f[1], self.ids["reject"])
        self.assertEqual((f[5], f[6], f[7], f[8]), ("reject", "one.test", "sender", "origin.test"))
        self.assertEqual(f[9:11], ["default", "default"])
        self.assertEqual(f[11], "4")
        self.assertEqual(f[12], "10", "550 5.1.1: Invalid Recipient")
        self.assertTrue(int(f[13]) > 0)
        self.assertEqual(f[14], "127.0.0.20")
        self.assertIn("550 5.1.1", f[15])
        # The bounce to origin.test has transient failures of its own, as many as time
        # allowed by now: only one.test's count is fixed.
        t = self.records(self.bounce, "T", 2, where=lambda f: f[6] == "one.test")
        self.assertEqual(len(t), 2, lines(self.bounce))
        self.assertEqual({(f[5], f[11]) for f in t}, {("soft", "4")})
        self.assertEqual({f[12] for f in t}, {"70"}, "451 4.2.0: Transient Failure")

    def test_rejectlog(self):
        self.assertEqual(self.relay[0], 550)
        deadline = time.time() + 5
        while time.time() < deadline:
            got = [l for l in lines(self.reject) if " E=" in l]
            if got:
                break
            time.sleep(0.05)
        self.assertEqual(len(got), 1, lines(self.reject))
        line = got[0]
        m = re.fullmatch(
            r'(\d{10}): R="([^"]*)" L="([^"]*)" C="([^"]*)" PATH="([^"]*)" PATH_GRP="([^"]*)" '
            r'P="([^"]*)" E=(\d+) M=(\S+) CTXCONN=\[([^\]]*)\] CTXMESS=\[([^\]]*)\] (.*)', line)
        self.assertIsNotNone(m, line)
        _, remote, local, conn, path, grp, phase, code, module, ctxconn, ctxmess, text = m.groups()
        self.assertTrue(remote.startswith("127.0.0.2:"), remote)
        self.assertTrue(local.startswith("127.0.0.1:"), local)
        self.assertTrue(conn)
        self.assertEqual((path, grp), ("default", "default"))
        self.assertEqual(phase, "awaiting rcptto")
        self.assertEqual((code, module), ("550", "esmtp"))
        self.assertIn('ehlo_string="EHLO outsider.test"', ctxconn)
        self.assertIn("ehlo_domain=outsider.test", ctxconn)
        self.assertEqual(ctxmess, "mailfrom_domain=elsewhere.test,mailfrom_localpart=x")
        self.assertIn("5.7.1", text)

    def test_reopen_logs_after_rotation(self):
        """What ec_rotate does: move the file away, ask for `reopen logs` (Momentum's
        `ec_logger:NAME reopen logs` form), and the next records go to a new file. It sends
        one more message; unittest runs tests by name, so the suites that count records
        (bouncelog, deliveries, reception, rejectlog) have counted before it."""
        self.records(self.main, "D", 3)
        rotated = self.main + ".1"
        os.rename(self.main, rotated)
        r = subprocess.run([BIN, "console", "-s", os.path.join(self.tmp, "bindery.sock"),
                            "ec_logger:ec_logger", "reopen", "logs"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(self.main, r.stdout)
        s = self.d.smtp()
        msg_id = send(s, "sender@origin.test", ["ok3@one.test"])
        s.quit()
        deadline = time.time() + 10
        while time.time() < deadline and msg_id not in "".join(lines(self.main, False)):
            time.sleep(0.05)
        new = [fields(l) for l in lines(self.main, False)]
        self.assertEqual([f[1] for f in new if f[4] == "R"], [msg_id], new)
        self.assertNotIn(msg_id, open(rotated).read())
        self.assertEqual(oct(os.stat(self.main).st_mode & 0o777), "0o640",
                         "the new file has the configured mode")

    def test_paniclog_has_the_startup_line(self):
        got = lines(self.panic)
        self.assertTrue(got, "paniclog empty")
        self.assertRegex(got[0], r"^\d{10}:bindery \S+ starting$")


if __name__ == "__main__":
    unittest.main(verbosity=2)
