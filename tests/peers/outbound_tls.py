#!/usr/bin/env python3
"""Outbound STARTTLS against real peers: `tls`, `tls_verify`, `tls_ca` and
`tls_ifavailable_fallback`, with aiosmtpd sinks offering STARTTLS under certificates that
openssl makes for the run.

Run by `cargo test` (crates/bindery/tests/peers.rs) with BINDERY_BIN set. Three sinks, each
behind its own MX name in dnsmasq:

  mx.good.test  -> 127.0.0.24  certificate for mx.good.test, signed by the test CA
  mx.wrong.test -> 127.0.0.25  certificate for other.example, signed by the test CA
  mx.self.test  -> 127.0.0.26  self-signed certificate for mx.self.test
  mx.tls13.test -> 127.0.0.27  the mx.good.test certificate, TLS 1.3 only (for TLS_Protocols)

Each case is a destination domain whose MX is one of the sinks and whose domain stanza sets
the TLS options; `TLS_CA` names the test CA globally.
"""

import logging
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import unittest

from common import Daemon
from deliver import Dns, Sink, inject

SINKS = {"good": ("127.0.0.24", "mx.good.test"),
         "wrong": ("127.0.0.25", "mx.wrong.test"),
         "self": ("127.0.0.26", "mx.self.test"),
         "tls13": ("127.0.0.27", "mx.tls13.test")}

# domain: (sink, TLS, TLS_Verify, other options)
CASES = {
    "host-good.test": ("good", "required", "host", ""),
    "host-wrong.test": ("wrong", "required", "host", ""),
    "ca-wrong.test": ("wrong", "required", "ca", ""),
    "ca-self.test": ("self", "required", "ca", ""),
    "optional-self.test": ("self", "required", "optional", ""),
    "no-self.test": ("self", "required", "no", ""),
    "fallback-wrong.test": ("wrong", "ifavailable", "host", ""),
    "nofallback-wrong.test": ("wrong", "ifavailable", "host", "TLS_IfAvailable_Fallback = false"),
    "badca.test": ("good", "required", "ca", 'TLS_CA = "/nonexistent/ca.pem"'),
    # The tls13 sink speaks TLS 1.3 only.
    "tls13-default.test": ("tls13", "required", "no", ""),
    "tls12-only.test": ("tls13", "required", "no", 'TLS_Protocols = "+ALL:-TLSv1.3"'),
}


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certificates(d):
    """A test CA, a leaf it signs for each of two names, and a self-signed leaf."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ca, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=Bindery Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", ca_key, "-out", ca)
    files = {}
    for name, dns_name in (("good", "mx.good.test"), ("wrong", "other.example")):
        key, csr, cert = (os.path.join(d, f"{name}.{x}") for x in ("key", "csr", "pem"))
        ext = os.path.join(d, f"{name}.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{dns_name}\nbasicConstraints=CA:FALSE\n"
                    "extendedKeyUsage=serverAuth\n")
        openssl("req", *ec, "-subj", f"/CN={dns_name}", "-keyout", key, "-out", csr)
        openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                "-days", "2", "-extfile", ext, "-out", cert)
        files[name] = (cert, key)
    key, cert = os.path.join(d, "self.key"), os.path.join(d, "self.pem")
    openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=mx.self.test",
            "-addext", "subjectAltName=DNS:mx.self.test",
            "-addext", "basicConstraints=critical,CA:FALSE", "-keyout", key, "-out", cert)
    files["self"] = (cert, key)
    return ca, files


# A refused handshake is what these sinks are for; aiosmtpd would log each as a traceback.
logging.getLogger("mail.log").setLevel(logging.CRITICAL)


def server_context(cert, key, minimum=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if minimum:
        ctx.minimum_version = minimum
    return ctx


class OutboundTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bindery-tls-")
        ca, files = make_certificates(cls.tmp)
        records = [f"--host-record={name},{ip}" for ip, name in SINKS.values()]
        records += [f"--mx-host={dom},{SINKS[c[0]][1]},10" for dom, c in CASES.items()]
        cls.dns = Dns(cls.tmp, extra=records)
        files["tls13"] = files["good"]
        cls.sinks = {k: Sink(ip, tls_context=server_context(
                         *files[k], ssl.TLSVersion.TLSv1_3 if k == "tls13" else None))
                     for k, (ip, _) in SINKS.items()}
        cls.d = None
        try:
            cls.start(ca)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls, ca):
        stanzas = "\n".join(
            f'domain "{dom}" {{ Remote_SMTP_Port = {cls.sinks[sink].port} TLS = "{tls}" '
            f'TLS_Verify = "{verify}" {other} }}'
            for dom, (sink, tls, verify, other) in CASES.items())
        cls.d = Daemon(cls.tmp, config=f"""
Resolv_Conf = "{cls.dns.resolv}"
Relay_Hosts = ( 127.0.0.1 )
Retry_Interval = 1
Max_Retry_Interval = 2
Idle_Timeout = 1
TLS_CA = "{ca}"
{stanzas}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
""")
        for dom in CASES:
            inject(cls.d, [f"rcpt@{dom}"])

    @classmethod
    def tearDownClass(cls):
        if cls.d is not None:
            cls.d.stop()
        for s in cls.sinks.values():
            s.stop()
        cls.dns.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def delivered(self, dom):
        """The sink's record of the message to `dom`, once it arrived."""
        rcpt = f"rcpt@{dom}"
        sink = self.sinks[CASES[dom][0]]
        deadline = time.time() + 20
        while time.time() < deadline:
            hits = [m for m in sink.got if rcpt in m["rcpts"]]
            if hits:
                self.assertEqual(len(hits), 1, hits)
                return hits[0]
            time.sleep(0.05)
        self.fail(f"{rcpt} did not arrive: {self.d.records()}")

    def deferred(self, dom):
        """The reply of the first transient failure for `dom`, after which nothing arrived."""
        rcpt = f"rcpt@{dom}"
        deadline = time.time() + 20
        while time.time() < deadline:
            recs = [r for r in self.d.records("transient") if r.get("rcpt") == rcpt]
            if recs:
                sink = self.sinks[CASES[dom][0]]
                self.assertEqual([m for m in sink.got if rcpt in m["rcpts"]], [])
                if os.environ.get("SHOW_REPLIES"):
                    print(f"{dom}: {recs[0]['reply']}")
                return recs[0]["reply"]
            time.sleep(0.05)
        self.fail(f"no transient failure for {rcpt}: {self.d.records()}")

    def test_host_accepts_a_certificate_for_the_mx_from_the_ca(self):
        self.assertTrue(self.delivered("host-good.test")["tls"])

    def test_host_refuses_a_certificate_for_another_name(self):
        reply = self.deferred("host-wrong.test")
        self.assertTrue(reply.startswith("451 4.7.5 TLS handshake with 127.0.0.25"), reply)
        self.assertIn('invalid peer certificate: certificate not valid for name "mx.wrong.test"',
                      reply)

    def test_ca_ignores_the_name_but_not_the_issuer(self):
        self.assertTrue(self.delivered("ca-wrong.test")["tls"])
        reply = self.deferred("ca-self.test")
        self.assertTrue(reply.startswith("451 4.7.5 TLS handshake with 127.0.0.26"), reply)
        self.assertIn("invalid peer certificate: UnknownIssuer", reply)

    def test_optional_and_no_go_on_encrypted(self):
        self.assertTrue(self.delivered("optional-self.test")["tls"])
        self.assertTrue(self.delivered("no-self.test")["tls"])
        self.assertRegex(self.d.stderr_text(), r"tls_verify optional: certificate not verified")

    def test_ifavailable_falls_back_to_plaintext_unless_told_not_to(self):
        self.assertFalse(self.delivered("fallback-wrong.test")["tls"])
        reply = self.deferred("nofallback-wrong.test")
        self.assertIn("4.7.5 TLS handshake with 127.0.0.25", reply)

    def test_an_unreadable_tls_ca_defers_with_its_reason(self):
        reply = self.deferred("badca.test")
        self.assertTrue(reply.startswith("451 4.7.5 tls_ca /nonexistent/ca.pem: "), reply)
        self.assertIn("No such file or directory", reply)

    def test_tls_protocols_limits_the_versions_offered(self):
        self.assertTrue(self.delivered("tls13-default.test")["tls"])
        reply = self.deferred("tls12-only.test")
        self.assertTrue(reply.startswith("451 4.7.5 TLS handshake with 127.0.0.27"), reply)


if __name__ == "__main__":
    unittest.main(verbosity=2)
