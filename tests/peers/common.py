"""What the real-peer tests share: a `bindery run` in a temporary folder, and SMTP helpers.

Run by `cargo test` (crates/bindery/tests/peers.rs) with BINDERY_BIN set to the binary. Every
daemon listens on 127.0.0.1 port 0; the port is read back from its log.
"""

import glob
import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import time

BIN = os.environ.get("BINDERY_BIN", "target/debug/bindery")
MSG = "From: a@sender.example\r\nTo: b@rcpt.example\r\nSubject: test\r\n\r\nHello.\r\n"


class Daemon:
    """One `bindery run` in a temporary folder."""

    def __init__(self, workdir, extra="", listener_extra="", spoolbase=None, config=None,
                 nofile=None):
        """`config` replaces the reception tests' default body (relay settings and the
        listener); Hostname, Spoolbase and Mainlog are always set here. `nofile` sets the
        daemon's descriptor limit: a number (soft and hard), or (soft, hard)."""
        self.dir = workdir
        self.nofile = nofile
        self.spoolbase = spoolbase or os.path.join(workdir, "spool")
        self.conf = os.path.join(workdir, "bindery.conf")
        self.log = os.path.join(workdir, "mainlog.jsonl")
        if config is None:
            config = f"""
Relay_Hosts = ( 127.0.0.1 )
Relay_Domains = ( "rcpt.example" "*.glob.example" )
# Reception tests keep what they accept in the spool, to look at it.
Suspend_Delivery = true
{extra}
ESMTP_Listener {{
  Max_Message_Size = 100000
  {listener_extra}
  Listen "127.0.0.1:0" {{ }}
}}
"""
        with open(self.conf, "w") as f:
            f.write(f"""
Hostname = "mx.bindery.test"
Spoolbase = "{self.spoolbase}"
Mainlog = "{self.log}"
{config}
""")
        self.start()

    def records(self, kind=None):
        """The mainlog's records, optionally only those of one type."""
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            recs = [json.loads(line) for line in f if line.strip()]
        return [r for r in recs if kind is None or r["type"] == kind]

    def wait_records(self, kind, count, timeout=20):
        """Waits until the mainlog holds `count` records of `kind`; returns them."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            recs = self.records(kind)
            if len(recs) >= count:
                return recs
            time.sleep(0.05)
        raise AssertionError(f"only {len(self.records(kind))} {kind} records after {timeout} s: "
                             f"{self.records()}\n{self.stderr_text()[-3000:]}")

    def start(self):
        self.stderr = open(os.path.join(self.dir, "stderr.log"), "ab")
        offset = self.stderr.tell()
        self.offset = offset
        limit = None
        if self.nofile:
            import resource
            n = self.nofile if isinstance(self.nofile, tuple) else (self.nofile, self.nofile)
            limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, n)
        self.proc = subprocess.Popen([BIN, "run", "-c", self.conf], stderr=self.stderr,
                                     cwd=self.dir, preexec_fn=limit)
        deadline = time.time() + 20
        while time.time() < deadline:
            with open(os.path.join(self.dir, "stderr.log"), "rb") as f:
                f.seek(offset)
                m = re.search(rb"addr=127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("daemon did not start: " + self.stderr_text())

    def wait_log(self, pattern, timeout=10):
        """The first match of `pattern` in what this start of the daemon has logged, waiting
        for it (listeners after the first are logged a moment after the daemon answers)."""
        deadline = time.time() + timeout
        while True:
            with open(os.path.join(self.dir, "stderr.log"), "rb") as f:
                f.seek(self.offset)
                m = re.search(pattern.encode(), f.read())
            if m:
                return m.group(1).decode()
            if time.time() > deadline:
                raise AssertionError(f"{pattern!r} not logged: {self.stderr_text()[-3000:]}")
            time.sleep(0.05)

    def stderr_text(self):
        with open(os.path.join(self.dir, "stderr.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.stderr.close()
        return code

    def spool_list(self):
        out = subprocess.run([BIN, "spool", "list", "-c", self.conf, "--json"], cwd=self.dir,
                             capture_output=True, check=True, text=True).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def spooled(self, msg_id):
        """The message's envelope (a dict) and body, read from its spool file the way
        crates/spool/src/file.rs lays it out: head line, envelope, body (or, for a message
        streamed as it arrived, head line, body, envelope); an `.env` beside it stands instead
        of the envelope inside."""
        paths = glob.glob(os.path.join(self.spoolbase, "queue", "*", msg_id + ".msg"))
        assert len(paths) == 1, paths
        with open(paths[0], "rb") as f:
            data = f.read()
        head, _, rest = data.partition(b"\n")
        n = int(head.split()[-1])
        if head.startswith(b"bindery-spool 3 "):
            # Streamed while it arrived: the body first, the envelope after it.
            body, envelope = rest[:n], rest[n:]
        else:
            assert head.startswith(b"bindery-spool 2 "), head[:40]
            envelope, body = rest[:n], rest[n:]
        stem = paths[0][:-len(".msg")]
        if os.path.exists(stem + ".env"):
            with open(stem + ".env", "rb") as f:
                envelope = f.read()
        env = json.loads(envelope.splitlines()[0])
        # The recipient journal (crates/spool/src/journal.rs): `d|f INDEX...` lines, each
        # ending in `crc32 XXXXXXXX`.
        if os.path.exists(stem + ".jrn"):
            with open(stem + ".jrn", "rb") as f:
                for line in f.read().decode().splitlines():
                    words, state = line.split()[:-2], None
                    for w in words:
                        if w in ("d", "f"):
                            state = {"d": "delivered", "f": "failed"}[w]
                        else:
                            env["recipients"][int(w)]["state"] = state
        return env, body

    def body(self, msg_id):
        return self.spooled(msg_id)[1]

    def smtp(self, source=None, **kw):
        return smtplib.SMTP("127.0.0.1", self.port, source_address=source, timeout=10, **kw)


def queued_id(reply):
    m = re.search(rb"queued as ([0-9A-F]{16})", reply)
    assert m, reply
    return m.group(1).decode()


def send(s, sender="a@sender.example", rcpts=("b@rcpt.example",), msg=MSG):
    """MAIL, RCPT..., DATA; returns the queue id from the 250."""
    code, _ = s.mail(sender)
    assert code == 250
    for r in rcpts:
        code, text = s.rcpt(r)
        assert code == 250, (r, code, text)
    code, text = s.data(msg)
    assert code == 250, (code, text)
    return queued_id(text)


def raw(port, data, source="127.0.0.1", wait_for=None, timeout=5):
    """Sends bytes in one write after the greeting; returns everything the server said."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0))
    out = b""
    while not out.endswith(b"\r\n"):
        out += s.recv(4096)
    s.sendall(data)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if wait_for and wait_for(out):
            break
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        out += chunk
    s.close()
    return out
