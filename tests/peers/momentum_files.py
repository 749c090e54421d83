#!/usr/bin/env python3
"""Momentum's own files mean the same (issue 18), against real peers.

Security: with `User` and `Group` set, the daemon binds its listeners as root and then runs as
that user, with no capability left; `/proc/PID/status` is read to see it, and a message is
taken to show the spool still works under the new owner. Run as root (CI is); skipped
otherwise, with a line saying so.

Run by `cargo test` (crates/bindery/tests/peers.rs) with BINDERY_BIN set.
"""

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
import unittest

from common import BIN, Daemon, send


def status(pid):
    """/proc/PID/status as a dict of its fields (the text after the colon, split)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.split()
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

    def test_a_user_this_system_lacks_is_refused_by_config_check(self):
        conf = os.path.join(self.tmp, "b.conf")
        with open(conf, "w") as f:
            f.write('Security { User = "no-such-user-bindery" }\n')
        out = subprocess.run([BIN, "config", "check", "-c", conf], capture_output=True,
                             text=True)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("no user `no-such-user-bindery` on this system", out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
