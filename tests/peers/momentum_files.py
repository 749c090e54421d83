#!/usr/bin/env python3
"""Momentum's own files mean the same (issue 18), against real peers.

Security: with `User` and `Group` set, the daemon binds its listeners as root and then runs as
that user, with no capability left; `/proc/PID/status` is read to see it, and a message is
taken to show the spool still works under the new owner. Run as root (CI is); skipped
otherwise, with a line saying so.

Use_SSL: a listener with implicit TLS (port 465 style) greets inside TLS, for
`openssl s_client`, swaks `--tlsc` and Python's `SMTP_SSL`.

Proxy_Protocol: HAProxy from Debian in front of a listener, sending version 1 and version 2
headers from its own source address (127.0.0.3); relay control, and the mainlog, see the
client's address (127.0.0.5) from the header. Raw bytes for the bad cases: a malformed header,
none at all, half of one, and a header sent to a listener that expects none.

Send_8BitMIME: an 8-bit message to an aiosmtpd sink (which offers 8BITMIME) carries
`BODY=8BITMIME` on its MAIL only where the domain says `ifavailable`; under Momentum's default
`no` it goes unannounced, and an ASCII message is never announced.

Delivery_Method = LMTP: a domain delivered to aiosmtpd's LMTP server (LHLO; after the dot one
reply per recipient) on LMTP_Port: each recipient gets its own fate from its own reply.

delay_dsn: with the module loaded and Generate_Delay_DSN on, a message an aiosmtpd sink keeps
answering 451 brings its sender a delay notice, parsed with Python's `email`: a
multipart/report with `Action: delayed`, the 4.x.x status and `Will-Retry-Until`.

XClient: Postfix's smtp-sink (`-v` logs every command it reads) gets XCLIENT with the original
client's HELO before each message under `ifavailable`; under `required`, a sink that does not
offer it (`-C`) sees no transaction and the message is deferred with 451 4.7.0.

Transform_8BitMIME_Content: smtp-sink without 8BITMIME (`-8`) dumps what it got; `strict` is
quoted-printable that Python's `email` decodes back to the text sent, `ifneeded` (the default)
strips the high bit, `no` sends the bytes as they are, an 8-bit header under `strict` fails.

Run by `cargo test` (crates/bindery/tests/peers.rs) with BINDERY_BIN set.
"""

import asyncio
import email
import email.policy
import grp
import os
import pwd
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from common import BIN, MSG, Daemon, queued_id, send
from deliver import SinkSuite, free_port, relay_to_sink


def status(pid):
    """/proc/PID/status as a dict of its fields (the text after the colon, split)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.split()
    return out


def refused_at(test, text, line):
    """`bindery config check` on a file holding `text` fails and names its line `line`;
    returns what it printed."""
    conf = os.path.join(test.tmp, "refused.conf")
    with open(conf, "w") as f:
        f.write(text)
    r = subprocess.run([BIN, "config", "check", "-c", conf], capture_output=True, text=True)
    out = r.stderr + r.stdout
    test.assertNotEqual(r.returncode, 0, out)
    test.assertIn(f"refused.conf:{line}:", out)
    return out


def nobody():
    """The unprivileged user and group Debian has, or None."""
    try:
        return pwd.getpwnam("nobody"), grp.getgrnam("nogroup")
    except KeyError:
        return None


class Security(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("not root: the drop from root cannot be seen")
        self.who = nobody()
        if self.who is None:
            self.skipTest("no nobody/nogroup here")
        self.tmp = tempfile.mkdtemp(prefix="bindery-security-")
        # The folder the daemon writes in (spool, mainlog) belongs to the user it becomes,
        # as Momentum's installer makes /var/spool/ecelerity belong to ecuser.
        os.chown(self.tmp, self.who[0].pw_uid, self.who[1].gr_gid)
        os.chmod(self.tmp, 0o755)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_the_daemon_runs_as_user_and_group_with_no_capability(self):
        user, group = self.who
        d = Daemon(self.tmp, extra="""
Security {
  User = "nobody"
  Group = "nogroup"
  Capabilities = "cap_net_bind_service+ep"
}
""")
        try:
            st = status(d.proc.pid)
            self.assertEqual(st["Uid"], [str(user.pw_uid)] * 4, st["Uid"])
            self.assertEqual(st["Gid"], [str(group.gr_gid)] * 4, st["Gid"])
            self.assertEqual(st["Groups"], [str(group.gr_gid)], st["Groups"])
            for cap in ("CapEff", "CapPrm", "CapInh"):
                self.assertEqual(int(st[cap][0], 16), 0, (cap, st[cap]))
            # Every thread, not only the main one: the runtime's threads started before the
            # drop.
            for tid in os.listdir(f"/proc/{d.proc.pid}/task"):
                t = status(f"{d.proc.pid}/task/{tid}")
                self.assertEqual(t["Uid"][1], str(user.pw_uid), (tid, t["Uid"]))
                self.assertEqual(int(t["CapEff"][0], 16), 0, (tid, t["CapEff"]))
            with d.smtp() as s:
                s.ehlo("client.example")
                msg_id = send(s)
            spooled = [os.path.join(root, f) for root, _, files in os.walk(d.spoolbase)
                       for f in files if f.startswith(msg_id)]
            self.assertTrue(spooled, "the message is not in the spool")
            self.assertEqual(os.stat(spooled[0]).st_uid, user.pw_uid)
            log = d.stderr_text()
            self.assertIn("privileges dropped", log)
            self.assertIn("`Capabilities` has no effect in bindery", log)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_chroot_puts_the_daemon_in_its_folder(self):
        user, group = self.who
        jail = os.path.join(self.tmp, "jail")
        # Inside the jail, the mainlog's folder (the test's path, as the Daemon helper
        # writes it) and nothing else: Spoolbase "/spool" is made there at start.
        os.makedirs(jail + self.tmp)
        for d in (jail, jail + self.tmp):
            os.chown(d, user.pw_uid, group.gr_gid)
        # The console socket and the pid file are made outside the jail, before the chroot,
        # and removed at a clean stop through their folder opened beforehand.
        sock, pid = os.path.join(self.tmp, "console.sock"), os.path.join(self.tmp, "bindery.pid")
        d = Daemon(self.tmp, spoolbase="/spool", extra=f"""
Security {{
  User = "nobody"
  Group = "nogroup"
  Chroot = "{jail}"
}}
PidFile = "{pid}"
Control_Listener {{ Listen "{sock}" {{ }} }}
""")
        stopped = False
        try:
            self.assertEqual(os.readlink(f"/proc/{d.proc.pid}/root"), jail)
            self.assertTrue(os.path.exists(sock) and os.path.exists(pid))
            with d.smtp() as s:
                s.ehlo("client.example")
                msg_id = send(s)
            spooled = [f for _, _, files in os.walk(os.path.join(jail, "spool"))
                       for f in files if f.startswith(msg_id)]
            self.assertTrue(spooled, "the message is in the jail's spool")
            self.assertFalse(os.path.exists("/spool"), "nothing outside the jail")
            # The mainlog has a writer thread of its own: the record may follow the 250.
            deadline, logged = time.time() + 10, ""
            while msg_id not in logged and time.time() < deadline:
                with open(jail + d.log) as f:
                    logged = f.read()
                time.sleep(0.05)
            self.assertIn(msg_id, logged, "the mainlog is written inside the jail")
            self.assertIn("chroot", d.stderr_text())
            self.assertEqual(d.stop(), 0)
            stopped = True
            self.assertFalse(os.path.exists(sock), "the console socket is removed at stop")
            self.assertFalse(os.path.exists(pid), "the pid file is removed at stop")
        finally:
            if not stopped:
                d.stop()

    def test_a_chroot_that_is_no_folder_is_refused_by_config_check(self):
        conf = os.path.join(self.tmp, "c.conf")
        with open(conf, "w") as f:
            f.write('Security {\n  Chroot = "relative/jail"\n}\n')
        r = subprocess.run([BIN, "config", "check", "-c", conf], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("c.conf:2:", r.stderr + r.stdout)

    def test_a_user_this_system_lacks_is_refused_by_config_check(self):
        conf = os.path.join(self.tmp, "b.conf")
        with open(conf, "w") as f:
            f.write('Security { User = "no-such-user-bindery" }\n')
        out = subprocess.run([BIN, "config", "check", "-c", conf], capture_output=True,
                             text=True)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("no user `no-such-user-bindery` on this system", out.stdout + out.stderr)


def self_signed(d):
    """A self-signed certificate for mx.bindery.test: (cert, key)."""
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=mx.bindery.test", "-addext", "subjectAltName=DNS:mx.bindery.test",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


class ImplicitTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bindery-ssl-")
        cert, key = self_signed(cls.tmp)
        cls.d = Daemon(cls.tmp, config=f"""
Relay_Hosts = ( 127.0.0.1 )
Suspend_Delivery = true
ESMTP_Listener {{
  TLS_Certificate = "{cert}"
  TLS_Key = "{key}"
  TLS_Ciphers = "DEFAULT"
  Listen "127.0.0.1:0" {{
    Use_SSL = true
  }}
}}
""")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_openssl_s_client_is_greeted_inside_tls(self):
        out = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{self.d.port}", "-quiet",
             "-servername", "mx.bindery.test"],
            input=b"EHLO client.example\r\nQUIT\r\n", capture_output=True, timeout=20)
        text = out.stdout.decode(errors="replace")
        self.assertIn("220 ", text)
        self.assertIn("250-", text)
        # Already encrypted: STARTTLS is not offered again.
        self.assertNotIn("STARTTLS", text)
        self.assertIn("221", text)

    def test_swaks_tlsc_sends_a_message(self):
        out = subprocess.run(
            ["swaks", "--tlsc", "--server", "127.0.0.1", "--port", str(self.d.port),
             "--from", "a@sender.example", "--to", "b@rcpt.example", "--helo", "c.example"],
            capture_output=True, timeout=30, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("queued as", out.stdout)
        self.assertIn("TLS started", out.stdout)

    def test_python_smtp_ssl_sends_a_message(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP_SSL("127.0.0.1", self.d.port, context=ctx, timeout=10) as s:
            s.ehlo("client.example")
            send(s)


HAPROXY = """
global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend v1
  bind 127.0.0.6:{v1}
  default_backend v1
backend v1
  server bindery 127.0.0.1:{port} send-proxy source 127.0.0.3
frontend v2
  bind 127.0.0.6:{v2}
  default_backend v2
backend v2
  server bindery 127.0.0.1:{port} send-proxy-v2 source 127.0.0.3
"""


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd)


def client_ca(d):
    """A CA, a client certificate it signed (clientAuth), and a self-signed client
    certificate no CA vouches for: paths (ca, (cert, key), (rogue_cert, rogue_key))."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=Bindery Test Client CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign", "-keyout", "ca.key", "-out", "ca.pem",
            cwd=d)
    openssl("req", *ec, "-subj", "/CN=client.example", "-keyout", "client.key",
            "-out", "client.csr", cwd=d)
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
                "subjectAltName=DNS:client.example\n")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "client.ext", "-out", "client.pem",
            cwd=d)
    openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=rogue.example",
            "-addext", "extendedKeyUsage=clientAuth", "-keyout", "rogue.key",
            "-out", "rogue.pem", cwd=d)
    j = lambda n: os.path.join(d, n)
    return j("ca.pem"), (j("client.pem"), j("client.key")), (j("rogue.pem"), j("rogue.key"))


class ClientCertificates(unittest.TestCase):
    """TLS_Client_CA, TLS_Verify_Mode and TLS_Verified_Peer_Can_Relay, with swaks presenting
    client certificates (Momentum's inbound-TLS page): a client whose certificate verifies
    against the CA list may relay; a client without one, or with one no listed CA signed,
    keeps its session and is refused relay; `require` fails the handshake of a client with
    no certificate. TLS_Protocols limits the versions `openssl s_client` may negotiate."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bindery-client-certs-")
        cert, key = self_signed(cls.tmp)
        cls.ca, cls.client, cls.rogue = client_ca(cls.tmp)
        cls.port, cls.strict, cls.tls12 = free_port(), free_port(), free_port()
        # 127.0.0.1 is no relay host here: only a verified certificate lets it relay.
        cls.d = Daemon(cls.tmp, config=f"""
Relay_Domains = ( "rcpt.example" )
Suspend_Delivery = true
ESMTP_Listener {{
  TLS_Certificate = "{cert}"
  TLS_Key = "{key}"
  TLS_Client_CA = "{cls.ca}"
  TLS_Verified_Peer_Can_Relay = true
  Listen "127.0.0.1:{cls.port}" {{ }}
  Listen "127.0.0.1:{cls.strict}" {{
    TLS_Verify_Mode = "require"
  }}
  Listen "127.0.0.1:{cls.tls12}" {{
    TLS_Protocols = "+ALL:-TLSv1.3"
  }}
}}
""")
        for port in (cls.port, cls.strict, cls.tls12):
            cls.d.wait_log(rf"addr=127\.0\.0\.1:({port})")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def swaks(self, port, *extra, to="b@far.example"):
        return subprocess.run(
            ["swaks", "--tls", "--server", "127.0.0.1", "--port", str(port), "--from",
             "a@sender.example", "--to", to, "--helo", "c.example", *extra],
            capture_output=True, timeout=30, text=True)

    def test_a_verified_client_certificate_may_relay(self):
        out = self.swaks(self.port, "--tls-cert", self.client[0], "--tls-key", self.client[1])
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("queued as", out.stdout)

    def test_no_certificate_or_an_unknown_one_keeps_the_session_but_not_relay(self):
        for extra in ([], ["--tls-cert", self.rogue[0], "--tls-key", self.rogue[1]]):
            out = self.swaks(self.port, *extra)
            self.assertIn("TLS started", out.stdout, extra)
            self.assertIn("550 5.7.1 <b@far.example>: Relay access denied", out.stdout, extra)
            # Mail for a relay domain is still taken: the session lives on.
            out = self.swaks(self.port, *extra, to="b@rcpt.example")
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_require_fails_the_handshake_of_a_client_without_a_certificate(self):
        out = self.swaks(self.strict)
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertNotIn("queued as", out.stdout)
        out = self.swaks(self.strict, "--tls-cert", self.client[0], "--tls-key", self.client[1])
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_tls_protocols_limits_the_versions_offered(self):
        def s_client(port, version):
            return subprocess.run(
                ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-starttls", "smtp",
                 version, "-brief"],
                input="QUIT\n", capture_output=True, timeout=30, text=True)
        self.assertEqual(s_client(self.port, "-tls1_3").returncode, 0)
        self.assertNotEqual(s_client(self.tls12, "-tls1_3").returncode, 0)
        out = s_client(self.tls12, "-tls1_2")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("TLSv1.2", out.stderr + out.stdout)

    def test_check_refuses_require_without_a_ca_and_an_unknown_protocol(self):
        conf = os.path.join(self.tmp, "bad.conf")
        cert, key = os.path.join(self.tmp, "cert.pem"), os.path.join(self.tmp, "key.pem")
        for body, where, what in (
            ('  TLS_Verify_Mode = "require"\n', "bad.conf:4:3", "needs TLS_Client_CA"),
            ('  TLS_Protocols = "+ALL:-TLSv1.4"\n', "bad.conf:4:", "did you mean"),
            ('  TLS_Verified_Peer_Can_Relay = true\n', "bad.conf:4:3",
             "needs client certificates"),
            ('  TLS_Client_CA = "/nonexistent/ca.pem"\n', "bad.conf:4:3",
             "cannot load the client CA list: TLS_Client_CA /nonexistent/ca.pem"),
        ):
            with open(conf, "w") as f:
                f.write(f'ESMTP_Listener {{\n  TLS_Certificate = "{cert}"\n'
                        f'  TLS_Key = "{key}"\n{body}  Listen "127.0.0.1:0" {{ }}\n}}\n')
            out = subprocess.run([BIN, "config", "check", "-c", conf], capture_output=True,
                                 text=True)
            self.assertEqual(out.returncode, 1, out.stdout)
            self.assertIn(where, out.stdout + out.stderr)
            self.assertIn(what, out.stdout + out.stderr)


def talk(port, data, source="127.0.0.1", timeout=5):
    """Connects, sends `data` at once, and returns everything the server said until it
    closed (or `timeout`)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    if data:
        s.sendall(data)
    out = b""
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError):
        # A reset: the server closed with our bytes unread, which is closing too.
        pass
    s.close()
    return out


class ProxyProtocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("haproxy") is None:
            raise unittest.SkipTest("haproxy not installed")
        cls.tmp = tempfile.mkdtemp(prefix="bindery-proxy-")
        # Only the client behind the proxy may relay; the proxy's own address may not.
        cls.d = Daemon(cls.tmp, config="""
Relay_Hosts = ( 127.0.0.5/32 )
Suspend_Delivery = true
ESMTP_Listener {
  Listen "127.0.0.1:0" {
    Proxy_Protocol = true
    Proxy_Protocol_Timeout = 2
  }
}
""")
        cls.v1, cls.v2 = free_port(), free_port()
        conf = os.path.join(cls.tmp, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(HAPROXY.format(v1=cls.v1, v2=cls.v2, port=cls.d.port))
        cls.haproxy = subprocess.Popen(["haproxy", "-db", "-f", conf],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.6", cls.v2), timeout=1).close()
                socket.create_connection(("127.0.0.6", cls.v1), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        cls.haproxy.terminate()
        cls.haproxy.wait(timeout=10)
        cls.d.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def relay(self, port, source):
        with smtplib.SMTP("127.0.0.6", port, source_address=(source, 0), timeout=10) as s:
            s.ehlo("client.example")
            s.mail("a@sender.example")
            return s.rcpt("someone@far.example")

    def test_the_headers_client_address_is_the_one_relay_control_sees(self):
        for port in (self.v1, self.v2):
            code, _ = self.relay(port, "127.0.0.5")
            self.assertEqual(code, 250, f"relay from 127.0.0.5 through port {port}")
            code, _ = self.relay(port, "127.0.0.7")
            self.assertEqual(code, 550, f"relay from 127.0.0.7 through port {port}")

    def test_the_mainlog_names_the_client_not_the_proxy(self):
        with smtplib.SMTP("127.0.0.6", self.v2, source_address=("127.0.0.5", 0), timeout=10) as s:
            s.ehlo("proxied.example")
            s.sendmail("a@sender.example", ["b@far.example"], MSG)
        recs = [r for r in self.d.wait_records("reception", 1) if r.get("ehlo") == "proxied.example"]
        self.assertTrue(recs, self.d.records("reception"))
        self.assertEqual(recs[0]["peer"], "127.0.0.5")

    def test_a_bad_or_missing_header_closes_without_a_banner(self):
        for data in (b"PROXY TCP4 192.0.2.1 bad 1 2\r\n", b"EHLO client.example\r\n",
                     b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x04abcd"):
            self.assertEqual(talk(self.d.port, data), b"", data)
        # Half a header, then silence: closed after Proxy_Protocol_Timeout (2 s).
        start = time.time()
        self.assertEqual(talk(self.d.port, b"PROXY TCP4 192.0", timeout=10), b"")
        self.assertLess(time.time() - start, 6)
        # A good header by hand, and the session goes on.
        out = talk(self.d.port, b"PROXY TCP4 127.0.0.5 127.0.0.1 40000 25\r\nQUIT\r\n")
        self.assertTrue(out.startswith(b"220 "), out)
        self.assertIn(b"221", out)
        # Nothing was logged in the name of the malformed header's address.
        self.assertNotIn("192.0.2.1", self.d.stderr_text())
        self.assertFalse([r for r in self.d.records() if r.get("peer") == "192.0.2.1"])
        self.assertIn("PROXY header", self.d.stderr_text())

    def test_a_header_where_none_is_configured_is_a_bad_command(self):
        tmp = tempfile.mkdtemp(prefix="bindery-noproxy-")
        d = Daemon(tmp)
        try:
            out = talk(d.port, b"PROXY TCP4 10.1.1.1 127.0.0.1 40000 25\r\nEHLO c.example\r\nQUIT\r\n")
            lines = out.split(b"\r\n")
            self.assertTrue(lines[0].startswith(b"220 "), out)
            self.assertTrue(lines[1].startswith(b"5"), out)
            self.assertIn(b"250", out)
            self.assertIn(b"221", out)
        finally:
            self.assertEqual(d.stop(), 0)
            shutil.rmtree(tmp, ignore_errors=True)


class SmtpListenerOptions(unittest.TestCase):
    """Require_EHLO (Momentum's default false lets MAIL come first), Static_Banner (the whole
    220 line), Received_Hostname (our name in the Received header),
    Max_Recipients_Per_Connection (421 past the session's cap) and
    Allow_Trailing_Whitespace_In_Commands (`< a@b >`)."""

    def daemon(self, extra):
        tmp = tempfile.mkdtemp(prefix="bindery-listen-opts-")
        self.addCleanup(shutil.rmtree, tmp, True)
        d = Daemon(tmp, listener_extra=extra)
        self.addCleanup(d.stop)
        return d

    def test_mail_without_helo_by_default_and_refused_with_require_ehlo(self):
        d = self.daemon('Static_Banner = "220 mx.static.example ESMTP ready"\n'
                        '  Received_Hostname = "in.bindery.example"')
        out = talk(d.port, b"MAIL FROM:<a@sender.example>\r\nRCPT TO:<b@rcpt.example>\r\n"
                   b"DATA\r\n", timeout=2)
        self.assertTrue(out.startswith(b"220 mx.static.example ESMTP ready\r\n"), out)
        self.assertIn(b"250 2.1.0", out)
        self.assertIn(b"354", out)
        with d.smtp() as s:
            s.ehlo("client.example")
            msg_id = send(s)
        received = d.body(msg_id).split(b"\r\n\t")[1]
        self.assertTrue(received.startswith(b"by in.bindery.example "), received)
        strict = self.daemon("Require_EHLO = true")
        out = talk(strict.port, b"MAIL FROM:<a@sender.example>\r\n", timeout=2)
        self.assertIn(b"503 5.5.1", out)

    def test_recipients_per_session_and_spaces_inside_brackets(self):
        d = self.daemon("Max_Recipients_Per_Connection = 3\n"
                        "  Allow_Trailing_Whitespace_In_Commands = true")
        with d.smtp() as s:
            s.ehlo("client.example")
            self.assertEqual(s.docmd("MAIL FROM:< a@sender.example >")[0], 250)
            for i in range(3):
                self.assertEqual(s.docmd(f"RCPT TO:< r{i}@rcpt.example>")[0], 250)
            code, text = s.docmd("RCPT TO:<r3@rcpt.example>")
            self.assertEqual(code, 421, text)
            self.assertIn(b"too many recipients in this session", text)
        # Momentum's defaults: no cap, and a space inside the brackets is a syntax error.
        plain = self.daemon("")
        with plain.smtp() as s:
            s.ehlo("client.example")
            self.assertEqual(s.docmd("MAIL FROM:< a@sender.example >")[0], 501)
            self.assertEqual(s.docmd("MAIL FROM:<a@sender.example>")[0], 250)
            for i in range(5):
                self.assertEqual(s.docmd(f"RCPT TO:<r{i}@rcpt.example>")[0], 250)

    def test_blackhole_inline_refuses_the_recipient_at_rcpt(self):
        tmp = tempfile.mkdtemp(prefix="bindery-blackhole-")
        self.addCleanup(shutil.rmtree, tmp, True)
        d = Daemon(tmp, extra='domain "void.rcpt.example" { Blackhole = inline }\n'
                              'domain "gone.rcpt.example" { Blackhole = true }\n'
                              'domain "kept.rcpt.example" { Blackhole = internal }')
        self.addCleanup(d.stop)
        with d.smtp() as s:
            s.ehlo("client.example")
            self.assertEqual(s.docmd("MAIL FROM:<a@sender.example>")[0], 250)
            for rcpt in ("x@void.rcpt.example", "y@gone.rcpt.example"):
                code, text = s.docmd(f"RCPT TO:<{rcpt}>")
                self.assertEqual((code, text), (551, b"5.7.1 recipient blackholed"), rcpt)
            # `internal` takes the message and fails it at delivery; other domains are kept.
            for rcpt in ("z@kept.rcpt.example", "w@rcpt.example"):
                self.assertEqual(s.docmd(f"RCPT TO:<{rcpt}>")[0], 250, rcpt)
        r = subprocess.run([BIN, "config", "check", "-c", d.conf], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        bad = os.path.join(tmp, "bad.conf")
        with open(bad, "w") as f:
            f.write('binding "b" {\n  domain "x.example" {\n    Blackhole = inline\n  }\n}\n')
        r = subprocess.run([BIN, "config", "check", "-c", bad], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("bad.conf:3:", r.stderr + r.stdout)
        self.assertIn("before the message has a binding", r.stderr + r.stdout)

    def test_listener_sessions_caps_open_sessions_with_421(self):
        d = self.daemon("Listener_Sessions = 2")
        first, second = d.smtp(), d.smtp()
        try:
            out = talk(d.port, b"", timeout=3)
            self.assertTrue(out.startswith(b"421 4.4.5 Service unavailable, concurrency limit"), out)
            first.quit()
            # The closed session's place is free again (the server sees the close at once,
            # but give it a moment).
            for _ in range(40):
                out = talk(d.port, b"QUIT\r\n", timeout=2)
                if out.startswith(b"220"):
                    break
                time.sleep(0.05)
            self.assertTrue(out.startswith(b"220 "), out)
        finally:
            second.close()

    def test_pid_file_is_written_and_removed_at_stop(self):
        tmp = tempfile.mkdtemp(prefix="bindery-pid-")
        self.addCleanup(shutil.rmtree, tmp, True)
        pid = os.path.join(tmp, "ecelerity.pid")
        d = Daemon(tmp, extra=f'PidFile = "{pid}"')
        with open(pid) as f:
            self.assertEqual(f.read().strip(), str(d.proc.pid))
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(pid))

    def test_unqualified_addresses_are_qualified_with_the_configured_domains(self):
        d = self.daemon('Domain_For_Unqualified_Sender_Address = "senders.example"\n'
                        '  Domain_For_Unqualified_Recipient_Addresses = "rcpt.example"')
        out = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(d.port), "--from", "robot",
             "--to", "abuse,Postmaster", "--helo", "c.example"],
            capture_output=True, timeout=30, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        env, _ = d.spooled(queued_id(out.stdout.encode()))
        self.assertEqual(env["sender"], "robot@senders.example")
        self.assertEqual([r["address"] for r in env["recipients"]],
                         ["abuse@rcpt.example", "Postmaster@rcpt.example"])
        # Without the options an unqualified sender is a syntax error, as it always was.
        plain = self.daemon("")
        out = talk(plain.port, b"EHLO c.example\r\nMAIL FROM:<robot>\r\n", timeout=2)
        self.assertIn(b"501 5.1.7", out)

    def test_an_unqualified_domain_that_is_no_domain_is_refused_at_check(self):
        tmp = tempfile.mkdtemp(prefix="bindery-unqualified-")
        self.addCleanup(shutil.rmtree, tmp, True)
        conf = os.path.join(tmp, "u.conf")
        with open(conf, "w") as f:
            f.write('Domain_For_Unqualified_Sender_Address = "not a domain"\n'
                    'ESMTP_Listener {\n  Listen "127.0.0.1:0" { }\n}\n')
        out = subprocess.run([BIN, "config", "check", "-c", conf], capture_output=True, text=True)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("u.conf:1:", out.stdout)
        self.assertIn("is not a domain name", out.stdout)

    def test_a_static_banner_without_220_is_refused_at_check(self):
        tmp = tempfile.mkdtemp(prefix="bindery-banner-")
        self.addCleanup(shutil.rmtree, tmp, True)
        conf = os.path.join(tmp, "b.conf")
        with open(conf, "w") as f:
            f.write('ESMTP_Listener {\n  Static_Banner = "mx ready"\n  Listen "127.0.0.1:0" { }\n}\n')
        out = subprocess.run([BIN, "config", "check", "-c", conf], capture_output=True, text=True)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("b.conf:2:3", out.stdout)
        self.assertIn("is not a 220 greeting line", out.stdout)


class Send8BitMime(SinkSuite):
    NAME = "8bitmime"
    DNS_EXTRA = ("--mx-host=two.test,mx.one.test,10",)

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
domain "two.test" {{ Remote_SMTP_Port = {cls.sink.port} Send_8BitMIME = ifavailable }}
"""

    def deliver(self, rcpt, body):
        msg = (f"From: a@origin.test\r\nTo: {rcpt}\r\nSubject: 8bit\r\n"
               "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
               "\r\n").encode() + body
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=20) as s:
            s.sendmail("a@origin.test", [rcpt], msg)
        self.wait_until(lambda: any(rcpt in m["rcpts"] for m in self.sink.got), 20, rcpt)
        return next(m for m in self.sink.got if rcpt in m["rcpts"])

    def test_body_8bitmime_only_where_the_domain_says_ifavailable(self):
        eight = "Grüße aus Köln\r\n".encode()
        announced = self.deliver("x@two.test", eight)
        self.assertIn("BODY=8BITMIME", announced["mail_options"])
        self.assertTrue(announced["data"].endswith(eight), announced["data"][-40:])
        quiet = self.deliver("y@one.test", eight)
        self.assertNotIn("BODY=8BITMIME", quiet["mail_options"])
        self.assertTrue(quiet["data"].endswith(eight), "the body goes as it is")
        ascii_only = self.deliver("z@two.test", b"plain\r\n")
        self.assertNotIn("BODY=8BITMIME", ascii_only["mail_options"])

    def test_check_refuses_a_value_momentum_does_not_have(self):
        refused_at(self, 'domain "two.test" {\n  Send_8BitMIME = always\n}\n', 2)


class LmtpServer:
    """aiosmtpd's LMTP server on 127.0.0.24 in a thread: after the dot it answers each
    recipient on its own line, 550 for a `reject` local part, 250 for the others."""

    class Handler:
        def __init__(self):
            self.got = []

        async def handle_DATA(self, server, session, envelope):
            self.got.append((session.host_name, list(envelope.rcpt_tos)))
            return "\r\n".join(
                f"550 5.1.1 <{r}> mailbox disabled" if r.startswith("reject")
                else f"250 2.0.0 <{r}> delivered" for r in envelope.rcpt_tos)

    def __init__(self):
        from aiosmtpd.lmtp import LMTP
        self.handler = LmtpServer.Handler()
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(self.loop.create_server(
                lambda: LMTP(self.handler, hostname="lmtp.test"), "127.0.0.24", self.port))
            ready.set()
            self.loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)

    def stop(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


class LmtpDelivery(SinkSuite):
    NAME = "lmtp"

    @classmethod
    def prepare(cls):
        cls.lmtp = LmtpServer()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.lmtp.stop()

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
domain "store.test" {{
  Delivery_Method = LMTP
  LMTP_Port = {cls.lmtp.port}
  Gateway = "127.0.0.24"
}}
"""

    def test_each_recipient_gets_its_own_reply(self):
        rcpts = ["a@store.test", "reject@store.test", "b@store.test"]
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=20) as s:
            s.sendmail("x@origin.test", rcpts, b"Subject: lmtp\r\n\r\nhi\r\n")
        self.wait_until(lambda: len(self.d.records("delivery")) >= 2
                        and self.d.records("permanent"), 20, "LMTP outcomes")
        self.assertEqual(self.lmtp.handler.got, [("mx.bindery.test", rcpts)],
                         "one transaction, greeted with LHLO")
        delivered = sorted(r["rcpt"] for r in self.d.records("delivery"))
        self.assertEqual(delivered, ["a@store.test", "b@store.test"])
        failed = self.d.records("permanent")
        self.assertEqual([r["rcpt"] for r in failed], ["reject@store.test"])
        self.assertTrue(failed[0]["reply"].startswith("550 5.1.1 <reject@store.test>"), failed)
        for r in self.d.records("delivery"):
            self.assertEqual(r["remote_ip"], "127.0.0.24")
            self.assertIn(r["rcpt"], r["reply"], "its own reply, not the first one")

    def test_check_refuses_a_method_bindery_does_not_send(self):
        refused_at(self, 'domain "gcm.example" {\n  Delivery_Method = "gcm"\n}\n', 2)


class DelayNotices(SinkSuite):
    NAME = "delay-dsn"

    @classmethod
    def prepare(cls):
        from deliver import Sink
        # origin.test's MX (127.0.0.23 in the suite's dnsmasq): where the notices go.
        cls.senders = Sink("127.0.0.23")

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
delay_dsn "delay_dsn1" {{ }}
Generate_Delay_DSN = true
Delay_DSN_Retry_Interval = 2
domain "origin.test" {{ Remote_SMTP_Port = {cls.senders.port} }}
"""

    def test_a_waiting_message_brings_its_sender_a_delay_notice(self):
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=20) as s:
            s.sendmail("x@origin.test", ["always@one.test"],
                       b"Subject: waiting\r\nMessage-ID: <w1@origin.test>\r\n\r\nhi\r\n")
        self.wait_until(lambda: self.senders.got, 20, "a delay notice")
        got = self.senders.got[0]
        self.assertEqual((got["from"], got["rcpts"]), ("<>", ["x@origin.test"]))
        msg = email.message_from_bytes(got["data"], policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertEqual(str(msg["Subject"]), "Delayed Mail (still being retried)")
        status = next(p for p in msg.walk() if p.get_content_type() == "message/delivery-status")
        groups = status.get_payload()
        per_rcpt = groups[1]
        self.assertEqual(per_rcpt["Action"], "delayed")
        self.assertEqual(per_rcpt["Status"], "4.2.0")
        self.assertEqual(per_rcpt["Final-Recipient"], "rfc822; always@one.test")
        self.assertIn("451 4.2.0 mailbox busy", per_rcpt["Diagnostic-Code"])
        self.assertTrue(per_rcpt["Will-Retry-Until"], per_rcpt)
        made = self.d.records("delay_dsn")
        self.assertTrue(made, "the mainlog records the notice")
        self.assertEqual((made[0]["to"], made[0]["rcpts"]), ("x@origin.test", ["always@one.test"]))

    def test_check_refuses_generate_delay_dsn_without_the_module(self):
        out = refused_at(self, 'domain "slow.example" {\n  Generate_Delay_DSN = true\n}\n', 2)
        self.assertIn("delay_dsn", out)


class SmtpSink:
    """Postfix's smtp-sink on 127.0.0.26, logging each command it reads (`-v`) to a file;
    `-C` takes XCLIENT out of its EHLO reply."""

    def __init__(self, tmp, *flags):
        self.port = free_port()
        self.err = os.path.join(tmp, f"smtp-sink-{self.port}.log")
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        with open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                ["smtp-sink", "-v", *user, *flags, f"127.0.0.26:{self.port}", "10"],
                stderr=err)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.26", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("smtp-sink did not start")

    def commands(self):
        """The commands it read, in order (`smtp-sink: ` lines after the connect)."""
        with open(self.err) as f:
            return [l.split("smtp-sink: ", 1)[1].rstrip("\n") for l in f
                    if l.startswith("smtp-sink: ")]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Xclient(unittest.TestCase):
    """`XClient` (Momentum's outbound XCLIENT, SparkPost/support-docs
    content/momentum/4/config/ref-xclient.md) against Postfix's smtp-sink: before each message
    the client it came from (127.0.0.5, which said EHLO client.example) is passed on in the
    attributes the sink offers (NAME and HELO), then EHLO again, then the transaction."""

    def setUp(self):
        if shutil.which("smtp-sink") is None:
            self.skipTest("no smtp-sink (Debian's postfix package)")
        self.tmp = tempfile.mkdtemp(prefix="bindery-xclient-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def relay(self, sink, mode):
        d = Daemon(self.tmp, config=f"""
Relay_Hosts = ( 127.0.0.0/8 )
Retry_Interval = 600
domain "x.test" {{
  Gateway = "127.0.0.26:{sink.port}"
  XClient = "{mode}"
}}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
""")
        with d.smtp(source=("127.0.0.5", 0)) as s:
            s.ehlo("client.example")
            s.sendmail("a@origin.test", ["b@x.test"], b"Subject: xclient\r\n\r\nhi\r\n")
        return d

    def wait_for(self, d, kind):
        deadline = time.time() + 20
        while time.time() < deadline:
            got = d.records(kind)
            if got:
                return got
            time.sleep(0.05)
        self.fail(f"no {kind} record: {d.records()}")

    def test_ifavailable_passes_the_origin_on_before_mail(self):
        sink = SmtpSink(self.tmp)
        d = self.relay(sink, "ifavailable")
        try:
            self.wait_for(d, "delivery")
            cmds = sink.commands()
            i = cmds.index("XCLIENT NAME=[UNAVAILABLE] HELO=client.example")
            self.assertEqual(cmds[i + 1].upper(), "EHLO MX.BINDERY.TEST", cmds)
            self.assertEqual(cmds[i + 2].upper(), "MAIL FROM:<A@ORIGIN.TEST>", cmds)
            self.assertEqual(cmds[i - 1].upper(), "EHLO MX.BINDERY.TEST", "after the first EHLO")
        finally:
            d.stop()
            sink.stop()

    def test_required_defers_where_it_is_not_offered(self):
        sink = SmtpSink(self.tmp, "-C")
        d = self.relay(sink, "required")
        try:
            rec = self.wait_for(d, "transient")[0]
            self.assertEqual(rec["reply"],
                             "451 4.7.0 XCLIENT required but not offered by the remote host")
            self.assertNotIn("data", [c.split()[0].lower() for c in sink.commands() if c])
        finally:
            d.stop()
            sink.stop()

    def test_check_refuses_another_value(self):
        refused_at(self, 'XClient = "maybe"\n', 1)


class Transform8BitMime(unittest.TestCase):
    """`Transform_8BitMIME_Content` (SparkPost/support-docs content/momentum/3/3-reference/
    3-reference-conf-ref-transform-8-bitmime-content.md; `ifneeded` is the default since
    3.1.6) against Postfix's smtp-sink told not to offer 8BITMIME (`-8`), its dumps (`-d`)
    read with Python's `email`: `strict` re-encodes the 8-bit part as quoted-printable (and
    the text decodes to what was sent), `ifneeded` strips the high bit, `no` sends the bytes
    as they are, and `strict` fails a message with an 8-bit header permanently."""

    TEXT = "caf\u00e9 cr\u00e8me = good"

    def setUp(self):
        if shutil.which("smtp-sink") is None:
            self.skipTest("no smtp-sink (Debian's postfix package)")
        self.tmp = tempfile.mkdtemp(prefix="bindery-8bit-")
        # smtp-sink writes its dumps as nobody when started as root.
        os.chmod(self.tmp, 0o755)
        self.dumps = os.path.join(self.tmp, "dumps")
        os.makedirs(self.dumps)
        os.chmod(self.dumps, 0o777)
        self.sink = SmtpSink(self.tmp, "-8", "-d", os.path.join(self.dumps, "%M."))
        self.d = Daemon(self.tmp, config=f"""
Relay_Hosts = ( 127.0.0.0/8 )
Retry_Interval = 600
Gateway = "127.0.0.26:{self.sink.port}"
domain "strict.test" {{ Transform_8BitMIME_Content = strict }}
domain "asis.test" {{ Transform_8BitMIME_Content = no }}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
""")

    def tearDown(self):
        self.d.stop()
        self.sink.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def message(self, subject="t"):
        return (f"From: a@origin.test\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\n"
                f"Content-Transfer-Encoding: 8bit\r\n\r\n{self.TEXT}\r\n").encode()

    def dumped(self, rcpt):
        """The message the sink got for `rcpt`, as bytes after its own X- headers."""
        deadline = time.time() + 20
        while time.time() < deadline:
            for name in os.listdir(self.dumps):
                with open(os.path.join(self.dumps, name), "rb") as f:
                    raw = f.read()
                if f"X-Rcpt-Args: <{rcpt}>".encode() in raw and raw.endswith(b"\n\n"):
                    # The sink's own headers end with its Received, three lines long.
                    lines = raw.split(b"\n")
                    at = next(i for i, l in enumerate(lines) if l.startswith(b"Received: from "))
                    return b"\n".join(lines[at + 3:])
            time.sleep(0.05)
        self.fail(f"nothing dumped for {rcpt}: {os.listdir(self.dumps)}")

    def send(self, rcpt, msg):
        with self.d.smtp() as s:
            s.sendmail("a@origin.test", [rcpt], msg)

    def test_strict_encodes_quoted_printable(self):
        self.send("x@strict.test", self.message())
        raw = self.dumped("x@strict.test")
        self.assertTrue(raw.isascii(), raw)
        m = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(m["Content-Transfer-Encoding"], "quoted-printable")
        self.assertEqual(m.get_content().rstrip("\n"), self.TEXT)

    def test_ifneeded_strips_the_high_bit(self):
        self.send("x@default.test", self.message())
        raw = self.dumped("x@default.test")
        self.assertTrue(raw.isascii(), raw)
        want = bytes(b & 0x7F for b in self.TEXT.encode())
        self.assertIn(want, raw)

    def test_no_sends_the_bytes_as_they_are(self):
        self.send("x@asis.test", self.message())
        self.assertIn(self.TEXT.encode(), self.dumped("x@asis.test"))

    def test_strict_fails_an_8bit_header(self):
        self.send("y@strict.test", self.message(subject="caf\u00e9"))
        deadline = time.time() + 20
        while time.time() < deadline and not self.d.records("permanent"):
            time.sleep(0.05)
        rec = self.d.records("permanent")
        self.assertTrue(rec, self.d.records())
        self.assertTrue(rec[0]["reply"].startswith("554 5.6.3 "), rec)


if __name__ == "__main__":
    unittest.main(verbosity=2)
