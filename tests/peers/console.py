#!/usr/bin/env python3
"""The console and the metrics end to end: one daemon with two bindings sending to an aiosmtpd
sink through dnsmasq, read back with `bindery console` and `/metrics`.

Run by `cargo test` (crates/bindery/tests/peers.rs) with BINDERY_BIN set. Shows:
- `binding summary` and `/metrics` count what the sink received, per binding;
- `promtool check metrics` accepts the metrics text;
- `config set suspend_delivery` holds a binding's mail at its next attempt, clearing it
  releases the mail;
- mail flowing while `config reload` and `config set` run is delivered exactly once;
- the TCP console refuses a missing and a wrong password, and runs nothing before a login;
- statistics survive a restart;
- (ConsoleAuthorization) Momentum's console authorization: the `Authorization` stanza's roles
  from a groups:// file, the Unix socket's client as its system user, `Always_Allow` and
  `Always_Deny` in a `Peer`, and the acctlog's `Z` record for every decision.
"""

import json
import os
import pty
import pwd
import re
import select
import shutil
import smtplib
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

from common import BIN
from deliver import SinkSuite, relay_to_sink

SCRIPT = r"""
require("msys.core")
require("msys.extended.message")
local mod = {}
function mod:validate_set_binding(msg)
  local named = msg:header("X-Binding")
  if #named > 0 then msg:binding(named[1]) end
  -- X-Prefer: the named binding unless it is suspended, else any binding of the group.
  local prefer = msg:header("X-Prefer")
  if #prefer > 0 then
    if msys.config("eval", "binding", prefer[1], "suspend_delivery") == "true" then
      msg:binding_group("senders")
    else
      msg:binding(prefer[1])
    end
  end
  return msys.core.VALIDATE_CONT
end
msys.registerModule("assign", mod)
"""

PASSWORD = "s3cret pass"


def config(tmp, dns, sink):
    return relay_to_sink(dns, sink) + f"""
Permastore_Interval = 1
binding "default" {{ Bind_Address = 127.0.0.9 }}
binding_group "senders" {{
  binding "b2" {{ Bind_Address = 127.0.0.2 EHLO_Hostname = "two.bindery.test" }}
  binding "b3" {{ Bind_Address = 127.0.0.3 EHLO_Hostname = "three.bindery.test" }}
}}
scriptlet "scriptlet" {{ script "assign" {{ source = "assign" }} }}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
Control_Listener {{
  Listen "{tmp}/bindery.sock" {{ }}
  Listen "127.0.0.1:0" {{
    Enable_Authentication = true
    AuthDigestMD5Parameters = [ uri = "digest://{tmp}/console_passwd" ]
  }}
}}
HTTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
# Momentum's acctlog: one record per console login.
ec_logger "ec_logger" {{ acctlog = "{tmp}/acctlog.ec" }}
# Found along the search path: conf/NODENAME before conf/default.
include "node.conf"
"""


def message(i, binding, rcpt, header="X-Binding"):
    return (f"From: app@origin.test\r\nTo: {rcpt}\r\nSubject: console test {i}\r\n"
            f"Message-ID: <{rcpt}>\r\n{header}: {binding}\r\n\r\nHello.\r\n")


class Console(SinkSuite):
    NAME = "console"
    SCRIPT = SCRIPT

    @classmethod
    def prepare(cls):
        line = subprocess.run([BIN, "passwd", "admin"], input=PASSWORD + "\n", text=True,
                              capture_output=True, check=True).stdout
        with open(os.path.join(cls.tmp, "console_passwd"), "w") as f:
            f.write(line)
        os.makedirs(os.path.join(cls.tmp, "conf", "default"))
        with open(os.path.join(cls.tmp, "conf", "default", "node.conf"), "w") as f:
            f.write('domain "node.test" { Max_Outbound_Connections = 3 }\n')
        cls.sock = os.path.join(cls.tmp, "bindery.sock")

    @classmethod
    def daemon_config(cls):
        return config(cls.tmp, cls.dns, cls.sink)

    @classmethod
    def started(cls):
        cls.find_ports()

    @classmethod
    def find_ports(cls):
        cls.tcp = cls.d.wait_log(r"listening \(control\).*?addr=(127\.0\.0\.1:\d+)")
        cls.http = cls.d.wait_log(r"listening \(HTTP\).*?addr=(127\.0\.0\.1:\d+)")

    def console(self, *words, target=None, env=None, check=True, json_out=False):
        args = [BIN, "console", "-s", target or self.sock] + (["--json"] if json_out else [])
        r = subprocess.run(args + list(words), capture_output=True, text=True, timeout=30,
                           env=env or os.environ)
        if check:
            self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def summary(self, binding):
        return json.loads(self.console("binding", "summary", binding, json_out=True).stdout)

    def metrics(self):
        with urllib.request.urlopen(f"http://{self.http}/metrics", timeout=10) as r:
            self.assertTrue(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
            return r.read().decode()

    def send(self, msgs, header="X-Binding"):
        """msgs: (i, binding, rcpt); one connection."""
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=20) as s:
            for i, binding, rcpt in msgs:
                s.sendmail("app@origin.test", [rcpt], message(i, binding, rcpt, header))

    def arrived(self, rcpts, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = {r for m in self.sink.got for r in m["rcpts"]}
            if set(rcpts) <= got:
                return
            time.sleep(0.05)
        missing = set(rcpts) - {r for m in self.sink.got for r in m["rcpts"]}
        self.fail(f"never arrived: {sorted(missing)[:10]}\n{self.d.stderr_text()[-2000:]}")

    def test_1_two_bindings_read_back_by_summary_and_metrics(self):
        before = {b: self.summary(b) for b in ("b2", "b3")}
        self.send([(i, "b2", f"two{i}@one.test") for i in range(5)]
                  + [(i, "b3", f"three{i}@one.test") for i in range(3)])
        self.arrived([f"two{i}@one.test" for i in range(5)] + [f"three{i}@one.test" for i in range(3)])
        peers = {m["rcpts"][0]: m["peer"] for m in self.sink.got}
        self.assertEqual(peers["two0@one.test"], "127.0.0.2")
        self.assertEqual(peers["three0@one.test"], "127.0.0.3")
        deadline = time.time() + 10
        while time.time() < deadline:
            after = {b: self.summary(b) for b in ("b2", "b3")}
            if after["b3"]["delivered"] - before["b3"]["delivered"] == 3:
                break
            time.sleep(0.1)
        for b, n in (("b2", 5), ("b3", 3)):
            self.assertEqual(after[b]["delivered"] - before[b]["delivered"], n, after[b])
            self.assertEqual(after[b]["received"] - before[b]["received"], n, after[b])
            self.assertEqual(after[b]["group"], "senders")
        text = self.console("binding", "summary", "b2").stdout
        self.assertTrue(text.startswith("Summary Statistics For Binding b2\n"), text)
        self.assertRegex(text, r"\tSuccessfully Delivered Messages: +\d+\n")
        group = self.console("binding", "summary", "group:senders").stdout
        self.assertIn("Summary Statistics For Binding b3 in Binding Group senders", group)
        self.assertIn("\tIncore Messages:", group)
        metrics = self.metrics()
        m = re.search(r'bindery_binding_delivered_total\{binding="b2",binding_group="senders"\} (\d+)', metrics)
        self.assertIsNotNone(m, metrics[:2000])
        self.assertGreaterEqual(int(m.group(1)), 5)
        self.assertRegex(metrics, r'bindery_domain_delivered_total\{domain="one.test"\} \d+')
        self.assertRegex(metrics, r'bindery_policy_calls_total\{callout="validate_set_binding"\} \d+')
        self.assertIn("bindery_spool_healthy 1", metrics)
        path = os.path.join(self.tmp, "metrics.txt")
        with open(path, "w") as f:
            f.write(metrics)
        with open(path) as f:
            check = subprocess.run(["promtool", "check", "metrics"], stdin=f, capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_2_suspend_delivery_from_the_console(self):
        self.console("config", "set", "binding", "b3", "suspend_delivery", "true")
        self.send([(i, "b3", f"held{i}@one.test") for i in range(2)])
        time.sleep(2)
        got = {r for m in self.sink.got for r in m["rcpts"]}
        self.assertFalse({"held0@one.test", "held1@one.test"} & got, "suspended binding sent")
        active = self.console("binding", "active", "b3").stdout
        self.assertRegex(active, r"Domain: +one\.test  C: *\d+  A: +2 ")
        out = self.console("config", "set", "binding", "b3", "suspend_delivery", "false").stdout
        self.assertEqual(out, "Suspend_Delivery = false\n")
        self.arrived(["held0@one.test", "held1@one.test"])

    def test_3_reload_under_load_delivers_each_message_once(self):
        n, conns = 200, 4
        rcpts = [f"load{i}@one.test" for i in range(n)]
        errors = []

        def sender(k):
            try:
                self.send([(i, "b2" if i % 2 else "b3", rcpts[i]) for i in range(k, n, conns)])
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=sender, args=(k,)) for k in range(conns)]
        for t in threads:
            t.start()
        reloads = 0
        while any(t.is_alive() for t in threads) or reloads < 3:
            self.assertIn("Reconfigured: generation", self.console("config", "reload").stdout)
            self.console("config", "set", "binding", "b2", "max_outbound_connections", str(2 + reloads % 3))
            reloads += 1
            if reloads > 200:
                break
        for t in threads:
            t.join()
        print(f"\n  {reloads} reloads and sets while {n} messages were sent", file=sys.stderr)
        self.assertEqual(errors, [])
        self.arrived(rcpts, timeout=60)
        time.sleep(1.5)  # anything delivered twice would arrive by now
        counts = {}
        for m in self.sink.got:
            for r in m["rcpts"]:
                if r.startswith("load"):
                    counts[r] = counts.get(r, 0) + 1
        self.assertEqual(len(counts), n)
        twice = {r: c for r, c in counts.items() if c != 1}
        self.assertEqual(twice, {}, f"delivered more than once during {reloads} reloads")

    def test_4_failed_reload_keeps_the_running_configuration(self):
        conf = self.d.conf
        with open(conf) as f:
            good = f.read()
        try:
            with open(conf, "w") as f:
                f.write(good.replace("Retry_Interval = 1", "Retry_Intervall = 1"))
            r = self.console("config", "reload", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertTrue(r.stderr.startswith("Reconfigure failed\n"), r.stderr)
            self.assertIn("did you mean `Retry_Interval`", r.stderr)
            self.assertEqual(self.console("config", "eval", "retry_interval").stdout, "Retry_Interval = 1\n")
        finally:
            with open(conf, "w") as f:
                f.write(good)

    def test_4b_reload_picks_up_node_specific_files(self):
        q = ["config", "eval", "domain", "node.test", "max_outbound_connections"]
        self.assertEqual(self.console(*q).stdout, "Max_Outbound_Connections = 3\n")
        node = os.path.join(self.tmp, "conf", socket.gethostname())
        os.makedirs(node, exist_ok=True)
        with open(os.path.join(node, "node.conf"), "w") as f:
            f.write('domain "node.test" { Max_Outbound_Connections = 7 }\n')
        try:
            self.console("config", "reload")
            self.assertEqual(self.console(*q).stdout, "Max_Outbound_Connections = 7\n")
        finally:
            shutil.rmtree(node)
            self.console("config", "reload")
        self.assertEqual(self.console(*q).stdout, "Max_Outbound_Connections = 3\n")

    def test_5_tcp_console_requires_the_password(self):
        env = dict(os.environ)
        env.pop("BINDERY_CONSOLE_PASSWORD", None)
        r = self.console("summary", target=self.tcp, env=env, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("requires a login", r.stderr)
        r = self.console("summary", target=self.tcp, env={**env, "BINDERY_CONSOLE_PASSWORD": "wrong"}, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("login refused", r.stderr)
        r = self.console("summary", target=self.tcp, env={**env, "BINDERY_CONSOLE_PASSWORD": PASSWORD})
        self.assertTrue(r.stdout.startswith("Summary Statistics\n"), r.stdout)
        # A raw client that skips the login gets a challenge, never the command's output.
        host, port = self.tcp.split(":")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"summary\nconfig set binding b2 suspend_delivery true\n")
            time.sleep(0.5)
            data = s.recv(65536).decode()
        self.assertTrue(data.startswith("auth "), data)
        self.assertNotIn("Summary", data)
        self.assertEqual(self.console("config", "eval", "binding", "b2", "suspend_delivery").stdout,
                         "Suspend_Delivery = false\n")
        mode = os.stat(self.sock).st_mode & 0o777
        self.assertEqual(mode, 0o600)
        # The acctlog (content/momentum/4/4-log-formats.md): TIME@N@LISTENER@PEER@USER@1|0,
        # for the wrong password, the right one, and the raw client's line that was no login
        # (user `-`).
        with open(os.path.join(self.tmp, "acctlog.ec")) as f:
            acct = [l.rstrip("\n").split("@") for l in f]
        self.assertEqual([(len(a), a[1], a[5]) for a in acct],
                         [(6, "N", "0"), (6, "N", "1"), (6, "N", "0")], acct)
        self.assertEqual(acct[2][4], "-")
        for a in acct:
            self.assertTrue(a[0].isdigit() and len(a[0]) == 10, a)
            self.assertEqual(a[2], "127.0.0.1:0")
            self.assertRegex(a[3], r"^127\.0\.0\.1:\d+$")
            self.assertTrue(a[4], a)

    def test_5b_interactive_console_edits_completes_and_keeps_history(self):
        pid, fd = pty.fork()
        if pid == 0:
            os.environ["HOME"] = self.tmp
            os.execv(BIN, [BIN, "console", "-s", self.sock])
        out = b""

        def until(text, timeout=10):
            nonlocal out
            deadline = time.time() + timeout
            while text not in out and time.time() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.2)
                if ready:
                    try:
                        out += os.read(fd, 65536)
                    except OSError:
                        break
            self.assertIn(text, out, out.decode(errors="replace")[-2000:])

        until(b"bindery(")
        os.write(fd, b"binding summary b2\r")
        until(b"Summary Statistics For Binding b2")
        # Tab completes the command word, then the binding name.
        os.write(fd, b"binding sum\tb3\r")
        until(b"Summary Statistics For Binding b3")
        os.write(fd, b"quit\r")
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        with open(os.path.join(self.tmp, ".bindery_console_history")) as f:
            history = f.read()
        self.assertIn("binding summary b2", history)
        self.assertIn("binding summary b3", history)

    def test_6_statistics_survive_a_restart(self):
        before = self.summary("b2")
        self.assertGreater(before["delivered"], 0)
        self.assertEqual(self.d.stop(), 0)
        self.d.start()
        type(self).find_ports()
        after = self.summary("b2")
        for k in ("delivered", "received", "failed"):
            self.assertEqual(after[k], before[k], k)
        self.assertLess(after["uptime"], before["uptime"] + 5)

    def test_7_rebind_moves_held_mail_off_a_suspended_binding(self):
        # b3 cannot deliver (its gateway refuses), so its mail waits; then it is suspended,
        # and `rebind` runs the policy again, which now picks the group's other binding.
        self.console("config", "set", "binding", "b3", "gateway", "127.0.0.1:9")
        rcpts = [f"rebind{i}@one.test" for i in range(3)]
        self.send([(i, "b3", r) for i, r in enumerate(rcpts)], header="X-Prefer")
        self.console("config", "set", "binding", "b3", "suspend_delivery", "true")
        deadline = time.time() + 15
        while time.time() < deadline:
            total = json.loads(self.console("binding", "delayed", "b3", json_out=True).stdout)["total"]
            if total["active"] + total["delayed"] == 3:
                break
            time.sleep(0.1)
        self.assertEqual(total["active"] + total["delayed"], 3, total)
        shown = self.console("showqueue", "binding", "b3", "one.test").stdout
        self.assertEqual(shown.count("[delayed/b3]") + shown.count("[active/b3]"), 3, shown)
        self.assertEqual(self.console("rebind", "b3").stdout, "Rebound 3 messages.\n")
        self.arrived(rcpts)
        peers = {m["rcpts"][0]: m["peer"] for m in self.sink.got if m["rcpts"][0] in rcpts}
        self.assertEqual(set(peers.values()), {"127.0.0.2"}, peers)
        self.console("config", "unset", "binding", "b3", "gateway")
        self.console("config", "set", "binding", "b3", "suspend_delivery", "false")




class ConsoleAuthorization(SinkSuite):
    """Momentum's console authorization (support-docs content/momentum/4/control-authz.md and
    config/ref-authorization.md): commands are refused unless an `allow` pattern of a `Role`
    named after the user or one of its groups matches; the decisions go to the acctlog."""

    NAME = "console-authz"
    SCRIPT = SCRIPT

    @classmethod
    def prepare(cls):
        passwd = ""
        for user in ("serv", "john"):
            passwd += subprocess.run([BIN, "passwd", user], input=PASSWORD + "\n", text=True,
                                     capture_output=True, check=True).stdout
        with open(os.path.join(cls.tmp, "console_passwd"), "w") as f:
            f.write(passwd)
        # The Unix socket's client is whoever runs the tests (root in CI).
        cls.me = pwd.getpwuid(os.getuid()).pw_name
        cls.roles = os.path.join(cls.tmp, "console_roles")
        with open(cls.roles, "w") as f:
            f.write(f"# role:members\nops:{cls.me}\nadmin:unused:serv\n")
        cls.sock = os.path.join(cls.tmp, "bindery.sock")

    @classmethod
    def daemon_config(cls):
        tmp = cls.tmp
        login = f'Enable_Authentication = true\n    AuthDigestMD5Parameters = [ uri = "digest://{tmp}/console_passwd" ]'
        return relay_to_sink(cls.dns, cls.sink) + f"""
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
Authorization {{
  Role "ops" {{ allow = ( "^summary$" "^binding summary" ) }}
  Role "admin" {{ allow = ( "^config" "^summary$" ) }}
  Role "john" {{ allow = ( "^config" ) }}
}}
Control_Listener {{
  Enable_Authorization = true
  AuthorizationParameters = [ uri = "groups://{cls.roles}" ]
  Listen "{tmp}/bindery.sock" {{ }}
  Listen "127.0.0.1:0" {{
    {login}
  }}
  Listen "127.0.0.3:0" {{
    {login}
    Peer "127.0.0.1/32" {{ Always_Deny = true }}
  }}
  Listen "127.0.0.4:0" {{
    {login}
    Peer "127.0.0.0/8" {{ Always_Allow = true Enable_Authorization = false }}
  }}
}}
ec_logger "ec_logger" {{ acctlog = "{tmp}/acctlog.ec" }}
"""

    @classmethod
    def started(cls):
        cls.tcp = cls.d.wait_log(r"listening \(control\).*?addr=(127\.0\.0\.1:\d+)")
        cls.denied = cls.d.wait_log(r"listening \(control\).*?addr=(127\.0\.0\.3:\d+)")
        cls.allowed = cls.d.wait_log(r"listening \(control\).*?addr=(127\.0\.0\.4:\d+)")

    def console(self, *words, target=None, user=None, password=PASSWORD):
        args = [BIN, "console", "-s", target or self.sock]
        if user:
            args += ["--user", user]
        env = {**os.environ, "BINDERY_CONSOLE_PASSWORD": password}
        return subprocess.run(args + list(words), capture_output=True, text=True, timeout=30,
                              env=env)

    def acct(self, kind, listener):
        """The acctlog's records of one kind and listener, split on `@` as an operator's
        script would (no field here holds an escaped `@`)."""
        with open(os.path.join(self.tmp, "acctlog.ec")) as f:
            rows = [l.rstrip("\n").split("@") for l in f]
        return [r for r in rows if r[1] == kind and r[2] == listener]

    def assert_refused(self, r):
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("Not Authorized for this command", r.stdout + r.stderr)

    def test_1_the_unix_socket_client_is_its_system_user(self):
        r = self.console("summary")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("Summary Statistics\n"), r.stdout)
        self.assertEqual(self.console("binding", "summary", "default").returncode, 0)
        self.assert_refused(self.console("config", "set", "binding", "default",
                                         "suspend_delivery", "true"))
        # The refused change was not made (asked as john over TCP, whose role allows config).
        r = self.console("config", "eval", "binding", "default", "suspend_delivery",
                         target=self.tcp, user="john")
        self.assertEqual(r.stdout, "Suspend_Delivery = false\n", r.stderr)
        z = self.acct("Z", self.sock)
        self.assertEqual([(len(a), a[3], a[4], a[5], a[6], a[7:]) for a in z], [
            (8, "", self.me, "1", "summary", ["ops"]),
            (8, "", self.me, "1", "binding summary default", ["ops"]),
            (7, "", self.me, "0", "config set binding default suspend_delivery true", []),
        ])
        # The implicit system-level authentication of each connection, as Momentum logs it.
        n = self.acct("N", self.sock)
        self.assertEqual({(a[3], a[4], a[5]) for a in n}, {("", self.me, "1")})
        self.assertEqual(len(n), 3)

    def test_2_tcp_users_hold_the_roles_of_the_group_file(self):
        r = self.console("summary", target=self.tcp, user="serv")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_refused(self.console("binding", "summary", "default", target=self.tcp,
                                         user="serv"))
        # john has no group: the Role of his own name applies (`^config` only).
        self.assert_refused(self.console("summary", target=self.tcp, user="john"))
        z = [(a[4], a[5], a[6], a[7:]) for a in self.acct("Z", "127.0.0.1:0")]
        for row in [("serv", "1", "summary", ["admin"]),
                    ("serv", "0", "binding summary default", []),
                    ("john", "0", "summary", [])]:
            self.assertIn(row, z)
        for a in self.acct("Z", "127.0.0.1:0"):
            self.assertRegex(a[3], r"^127\.0\.0\.1:\d+$")

    def test_3_the_role_file_is_read_at_every_connection(self):
        self.assert_refused(self.console("config", "eval", "binding", "default",
                                         "suspend_delivery"))
        with open(self.roles, "a") as f:
            f.write(f"admin:{self.me}\n")
        r = self.console("config", "eval", "binding", "default", "suspend_delivery")
        self.assertEqual(r.stdout, "Suspend_Delivery = false\n", r.stderr)

    def test_4_always_deny_in_a_peer_refuses_the_right_password(self):
        r = self.console("summary", target=self.denied, user="serv")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("login refused", r.stderr)
        self.assertEqual({(a[4], a[5]) for a in self.acct("N", "127.0.0.3:0")}, {("serv", "0")})

    def test_5_always_allow_in_a_peer_takes_any_password(self):
        r = self.console("binding", "summary", "default", target=self.allowed, user="serv",
                         password="not the password")
        self.assertEqual(r.returncode, 0, r.stderr)
        # Enable_Authorization = false in that Peer: nothing was put to the rules.
        self.assertEqual(self.acct("Z", "127.0.0.4:0"), [])
        self.assertEqual({(a[4], a[5]) for a in self.acct("N", "127.0.0.4:0")}, {("serv", "1")})


if __name__ == "__main__":
    unittest.main(verbosity=2)
