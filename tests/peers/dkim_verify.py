"""DKIM verdicts from the real verifiers, for the peer suites: python3-dkim (Debian's, under
/usr/bin/python3, which knows Ed25519) and Perl's Mail::DKIM (RSA only: Debian's predates
Ed25519), each asking the suite's dnsmasq for the key records.

(Not named `dkim.py`: /usr/bin/python3 -c, run from this folder, would import it instead of
python3-dkim's `dkim`.)
"""

import base64
import shutil
import subprocess
import tempfile


def published(domain, selector, path, make):
    """Makes a private key at `path` with openssl (`make`: its arguments, the output file
    last) and returns the dnsmasq argument that publishes its public half at
    `selector._domainkey.domain` (split into 250-byte strings, as a TXT record must be)."""
    subprocess.run(["openssl", *make, path], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    if len(der) < 64:
        # Ed25519: the raw 32-byte key is the end of its SubjectPublicKeyInfo (RFC 8463).
        value = f"v=DKIM1; k=ed25519; p={base64.b64encode(der[-32:]).decode()}"
    else:
        value = f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    pieces = ",".join(value[i:i + 250] for i in range(0, len(value), 250))
    return f"--txt-record={selector}._domainkey.{domain},{pieces}"

# Each signature of a message on stdin, verified: "d s a result" per line.
PY_VERIFY = r"""
import sys, dkim, dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.port = int(sys.argv[1])
def txt(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    return b"".join(b"".join(x.strings) for x in r.resolve(name, "TXT"))
msg = sys.stdin.buffer.read()
headers, _ = dkim.rfc822_parse(msg)
sigs = [v for (k, v) in headers if k.lower() == b"dkim-signature"]
for i, v in enumerate(sigs):
    tags = dict(t.strip().split(b"=", 1) for t in v.split(b";") if b"=" in t)
    try:
        ok = dkim.DKIM(msg).verify(idx=i, dnsfunc=txt)
    except Exception:  # another signer's broken signature
        ok = False
    print(tags[b"d"].decode(), tags[b"s"].decode(), tags[b"a"].decode(), ok)
"""

PERL_VERIFY = r"""
use strict; use warnings;
use Mail::DKIM::Verifier; use Mail::DKIM::DNS; use Net::DNS::Resolver;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(nameservers => ['127.0.0.1'], port => $ARGV[0], recurse => 1));
binmode STDIN;
my $v = Mail::DKIM::Verifier->new();
$v->load(*STDIN);
for my $s ($v->signatures) {
  print join(' ', $s->domain // '', $s->selector // '', $s->algorithm // '', $s->result), "\n";
}
"""



def verdicts(data, dns_port):
    """Every signature's verdicts: {(d, s): [python3-dkim passed, Mail::DKIM passed or None
    (Ed25519), algorithm]}. A verifier that cannot run raises with its error output."""
    def run(*args):
        r = subprocess.run([*args, str(dns_port)], input=data, capture_output=True)
        if r.returncode != 0:
            raise AssertionError(f"{args[0]} failed: {r.stderr.decode()}")
        return r.stdout.decode()
    out = {}
    for line in run("/usr/bin/python3", "-c", PY_VERIFY).splitlines():
        d, s, a, ok = line.split()
        out[(d, s)] = [ok == "True", None, a]
    for line in run("perl", "-e", PERL_VERIFY).splitlines():
        d, s, a, result = line.split()[:4]
        if (d, s) in out and not a.startswith("ed25519"):
            out[(d, s)][1] = result == "pass"
    return out


class WithKeys:
    """A suite's signing keys, in a folder of their own for the suite's life: mixed in before
    the suite's base class. `publish(cls)` makes them (with `published`, under `cls.keydir`)
    and returns the dnsmasq arguments, which become the suite's `DNS_EXTRA`."""

    @classmethod
    def publish(cls):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="bindery-dkim-keys-")
        cls.DNS_EXTRA = tuple(cls.publish())
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.keydir, ignore_errors=True)
