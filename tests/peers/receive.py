#!/usr/bin/env python3
"""Reception against real clients: Python smtplib, raw sockets, swaks.

Run by `cargo test` (crates/bindery/tests/peers.rs) with BINDERY_BIN set to the binary. Every
daemon listens on 127.0.0.1 port 0; the port is read back from its log. Each test class starts
its own daemon in a fresh temporary folder.
"""

import json
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from common import MSG, Daemon, queued_id, raw, send


class Reception(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bindery-peers-")
        cert, key = os.path.join(cls.tmp, "cert.pem"), os.path.join(cls.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=mx.bindery.test", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        cls.d = Daemon(cls.tmp, listener_extra=f'TLS_Certificate = "{cert}"\n  TLS_Key = "{key}"')

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        assert code == 0, f"daemon exit {code}: {cls.d.stderr_text()}"
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_smtplib_send_is_spooled_with_received_header(self):
        with self.d.smtp() as s:
            code, caps = s.ehlo("client.example")
            self.assertEqual(code, 250)
            for ext in (b"PIPELINING", b"SIZE 100000", b"8BITMIME", b"ENHANCEDSTATUSCODES",
                        b"SMTPUTF8", b"DSN", b"STARTTLS"):
                self.assertIn(ext, caps)
            msg_id = send(s, rcpts=("b@rcpt.example", "c@elsewhere.example"))
        listed = {m["id"]: m for m in self.d.spool_list()}
        self.assertIn(msg_id, listed)
        self.assertEqual(listed[msg_id]["binding"], "default")
        self.assertEqual(listed[msg_id]["recipients"], ["b@rcpt.example", "c@elsewhere.example"])
        body = self.d.body(msg_id)
        self.assertTrue(body.startswith(b"Received: from client.example ([127.0.0.1])\r\n"
                                        b"\tby mx.bindery.test (Bindery) with ESMTP id " +
                                        msg_id.encode()), body[:200])
        self.assertTrue(body.endswith(b"Hello.\r\n"))

    def test_dsn_parameters_are_stored(self):
        with self.d.smtp() as s:
            s.ehlo("client.example")
            s.mail("a@sender.example", ["RET=HDRS", "ENVID=E1"])
            s.rcpt("b@rcpt.example", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;b@rcpt.example"])
            code, text = s.data(MSG)
            msg_id = queued_id(text)
        env = self.d.spooled(msg_id)[0]
        self.assertEqual(env["ret"], "HDRS")
        self.assertEqual(env["envid"], "E1")
        self.assertEqual(env["recipients"][0]["notify"], "SUCCESS,FAILURE")
        self.assertEqual(env["recipients"][0]["orcpt"], "rfc822;b@rcpt.example")

    def test_pipelined_transactions_in_one_write(self):
        data = (b"EHLO client.example\r\nMAIL FROM:<a@sender.example>\r\n"
                b"RCPT TO:<b@rcpt.example>\r\nRCPT TO:<c@rcpt.example>\r\nDATA\r\n"
                b"Subject: p1\r\n\r\none\r\n.\r\n"
                b"MAIL FROM:<a@sender.example>\r\nRCPT TO:<d@rcpt.example>\r\nDATA\r\n"
                b"Subject: p2\r\n\r\ntwo\r\n.\r\nQUIT\r\n")
        out = raw(self.d.port, data, wait_for=lambda o: b"221 " in o)
        lines = [l for l in out.split(b"\r\n") if l and not l.startswith(b"250-")]
        codes = [l[:3] for l in lines]
        self.assertEqual(codes, [b"220", b"250", b"250", b"250", b"250", b"354", b"250",
                                 b"250", b"250", b"354", b"250", b"221"], out)
        self.assertEqual(len(re.findall(rb"queued as", out)), 2)

    def test_starttls_with_smtplib(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with self.d.smtp() as s:
            s.ehlo("client.example")
            code, _ = s.starttls(context=ctx)
            self.assertEqual(code, 220)
            code, caps = s.ehlo("client.example")
            self.assertNotIn(b"STARTTLS", caps)
            msg_id = send(s)
        self.assertIn(b"with ESMTPS id " + msg_id.encode(), self.d.body(msg_id))

    def test_relay_hosts_by_client_address(self):
        # 127.0.0.2 is not in Relay_Hosts: only relay domains.
        with self.d.smtp(source=("127.0.0.2", 0)) as s:
            s.ehlo("client.example")
            s.mail("a@sender.example")
            self.assertEqual(s.rcpt("b@rcpt.example")[0], 250)
            self.assertEqual(s.rcpt("b@x.glob.example")[0], 250)
            code, text = s.rcpt("b@elsewhere.example")
            self.assertEqual((code, text[:5]), (550, b"5.7.1"))
            for trick in ("<b%elsewhere.example@rcpt.example>", '<"b@elsewhere.example"@rcpt.example>',
                          "<@rcpt.example:b@elsewhere.example>", "<b@[127.0.0.1]>"):
                code, resp = s.docmd("RCPT TO:" + trick)
                self.assertEqual(code, 550, (trick, resp))
            code, text = s.data(MSG)
            self.assertEqual(code, 250)
        # 127.0.0.1 is: anywhere.
        with self.d.smtp() as s:
            s.ehlo("client.example")
            send(s, rcpts=("b@elsewhere.example",))

    def test_smuggling_over_the_wire(self):
        before = len(self.d.spool_list())
        data = (b"EHLO client.example\r\nMAIL FROM:<a@sender.example>\r\nRCPT TO:<b@rcpt.example>\r\n"
                b"DATA\r\nSubject: outer\r\n\r\nouter\n.\nMAIL FROM:<evil@sender.example>\r\n"
                b"RCPT TO:<victim@rcpt.example>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n")
        out = raw(self.d.port, data, wait_for=lambda o: b"221 " in o)
        self.assertIn(b"554 5.6.0", out)
        self.assertNotIn(b"queued as", out)
        self.assertEqual(len(self.d.spool_list()), before)

    def test_bad_input_keeps_the_session(self):
        data = (b"EHLO client.example\r\nFOO\r\nMAIL FROM:<a@s.example>\x00\r\n" + b"NOOP " +
                b"x" * 2000 + b"\r\nMAIL FROM:<\xff@s.example>\r\nNOOP\r\nQUIT\r\n")
        out = raw(self.d.port, data, wait_for=lambda o: b"221 " in o)
        self.assertEqual(out.count(b"500 5.5.2"), 4, out)
        self.assertIn(b"250 2.0.0 OK", out)
        self.assertIn(b"221 2.0.0", out)

    def test_reception_log(self):
        with self.d.smtp() as s:
            s.ehlo("logged.example")
            msg_id = send(s)
        deadline = time.time() + 5
        rec = None
        while time.time() < deadline and rec is None:
            with open(self.d.log) as f:
                for line in f:
                    r = json.loads(line)
                    if r["id"] == msg_id:
                        rec = r
            time.sleep(0.05)
        self.assertIsNotNone(rec)
        for k, v in {"type": "reception", "peer": "127.0.0.1", "ehlo": "logged.example",
                     "sender": "a@sender.example", "recipients": ["b@rcpt.example"],
                     "binding_group": "default", "binding": "default"}.items():
            self.assertEqual(rec[k], v, k)
        self.assertGreater(rec["size"], len(MSG))

    def test_swaks(self):
        if shutil.which("swaks") is None:
            self.fail("swaks is not installed (apt-get install swaks)")
        for extra in ([], ["--pipeline"], ["--tls"]):
            out = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.d.port}", "--helo",
                                  "swaks.example", "--from", "a@sender.example", "--to",
                                  "b@rcpt.example"] + extra, capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertRegex(out.stdout, r"250 2\.0\.0 OK queued as [0-9A-F]{16}")
        out = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.d.port}", "--li", "127.0.0.2",
                              "--from", "a@sender.example", "--to", "b@elsewhere.example"],
                             capture_output=True, text=True)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("550 5.7.1", out.stdout)


class Limits(unittest.TestCase):
    """Listener limits from the configuration: connection cap, command timeout, recipients,
    a disabled Listen, and default_binding = none."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bindery-limits-")
        cls.d = Daemon(cls.tmp, extra="Default_Binding = none",
                       listener_extra='Concurrency = 2\n  Idle_Time = 1\n'
                                      '  Max_Recipients_Per_Message = 2\n'
                                      '  Listen "127.0.0.1:1" { enable = false }')

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        # Connections of the previous test may still hold the two slots for a moment: wait
        # until a client is greeted again, then let that probe connection end too.
        deadline = time.time() + 10
        while time.time() < deadline:
            if raw(self.d.port, b"QUIT\r\n", wait_for=lambda o: b"221" in o).startswith(b"220"):
                break
            time.sleep(0.1)
        time.sleep(0.2)

    def test_disabled_listen_is_not_bound(self):
        self.assertEqual(len(re.findall(r"listening \(ESMTP\)", self.d.stderr_text())), 1)

    def test_idle_timeout(self):
        t0 = time.time()
        out = raw(self.d.port, b"EHLO c.example\r\n", wait_for=lambda o: b"421" in o, timeout=5)
        self.assertIn(b"421 4.4.2", out)
        self.assertLess(time.time() - t0, 4)

    def test_connection_cap(self):
        a = socket.create_connection(("127.0.0.1", self.d.port))
        b = socket.create_connection(("127.0.0.1", self.d.port))
        self.assertTrue(a.recv(100).startswith(b"220"))
        self.assertTrue(b.recv(100).startswith(b"220"))
        out = raw(self.d.port, b"", wait_for=lambda o: True, timeout=2)
        self.assertTrue(out.startswith(b"421 4.7.0"), out)
        a.close(), b.close()

    def test_recipient_limit_and_default_binding_none(self):
        with self.d.smtp() as s:
            s.ehlo("c.example")
            s.mail("a@sender.example")
            self.assertEqual(s.rcpt("b1@rcpt.example")[0], 250)
            self.assertEqual(s.rcpt("b2@rcpt.example")[0], 250)
            code, text = s.rcpt("b3@rcpt.example")
            self.assertEqual((code, text[:5]), (452, b"4.5.3"))
            code, text = s.data(MSG)
            self.assertEqual((code, text[:5]), (451, b"4.4.4"), text)
        self.assertEqual(self.d.spool_list(), [])


class SessionTimeout(unittest.TestCase):
    """Session_Timeout ends a connection that keeps talking."""

    def test_session_timeout(self):
        tmp = tempfile.mkdtemp(prefix="bindery-session-")
        d = Daemon(tmp, listener_extra="Session_Timeout = 2\n  Idle_Time = 30")
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        s.recv(1000)
        t0, out = time.time(), b""
        while time.time() - t0 < 8 and b"421" not in out:
            s.sendall(b"NOOP\r\n")
            time.sleep(0.3)
            try:
                out += s.recv(4096)
            except socket.timeout:
                break
        s.close()
        self.assertIn(b"421 4.4.2", out)
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(d.stop(), 0)
        shutil.rmtree(tmp, ignore_errors=True)


class Crash(unittest.TestCase):
    """kill -9 in the middle of concurrent injection: every 250 is in the spool, once."""

    def test_kill_9(self):
        tmp = tempfile.mkdtemp(prefix="bindery-crash-")
        d = Daemon(tmp)
        acked, lock, stop = [], threading.Lock(), threading.Event()

        def client():
            while not stop.is_set():
                try:
                    with d.smtp() as s:
                        s.ehlo("crash.example")
                        for _ in range(20):
                            s.mail("a@sender.example")
                            s.rcpt("b@rcpt.example")
                            code, text = s.data(MSG)
                            if code == 250:
                                with lock:
                                    acked.append(queued_id(text))
                except (OSError, smtplib.SMTPException):
                    return

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        deadline = time.time() + 60
        while time.time() < deadline:
            with lock:
                if len(acked) >= 1500:
                    break
            time.sleep(0.01)
        d.proc.kill()  # SIGKILL, mid-stream
        d.proc.wait()
        stop.set()
        for t in threads:
            t.join()
        self.assertGreater(len(acked), 500, "too few messages before the kill")
        d.start()  # recovery must not refuse to start
        listed = [m["id"] for m in d.spool_list()]
        self.assertEqual(len(listed), len(set(listed)), "an id listed twice")
        missing = set(acked) - set(listed)
        self.assertEqual(missing, set(), f"{len(missing)} acknowledged messages lost")
        print(f"\ncrash test: {len(acked)} acknowledged before kill -9, {len(listed)} in spool "
              f"after restart, 0 lost", file=sys.stderr)
        self.assertIn("spool recovered", d.stderr_text())
        self.assertEqual(d.stop(), 0)
        shutil.rmtree(tmp, ignore_errors=True)


class FullDisk(unittest.TestCase):
    """A real full file system (tmpfs, needs root): 451 4.3.0, then 421, then recovery."""

    def test_full_disk(self):
        tmp = tempfile.mkdtemp(prefix="bindery-full-")
        mnt = os.path.join(tmp, "mnt")
        os.mkdir(mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt]).returncode:
            self.skipTest("cannot mount tmpfs (not root)")
        try:
            d = Daemon(tmp, spoolbase=os.path.join(mnt, "spool"))
            filler = os.path.join(mnt, "filler")
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
            big = MSG + "x" * 60000 + "\r\n"
            with d.smtp() as s:
                s.ehlo("full.example")
                for _ in range(3):
                    s.mail("a@sender.example")
                    s.rcpt("b@rcpt.example")
                    code, text = s.data(big)
                    self.assertEqual((code, text[:5]), (451, b"4.3.0"), text)
            self.assertEqual(d.spool_list(), [], "half-written message left behind")
            # The listener now turns clients away until the spool recovers.
            out = raw(d.port, b"", wait_for=lambda o: True, timeout=2)
            self.assertTrue(out.startswith(b"421 4.3.0"), out)
            os.remove(filler)
            deadline = time.time() + 10
            while time.time() < deadline:
                if raw(d.port, b"QUIT\r\n", timeout=2).startswith(b"220"):
                    break
                time.sleep(0.2)
            with d.smtp() as s:
                s.ehlo("full.example")
                msg_id = send(s, msg=big)
            self.assertEqual([m["id"] for m in d.spool_list()], [msg_id])
            self.assertEqual(d.stop(), 0)
        finally:
            subprocess.run(["umount", mnt])
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
