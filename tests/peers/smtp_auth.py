"""SMTP AUTH on the ESMTP listener (issue 21), against real clients: swaks --auth PLAIN and
LOGIN with --tls, Python smtplib's login() (which picks CRAM-MD5 when offered), and raw sockets
for what clients do not do on their own.

The listener offers PLAIN against a Momentum digest file (`digest://`, USER:REALM:HA1),
LOGIN against a `crypt://` file (SHA-512 crypt from `openssl passwd -6`, bcrypt from
`htpasswd -B` when apache2-utils is there) and CRAM-MD5 against a clear-text `file://`.
No client address is in Relay_Hosts: only a login lets a client relay.

Peers: 127.0.0.3 may log in without TLS (Allow_Plaintext_Auth); 127.0.0.4 is Always_Deny;
127.0.0.5 is where the guessing test runs, with the default one-second failure delay.

Run: cd tests/peers && BINDERY_BIN=.../bindery python3 smtp_auth.py
"""

import base64
import hashlib
import json
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from aiosmtpd.smtp import SMTP, AuthResult

from common import BIN, MSG, Daemon, queued_id
from deliver import ASSIGN_BY_HEADER, Sink, SinkSuite, relay_to_sink

PASSWORD = "Tr0ub4dor-and-3"
WRONG = "Correct-Horse-Battery"

SCRIPT = r"""
local mod = {}
function mod:validate_data_spool(msg, ac, vctx)
  local who = msg:context_get(msys.core.VCTX_CONN, "auth_user")
  local how = msg:context_get(msys.core.VCTX_CONN, "auth_name")
  local relay = msg:context_get(msys.core.VCTX_CONN, "can_relay")
  msg:header("X-Auth-Seen", who .. " " .. how .. " " .. relay)
  return msys.core.VALIDATE_CONT
end
msys.registerModule("seen", mod)
"""


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def b64(s):
    return base64.b64encode(s.encode()).decode()


class InboundAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bindery-auth-")
        t = cls.tmp
        cert, key = os.path.join(t, "cert.pem"), os.path.join(t, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=mx.bindery.test", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        # Momentum's digest file: USER:REALM:hex(MD5(USER:REALM:PASSWORD)).
        ha1 = hashlib.md5(f"alice:mail:{PASSWORD}".encode()).hexdigest()
        with open(os.path.join(t, "digest"), "w") as f:
            f.write(f"# ec_md5passwd -r mail\nalice:mail:{ha1}\n")
        sha512 = subprocess.run(["openssl", "passwd", "-6", PASSWORD], check=True,
                                capture_output=True, text=True).stdout.strip()
        lines = [f"alice:{sha512}"]
        cls.bcrypt = shutil.which("htpasswd") is not None
        if cls.bcrypt:
            line = subprocess.run(["htpasswd", "-nbB", "-C", "5", "bob", PASSWORD], check=True,
                                  capture_output=True, text=True).stdout.strip()
            lines.append(line)
        with open(os.path.join(t, "crypt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(t, "clear"), "w") as f:
            f.write(f"alice:{PASSWORD}\n")
        with open(os.path.join(t, "seen.lua"), "w") as f:
            f.write(SCRIPT)
        cls.d = Daemon(t, config=f"""
Relay_Domains = ( "rcpt.example" )
Suspend_Delivery = true
ec_logger "ec_logger" {{ acctlog = "{t}/acctlog.ec" }}
Control_Listener {{ Listen "{t}/bindery.sock" {{ }} }}
scriptlet "scriptlet" {{ script "seen" {{ source = "{t}/seen.lua" }} }}
ESMTP_Listener {{
  TLS_Certificate = "{cert}"
  TLS_Key = "{key}"
  Listen "127.0.0.1:0" {{
    SMTP_Extensions = ( "ENHANCEDSTATUSCODES" "AUTH PLAIN" "AUTH LOGIN" "AUTH CRAM-MD5" )
    AuthPlainParameters = [ uri = "digest://{t}/digest" realm = "mail" log_authentication = true ]
    AuthLoginParameters = [ uri = "crypt://{t}/crypt" ]
    AuthCramMD5Parameters = [ uri = "file://{t}/clear" ]
    Auth_Failure_Delay = 0
    Peer "127.0.0.3/32" {{ Allow_Plaintext_Auth = true }}
    Peer "127.0.0.4/32" {{ Always_Deny = true }}
    Peer "127.0.0.5/32" {{ Auth_Failure_Delay = 1 }}
  }}
}}
""")

    @classmethod
    def tearDownClass(cls):
        code = cls.d.stop()
        assert code == 0, f"daemon exit {code}: {cls.d.stderr_text()}"
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def swaks(self, *args, source="127.0.0.1"):
        if shutil.which("swaks") is None:
            self.fail("swaks is not installed (apt-get install swaks)")
        return subprocess.run(["swaks", "--server", f"127.0.0.1:{self.d.port}", "--li", source,
                               "--from", "a@sender.example", "--to", "b@elsewhere.example",
                               *args], capture_output=True, text=True, timeout=60)

    def console(self, *words, json_out=False):
        return subprocess.run([BIN, "console", "-s", os.path.join(self.tmp, "bindery.sock")]
                              + (["--json"] if json_out else []) + list(words),
                              capture_output=True, text=True, check=True).stdout

    def test_swaks_plain_and_login_over_tls_may_relay(self):
        users = [("PLAIN", "alice"), ("LOGIN", "alice")] + ([("LOGIN", "bob")] if self.bcrypt
                                                             else [])
        for mech, user in users:
            out = self.swaks("--tls", "--auth", mech, "--auth-user", user, "--auth-password",
                             PASSWORD)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("235 2.7.0 Authentication successful", out.stdout)
            msg_id = re.search(r"queued as ([0-9A-F]{16})", out.stdout).group(1)
            body = self.d.body(msg_id)
            self.assertIn(b"with ESMTPSA id " + msg_id.encode(), body)
            self.assertIn(f"X-Auth-Seen: {user} {mech} true".encode(), body)
            # Momentum's inbound-smtp page: an Authentication-Results header for the login.
            self.assertIn(f"Authentication-Results: mx.bindery.test;\r\n\tauth=pass smtp.auth={user}"
                          .encode(), body)
        if not self.bcrypt:
            self.skipTest("htpasswd (apache2-utils) missing: bcrypt not tried")

    def test_smtplib_login_uses_cram_md5_and_plain(self):
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as s:
            s.starttls(context=tls_context())
            s.ehlo("client.example")
            self.assertIn("CRAM-MD5", s.esmtp_features["auth"])
            code, _ = s.login("alice", PASSWORD)  # smtplib prefers CRAM-MD5
            self.assertEqual(code, 235)
            s.sendmail("a@sender.example", ["b@elsewhere.example"], MSG)
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as s:
            s.starttls(context=tls_context())
            s.ehlo("client.example")
            s.user, s.password = "alice", PASSWORD
            code, _ = s.auth("PLAIN", s.auth_plain)
            self.assertEqual(code, 235)
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as s:
            s.starttls(context=tls_context())
            s.ehlo("client.example")
            with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
                s.login("alice", WRONG)
            self.assertEqual(e.exception.smtp_code, 535)

    def test_no_auth_before_starttls_unless_allowed(self):
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as s:
            s.ehlo("client.example")
            self.assertFalse(s.has_extn("auth"))
            code, text = s.docmd("AUTH", "PLAIN " + b64(f"\0alice\0{PASSWORD}"))
            self.assertEqual((code, text[:6]), (538, b"5.7.11"))
            s.mail("a@sender.example")
            code, _ = s.rcpt("b@elsewhere.example")
            self.assertEqual(code, 550, "no login, no relay")
        # The trusted peer may log in in the clear.
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10,
                          source_address=("127.0.0.3", 0)) as s:
            s.ehlo("client.example")
            self.assertTrue(s.has_extn("auth"))
            code, _ = s.docmd("AUTH", "PLAIN " + b64(f"\0alice\0{PASSWORD}"))
            self.assertEqual(code, 235)
            s.mail("a@sender.example")
            self.assertEqual(s.rcpt("b@elsewhere.example")[0], 250)
        out = self.swaks("--auth", "PLAIN", "--auth-user", "alice", "--auth-password", PASSWORD)
        self.assertNotEqual(out.returncode, 0)

    def test_always_deny_refuses_the_right_password(self):
        out = self.swaks("--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password",
                         PASSWORD, source="127.0.0.4")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("535 5.7.8", out.stdout)

    def test_failures_are_logged_without_the_password(self):
        out = self.swaks("--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password",
                         WRONG)
        self.assertIn("535 5.7.8 Authentication credentials invalid", out.stdout)
        self.d.wait_log(r"(SMTP AUTH failed)")
        # The acctlog has an N record per PLAIN login (log_authentication = true).
        with open(os.path.join(self.tmp, "acctlog.ec")) as f:
            acct = f.read()
        self.assertRegex(acct, r"\d+@N@127\.0\.0\.1:\d+@127\.0\.0\.1@alice@0")
        summary = self.console("injection", "summary")
        self.assertRegex(summary, r"smtp\s+alice\s+\d+\s+[1-9]")
        as_json = self.console("injection", "summary", json_out=True)
        self.assertIn('"failed_logins"', as_json)
        for text in (self.d.stderr_text(), acct, summary, as_json):
            for secret in (PASSWORD, WRONG, b64(f"\0alice\0{WRONG}")):
                self.assertNotIn(secret, text)

    def test_a_hundred_guesses_are_slowed_and_locked_out(self):
        """Ten connections from 127.0.0.5 guess ten times each. Each failure waits a second;
        after ten failures the address is locked out (454, nothing checked), so even the
        right password is refused, and the hundred guesses take ten seconds, not a blink."""
        replies = []
        lock = threading.Lock()

        def guesser(n):
            # Not `with`: the tenth error in a session ends it with 421, which smtplib's
            # QUIT on exit would raise.
            s = smtplib.SMTP("127.0.0.1", self.d.port, timeout=30,
                             source_address=("127.0.0.5", 0))
            try:
                s.starttls(context=tls_context())
                s.ehlo("guesser.example")
                for i in range(10):
                    code, _ = s.docmd("AUTH", "PLAIN " + b64(f"\0alice\0guess-{n}-{i}"))
                    with lock:
                        replies.append(code)
            finally:
                s.close()

        start = time.monotonic()
        threads = [threading.Thread(target=guesser, args=(n,)) for n in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        elapsed = time.monotonic() - start
        checked = replies.count(535)
        locked = replies.count(454)
        self.assertEqual(len(replies), 100, replies)
        self.assertGreaterEqual(checked, 10)
        self.assertLessEqual(checked, 19, "at most one guess per connection after the tenth")
        self.assertEqual(checked + locked, 100)
        self.assertGreaterEqual(elapsed, 9.0, "every refusal waited Auth_Failure_Delay")
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30,
                          source_address=("127.0.0.5", 0)) as s:
            s.starttls(context=tls_context())
            s.ehlo("guesser.example")
            code, text = s.docmd("AUTH", "PLAIN " + b64(f"\0alice\0{PASSWORD}"))
            self.assertEqual(code, 454, text)
        self.d.wait_log(r"(SMTP AUTH refused: too many failed logins)")


class AuthSink(Sink):
    """An aiosmtpd smarthost that offers STARTTLS and wants a login after it (AUTH PLAIN and
    LOGIN): `relay` / `smarthost-secret`, and `xoauth` nowhere. Every login tried is kept."""

    USERS = {"relay": "smarthost-secret", "SMTP_Injection": "api-key-0123",
             "tenant-a": "pass-a", "tenant-b": "pass-b"}

    def __init__(self, ip):
        self.dir = tempfile.mkdtemp(prefix="bindery-authsink-")
        cert, key = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=smarthost.test", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.logins = []
        super().__init__(ip, tls_context=ctx)

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        user = auth_data.login.decode()
        ok = self.USERS.get(user) == auth_data.password.decode()
        self.logins.append((mechanism, user, ok, session.ssl is not None))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def _session(self):
        s = SMTP(self.handler, hostname=f"sink-{self.ip}", tls_context=self.tls_context,
                 require_starttls=True, auth_required=True, auth_require_tls=True,
                 authenticator=self.authenticate)
        self.sessions.append(s)
        return s

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)




def deferred(suite, rcpt):
    """The first transient record for `rcpt`, waited for (20 s)."""
    def found():
        return [r for r in suite.d.records("transient") if r.get("rcpt") == rcpt]
    suite.wait_until(found, 20, f"no transient record for {rcpt}: {suite.d.records()} "
                                f"{suite.sink.logins}")
    return found()[0]


class OutboundAuth(SinkSuite):
    """Momentum's outbound_smtp_auth: bindery logs in to an aiosmtpd smarthost that wants
    AUTH after STARTTLS. Binding `spe` is the SparkPost relay example of
    SparkPost/momentum_sample_policy sparkpost-relay (LOGIN, `tls = required` on its gateway
    domain); binding `plain` logs in with PLAIN set in the binding; binding `wrong` has a
    wrong password, so its mail waits (transient, the 535 in the log) instead of bouncing."""

    NAME = "outbound-auth"
    SCRIPT = ASSIGN_BY_HEADER
    SINK = AuthSink

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
outbound_smtp_auth {{
  debug_level = DEBUG
}}
scriptlet "scriptlet" {{ script "assign" {{ source = "{cls.tmp}/assign.lua" }} }}
domain "#spe_relay" {{
  routes = ( "smtp://127.0.0.20:{cls.sink.port}" )
  tls = "required"
}}
binding "spe" {{
  gateway = "#spe_relay"
  Outbound_SMTP_AUTH_Type = "LOGIN"
  Outbound_SMTP_AUTH_User = "SMTP_Injection"
  Outbound_SMTP_AUTH_Pass = "api-key-0123"
}}
binding "plain" {{
  gateway = "#spe_relay"
  Outbound_SMTP_AUTH_Type = "PLAIN"
  Outbound_SMTP_AUTH_User = "relay"
  Outbound_SMTP_AUTH_Pass = "smarthost-secret"
}}
binding "wrong" {{
  gateway = "#spe_relay"
  Outbound_SMTP_AUTH_Type = "PLAIN"
  Outbound_SMTP_AUTH_User = "relay"
  Outbound_SMTP_AUTH_Pass = "not-the-password"
}}
"""

    def send(self, binding, rcpt):
        msg = (f"From: sender@origin.test\r\nTo: {rcpt}\r\nX-Binding: {binding}\r\n"
               "Subject: via the smarthost\r\n\r\nHello.\r\n")
        with self.session() as s:
            s.sendmail("sender@origin.test", [rcpt], msg)

    def test_login_and_plain_through_the_smarthost(self):
        self.send("spe", "spe@one.test")
        self.send("plain", "plain@one.test")
        self.arrived("spe@one.test")
        self.arrived("plain@one.test")
        self.assertIn(("LOGIN", "SMTP_Injection", True, True), self.sink.logins)
        self.assertIn(("PLAIN", "relay", True, True), self.sink.logins)

    def test_a_wrong_password_defers_and_logs_the_reply(self):
        self.send("wrong", "wrong@one.test")
        rec = deferred(self, "wrong@one.test")
        self.assertIn("535", rec["reply"])
        self.assertTrue(rec["reply"].startswith("4"), rec)
        self.assertFalse([r for r in self.d.records() if r.get("rcpt") == "wrong@one.test"
                          and r["type"] in ("failure", "bounce", "delivery")])
        self.assertIn(("PLAIN", "relay", False, True), self.sink.logins)
        for text in (self.d.stderr_text(), json.dumps(self.d.records())):
            self.assertNotIn("not-the-password", text)
            self.assertNotIn("smarthost-secret", text)


TENANT_HOOK = ASSIGN_BY_HEADER.replace('msys.registerModule("assign", mod)', r"""
-- Momentum's outbound_smtp_auth_config hook: the login of each message, looked up in a
-- table by the Outbound_SMTP_AUTH_Key of its binding and by its recipient's domain.
local tenants = { ["a.test"] = { "tenant-a", "pass-a" }, ["b.test"] = { "tenant-b", "pass-b" } }
function mod:outbound_smtp_auth_config(msg)
  local ctx = msys.core.VCTX_MESS
  if msg:context_get(ctx, "outbound_smtp_auth_key") ~= "tenant-table" then return end
  local domain = string.match(msg:rcptto(), "@(.+)$")
  local t = tenants[domain]
  if t then
    msg:context_set(ctx, "outbound_smtp_auth_user", t[1])
    msg:context_set(ctx, "outbound_smtp_auth_pass", t[2])
  end
end
function mod:validate_data_spool(msg, ac, vctx)
  -- A login a script sets at reception is kept with the message (Momentum: "overridden by
  -- setting message context variables with the same name as the options").
  if #msg:header("X-Relay-Login") > 0 then
    msg:context_set(msys.core.VCTX_MESS, "outbound_smtp_auth_user", "relay")
    msg:context_set(msys.core.VCTX_MESS, "outbound_smtp_auth_pass", "smarthost-secret")
  end
  return msys.core.VALIDATE_CONT
end
msys.registerModule("assign", mod)
""")


class OutboundAuthHook(SinkSuite):
    """Per-message logins: Momentum's `outbound_smtp_auth_config(msg)` hook picks each
    message's user from its `Outbound_SMTP_AUTH_Key` and its recipient's domain, so mail to
    a.test and b.test on one binding reaches the smarthost on two logins; a login set in
    `validate_data_spool` is kept with the message and used too; one the hook cannot find
    falls back to the binding's own (a wrong one here), which defers."""

    NAME = "outbound-auth-hook"
    SCRIPT = TENANT_HOOK
    SINK = AuthSink

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
outbound_smtp_auth {{ }}
scriptlet "scriptlet" {{ script "assign" {{ source = "{cls.tmp}/assign.lua" }} }}
domain "#relay" {{
  routes = ( "smtp://127.0.0.20:{cls.sink.port}" )
  tls = "required"
}}
binding "tenants" {{
  gateway = "#relay"
  Outbound_SMTP_AUTH_Type = "PLAIN"
  Outbound_SMTP_AUTH_Key = "tenant-table"
  Outbound_SMTP_AUTH_User = "nobody"
  Outbound_SMTP_AUTH_Pass = "no-such-password"
}}
"""

    def send(self, rcpt, extra=""):
        msg = (f"From: sender@origin.test\r\nTo: {rcpt}\r\nX-Binding: tenants\r\n{extra}"
               "Subject: per-message login\r\n\r\nHello.\r\n")
        with self.session() as s:
            s.sendmail("sender@origin.test", [rcpt], msg)

    def test_each_message_logs_in_as_the_hook_says(self):
        for rcpt in ("one@a.test", "two@b.test", "three@a.test"):
            self.send(rcpt)
        self.send("four@c.test", "X-Relay-Login: yes\r\n")
        got = {r: self.arrived(r) for r in ("one@a.test", "two@b.test", "three@a.test",
                                              "four@c.test")}
        users = {r: m["user"] for r, m in got.items()}
        self.assertEqual(users, {"one@a.test": "tenant-a", "two@b.test": "tenant-b",
                                 "three@a.test": "tenant-a", "four@c.test": "relay"})
        self.assertTrue(all(m["tls"] for m in got.values()))
        for text in (self.d.stderr_text(), json.dumps(self.d.records())):
            for secret in ("pass-a", "pass-b", "smarthost-secret"):
                self.assertNotIn(secret, text)

    def test_no_tenant_falls_back_to_the_binding_login(self):
        self.send("five@d.test")
        deferred(self, "five@d.test")
        self.assertIn(("PLAIN", "nobody", False, True), self.sink.logins)


class ConfigErrors(unittest.TestCase):
    """What `config check` says about AUTH that could not work."""

    def check(self, body):
        with tempfile.TemporaryDirectory() as t:
            conf = os.path.join(t, "bindery.conf")
            with open(conf, "w") as f:
                f.write(f'Spoolbase = "{t}/spool"\n' + body.replace("TMP", t))
            return subprocess.run([BIN, "config", "check", "-c", conf], capture_output=True,
                                  text=True)

    def test_refusals(self):
        cases = [
            ('ESMTP_Listener { Listen "127.0.0.1:0" { SMTP_Extensions = ( "AUTH PLAIN" ) '
             'Allow_Plaintext_Auth = true } }', "no AuthPlainParameters"),
            ('ESMTP_Listener { Listen "127.0.0.1:0" { SMTP_Extensions = ( "AUTH PLAIN" ) '
             'AuthPlainParameters = [ uri = "file://TMP/missing" ] Allow_Plaintext_Auth = true } }',
             "cannot use the password file"),
            ('ESMTP_Listener { Listen "127.0.0.1:0" { SMTP_Extensions = ( "AUTH DIGEST-MD5" ) } }',
             "RFC 6331"),
            ('ESMTP_Listener { Listen "127.0.0.1:0" { SMTP_Extensions = ( "AUTH PLAIN" ) '
             'AuthPlainParameters = [ url = "file:///etc/passwd" ] } }', "did you mean `uri`"),
        ]
        cases += [
            ('binding "b" { Outbound_SMTP_AUTH_Type = "LOGIN" Outbound_SMTP_AUTH_User = "u" '
             'Outbound_SMTP_AUTH_Pass = "p" }', "needs Momentum's outbound_smtp_auth module"),
            ('outbound_smtp_auth { }\nbinding "b" { Outbound_SMTP_AUTH_Type = "LOGIN" '
             'Outbound_SMTP_AUTH_User = "u" }', "Outbound_SMTP_AUTH_Pass is not"),
            ('outbound_smtp_auth { }\ndomain "d.test" { Outbound_SMTP_AUTH_Key = "k" }',
             "the policy defines none"),
        ]
        for body, expected in cases:
            out = self.check(body)
            self.assertNotEqual(out.returncode, 0, body)
            self.assertIn(expected, out.stdout + out.stderr, body)


if __name__ == "__main__":
    unittest.main()
