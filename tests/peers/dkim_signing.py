"""DKIM signing by the `opendkim` module (issue 20), through the daemon, checked by real
verifiers: every signature on what the sink receives is verified by python3-dkim (Debian's,
under /usr/bin/python3, which knows Ed25519) and, for RSA, by Perl's Mail::DKIM, with the public
keys served as TXT records by dnsmasq on loopback.

Responsible domains pick the key and canonicalization (`dkim_domain` stanzas):
  a.sign.test  RSA 1024 simple/simple    b.sign.test  RSA 2048 relaxed/relaxed + Ed25519
  c.sign.test  RSA 4096 relaxed/simple   corp.d.sign.test  signs as d.sign.test (base_domain)
Binding "signer" signs; binding "plain" has `domain "one.test" { opendkim_sign = false }`.

Run: cd tests/peers && BINDERY_BIN=.../bindery python3 dkim_signing.py
"""

import json
import os
import re
import shutil
import smtplib
import subprocess
import unittest

from aiosmtpd.smtp import SMTP

from common import BIN
import dkim_verify
from deliver import ASSIGN_BY_HEADER, Sink, SinkSuite, relay_to_sink


HEADERS = '( "from" "to" "subject" "date" "message-id" "mime-version" "content-type" )'


class LongLines(SMTP):
    line_length_limit = 1 << 20


class LongLineSink(Sink):
    """Takes lines of any length (aiosmtpd refuses those over RFC 5321's 1,000 characters,
    and the large-body case has 4,000-character lines, as real mail sometimes does)."""

    def _session(self):
        s = LongLines(self.handler, hostname=f"sink-{self.ip}", enable_SMTPUTF8=True)
        self.sessions.append(s)
        return s


class ConfigSigning(dkim_verify.WithKeys, SinkSuite):
    NAME = "dkim-config"
    SCRIPT_FILE = "assign.lua"
    SCRIPT = ASSIGN_BY_HEADER
    SINK = LongLineSink
    # (signing domain, selector, openssl genpkey args)
    KEYS = [
        ("a.sign.test", "s1024", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]),
        ("b.sign.test", "s2048", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        ("b.sign.test", "sed", ["-algorithm", "ED25519"]),
        ("c.sign.test", "s4096", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"]),
        ("d.sign.test", "s2048", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        ("z.sign.test", "s2048", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        ("z.sign.test", "sed", ["-algorithm", "ED25519"]),
    ]

    @classmethod
    def publish(cls):
        for domain, selector, args in cls.KEYS:
            os.makedirs(os.path.join(cls.keydir, domain), exist_ok=True)
            path = os.path.join(cls.keydir, domain, f"{selector}.key")
            yield dkim_verify.published(domain, selector, path, ["genpkey", *args, "-out"])

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
binding "signer" {{ Bind_Address = 127.0.0.2 }}
binding "plain" {{
  Bind_Address = 127.0.0.3
  domain "one.test" {{ opendkim_sign = false }}
}}
scriptlet "scriptlet" {{ script "assign" {{ source = "assign" }} }}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
Control_Listener {{ Listen "{cls.tmp}/bindery.sock" {{ }} }}
opendkim "rsa" {{
  headerlist = {HEADERS}
  oversign_headerlist = ( "from" )
  key = "{cls.keydir}/%{{d}}/%{{s}}.key"
  dkim_domain "a.sign.test" {{ selector = "s1024" }}
  dkim_domain "b.sign.test" {{ selector = "s2048" header_canon = "relaxed" body_canon = "relaxed" }}
  dkim_domain "c.sign.test" {{ selector = "s4096" header_canon = "relaxed" body_canon = "simple" }}
  dkim_domain "corp.d.sign.test" {{ selector = "s2048" base_domain = "d.sign.test" }}
}}
opendkim "copies" {{
  headerlist = {HEADERS}
  copy_headers = true
  header_canon = "relaxed"
  key = "{cls.keydir}/%{{d}}/%{{s}}.key"
  dkim_domain "z.sign.test" {{ selector = "s2048" }}
}}
opendkim "copies-simple" {{
  headerlist = {HEADERS}
  copy_headers = true
  digest = "ed25519-sha256"
  key = "{cls.keydir}/%{{d}}/%{{s}}.key"
  dkim_domain "z.sign.test" {{ selector = "sed" }}
}}
opendkim "ed25519" {{
  headerlist = {HEADERS}
  digest = "ed25519-sha256"
  header_canon = "relaxed"
  body_canon = "relaxed"
  key = "{cls.keydir}/%{{d}}/%{{s}}.key"
  dkim_domain "b.sign.test" {{ selector = "sed" }}
}}
"""

    def verdicts(self, data):
        """Every signature's verdicts from both verifiers (see `dkim_verify`)."""
        return dkim_verify.verdicts(data, self.dns.port)

    def send(self, sender_domain, rcpt, body, binding="signer", extra=b"", utf8=False,
             from_header=None):
        frm = from_header or f"Alice <alice@{sender_domain}>".encode()
        msg = (b"From: " + frm + b"\r\nTo: " + rcpt.encode() + b"\r\nSubject: test\r\n"
               b"Date: Mon, 07 Dec 2026 12:00:00 +0000\r\nMessage-ID: <" + rcpt.encode() +
               b">\r\nX-Binding: " + binding.encode() + b"\r\n" + extra + b"\r\n" + body)
        with self.session() as s:
            s.sendmail(f"alice@{sender_domain}", [rcpt], msg,
                       mail_options=["SMTPUTF8"] if utf8 else [])
        return self.arrived(rcpt)

    def assert_signed(self, got, expect):
        """`expect`: the (d, s) pairs that must be on the message; each verifies with both
        verifiers (python3-dkim alone for Ed25519)."""
        v = self.verdicts(got["data"])
        for key in expect:
            self.assertIn(key, v, f"no signature {key}: {v}\n{got['data'][:600]!r}")
            py, perl, alg = v[key]
            self.assertTrue(py, f"python3-dkim failed {key} ({alg})")
            if not alg.startswith("ed25519"):
                self.assertTrue(perl, f"Mail::DKIM failed {key} ({alg})")
        return v

    def test_key_sizes_and_canonicalizations(self):
        got = self.send("a.sign.test", "k1024@one.test", b"Hello 1024.\r\n")
        self.assert_signed(got, [("a.sign.test", "s1024")])
        self.assertIn(b"c=simple/simple", got["data"].replace(b"\r\n\t", b" "))
        got = self.send("b.sign.test", "k2048@one.test", b"Hello 2048.\r\n")
        # Dual-signed: RSA and Ed25519 for one domain.
        self.assert_signed(got, [("b.sign.test", "s2048"), ("b.sign.test", "sed")])
        got = self.send("c.sign.test", "k4096@one.test", b"Hello 4096.\r\n")
        self.assert_signed(got, [("c.sign.test", "s4096")])
        self.assertIn(b"c=relaxed/simple", got["data"].replace(b"\r\n\t", b""))

    def test_base_domain_signs_with_the_parent(self):
        got = self.send("corp.d.sign.test", "base@one.test", b"Parent domain.\r\n")
        self.assert_signed(got, [("d.sign.test", "s2048")])

    def test_empty_and_large_bodies(self):
        got = self.send("b.sign.test", "empty@one.test", b"")
        self.assert_signed(got, [("b.sign.test", "s2048"), ("b.sign.test", "sed")])
        # A body of about 1 MB (under the 1 MiB a message is held in memory up to) whose
        # lines are far longer than 1,000 characters (Momentum's SD-598).
        line = b"x" * 4000 + b"\r\n"
        got = self.send("c.sign.test", "large@one.test", line * 240)
        self.assert_signed(got, [("c.sign.test", "s4096")])

    def test_message_over_1mib_is_signed_from_the_spool(self):
        """A message the daemon writes to the spool as it arrives (over 1 MiB) is signed
        there, read back in chunks; the signatures go before it when it is sent."""
        line = b"y" * 2000 + b"\r\n"
        got = self.send("b.sign.test", "huge@one.test", line * 1500)
        self.assertGreater(len(got["data"]), 3_000_000)
        self.assert_signed(got, [("b.sign.test", "s2048"), ("b.sign.test", "sed")])
        got = self.send("a.sign.test", "huge-simple@one.test", line * 1000)
        self.assert_signed(got, [("a.sign.test", "s1024")])

    def test_copy_headers_adds_z(self):
        """`copy_headers = true`: the signature carries `z=` with the signed header fields,
        and verifies (relaxed with RSA, simple with Ed25519), in memory and from the spool."""
        for rcpt, body in (("copies@one.test", b"Copied.\r\n"),
                           ("copies-big@one.test", (b"z" * 1000 + b"\r\n") * 1500)):
            got = self.send("z.sign.test", rcpt, body)
            head = got["data"].split(b"\r\n\r\n")[0].replace(b"\r\n\t", b" ")
            self.assertEqual(head.count(b" z=From:Alice=20<alice@z.sign.test>|"), 2, head[:800])
            self.assert_signed(got, [("z.sign.test", "s2048"), ("z.sign.test", "sed")])

    def test_8bit_and_smtputf8_headers(self):
        got = self.send("b.sign.test", "utf8@one.test", "Grüße aus Köln.\r\n".encode(),
                        extra="X-Note: été\r\n".encode(), utf8=True,
                        from_header="Zoë <zoe@b.sign.test>".encode())
        self.assert_signed(got, [("b.sign.test", "s2048"), ("b.sign.test", "sed")])

    def test_rfc2047_from_and_oversigned_from(self):
        got = self.send("a.sign.test", "encoded@one.test", b"Encoded From.\r\n",
                        from_header=b"=?UTF-8?B?w4lsw6hhbm9y?= <eleanor@a.sign.test>")
        self.assert_signed(got, [("a.sign.test", "s1024")])
        head = got["data"].split(b"\r\n\r\n")[0].replace(b"\r\n\t", b" ").decode()
        h = re.search(r"DKIM-Signature:.*?\bh=([^;]+);", head).group(1).replace(" ", "")
        self.assertEqual(h.lower().split(":").count("from"), 2, h)

    def test_our_earlier_signature_is_replaced_and_others_kept(self):
        old = (b"DKIM-Signature: v=1; a=rsa-sha256; d=b.sign.test; s=s2048; h=from;\r\n"
               b"\tbh=AAAA; b=AAAA\r\n"
               b"DKIM-Signature: v=1; a=rsa-sha256; d=esp.example; s=k1; h=from; bh=AAAA; b=BBBB\r\n")
        got = self.send("b.sign.test", "resigned@one.test", b"Second pass.\r\n", extra=old)
        head = got["data"].split(b"\r\n\r\n")[0]
        self.assertNotIn(b"bh=AAAA; b=AAAA", head)
        self.assertIn(b"d=esp.example", head)
        self.assertEqual(head.count(b"DKIM-Signature:"), 3, head)
        self.assert_signed(got, [("b.sign.test", "s2048"), ("b.sign.test", "sed")])

    def test_per_binding_and_domain(self):
        """Two bindings to one domain: "signer" signs, "plain" has opendkim_sign = false
        for one.test. The sink sees exactly that, from each binding's address."""
        signed = self.send("b.sign.test", "by-signer@one.test", b"Signed.\r\n")
        plain = self.send("b.sign.test", "by-plain@one.test", b"Plain.\r\n", binding="plain")
        self.assertEqual(signed["peer"], "127.0.0.2")
        self.assertEqual(plain["peer"], "127.0.0.3")
        self.assert_signed(signed, [("b.sign.test", "s2048")])
        self.assertNotIn(b"DKIM-Signature:", plain["data"])

    def test_unconfigured_domain_is_not_signed(self):
        got = self.send("elsewhere.test", "nokey@one.test", b"No dkim_domain.\r\n")
        self.assertNotIn(b"DKIM-Signature:", got["data"])

    def test_zz_signing_stats(self):
        """Runs last: the console counts what the tests above signed."""
        self.send("a.sign.test", "stats@one.test", b"Counted.\r\n")
        out = subprocess.run([BIN, "console", "-s", f"{self.tmp}/bindery.sock", "--json",
                              "signing_stats"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        stats = json.loads(out.stdout)
        self.assertGreaterEqual(stats["global"]["total_messages_signed"], 1)
        self.assertEqual(stats["global"]["failed_signing_attempts"], 0)
        self.assertIn("a.sign.test", stats["per_domain"])
        self.assertIn("signer", stats["per_binding"])
        text = subprocess.run([BIN, "console", "-s", f"{self.tmp}/bindery.sock",
                               "signing_stats"], capture_output=True, text=True,
                              timeout=30).stdout
        self.assertIn("Per Binding Per Domain", text)
        # Global and per-binding counts outlive a restart (signing_stats.json in the spool
        # folder, as Momentum's permastore); per-domain ones do not.
        self.d.stop()
        self.d.start()
        out = subprocess.run([BIN, "console", "-s", f"{self.tmp}/bindery.sock", "--json",
                              "signing_stats"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        after = json.loads(out.stdout)
        self.assertEqual(after["global"]["total_messages_signed"],
                         stats["global"]["total_messages_signed"])
        got, want = after["per_binding"]["signer"]["dkim"], stats["per_binding"]["signer"]["dkim"]
        # The time is a float summed in memory and written as JSON: equal to the last bits
        # or not, it is the same figure.
        self.assertAlmostEqual(got.pop("accumulated_signing_time"),
                               want.pop("accumulated_signing_time"), places=6)
        self.assertEqual(got, want)
        self.assertEqual(after["per_domain"], {})


class KeyErrors(ConfigSigning):
    """A key that cannot be used is not a silent unsigned message: `config check` names a
    key whose path it knows; at run time (a `%{d}` path) the message is deferred with 451 and
    the reason is logged, unless `send_unsigned_on_error` says to send it unsigned. A key
    file put in place later is read at `config reload`."""

    NAME = "dkim-keys"
    KEYS = [
        ("ok.sign.test", "s1", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        ("lenient.sign.test", "s2", ["-algorithm", "ED25519"]),
    ]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # lenient.sign.test's key exists only as its DNS record until the test moves it in.
        cls.later = os.path.join(cls.keydir, "later.key")
        os.rename(os.path.join(cls.keydir, "lenient.sign.test", "s2.key"), cls.later)

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
Control_Listener {{ Listen "{cls.tmp}/bindery.sock" {{ }} }}
opendkim "strict" {{
  headerlist = {HEADERS}
  selector = "s1"
  key = "{cls.keydir}/%{{d}}/%{{s}}.key"
}}
opendkim "lenient" {{
  headerlist = {HEADERS}
  digest = "ed25519-sha256"
  selector = "s2"
  send_unsigned_on_error = true
  sign_condition = "can_relay"
  key = "{cls.keydir}/%{{d}}/%{{s}}.key"
}}
"""

    def test_missing_key_defers_with_451(self):
        with self.assertRaises(smtplib.SMTPDataError) as e:
            self.send("nokey.sign.test", "deferred@one.test", b"No key.\r\n")
        self.assertEqual(e.exception.smtp_code, 451)
        self.assertIn(b"cannot DKIM-sign for nokey.sign.test", e.exception.smtp_error)
        log = self.d.stderr_text()
        self.assertIn("DKIM signing failed", log)
        self.assertIn("nokey.sign.test/s1.key", log)

    def test_send_unsigned_on_error_then_reload(self):
        # "strict" signs ok.sign.test; "lenient" has no key for it yet and lets it go.
        got = self.send("ok.sign.test", "lenient1@one.test", b"Half signed.\r\n")
        v = self.assert_signed(got, [("ok.sign.test", "s1")])
        self.assertEqual(len(v), 1, v)
        # Once the file is there, `config reload` reads it (the negative cache is the old
        # generation's).
        os.makedirs(os.path.join(self.keydir, "ok.sign.test"), exist_ok=True)
        shutil.copy(self.later, os.path.join(self.keydir, "ok.sign.test", "s2.key"))
        out = subprocess.run([BIN, "console", "-s", f"{self.tmp}/bindery.sock", "config",
                              "reload"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        got = self.send("ok.sign.test", "lenient2@one.test", b"Both signed.\r\n")
        # The Ed25519 record was published for lenient.sign.test: the signature is made,
        # and python3-dkim looks for s2._domainkey.ok.sign.test, which is not there.
        head = got["data"].split(b"\r\n\r\n")[0].replace(b"\r\n\t", b" ")
        self.assertIn(b"a=ed25519-sha256", head)
        self.assert_signed(got, [("ok.sign.test", "s1")])

    def test_config_check_names_a_key_that_does_not_match_its_digest(self):
        conf = os.path.join(self.tmp, "mismatch.conf")
        with open(conf, "w") as f:
            f.write(f"""opendkim "o" {{
  headerlist = ( "from" )
  dkim_domain "ok.sign.test" {{
    selector = "s2"
    key = "{self.later}"
  }}
}}
""")
        out = subprocess.run([BIN, "config", "check", "-c", conf], capture_output=True,
                             text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("mismatch.conf:5:5", out.stdout + out.stderr)
        self.assertIn("is ed25519 and digest is rsa-sha256", out.stdout + out.stderr)

    # The parent's cases do not apply to this configuration.
    test_key_sizes_and_canonicalizations = None
    test_base_domain_signs_with_the_parent = None
    test_empty_and_large_bodies = None
    test_message_over_1mib_is_signed_from_the_spool = None
    test_copy_headers_adds_z = None
    test_8bit_and_smtputf8_headers = None
    test_rfc2047_from_and_oversigned_from = None
    test_our_earlier_signature_is_replaced_and_others_kept = None
    test_per_binding_and_domain = None
    test_unconfigured_domain_is_not_signed = None
    test_zz_signing_stats = None


if __name__ == "__main__":
    unittest.main(verbosity=2)
