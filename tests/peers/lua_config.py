#!/usr/bin/env python3
"""Run-time configuration from Lua, end to end: `msys.config("set"|"unset")` in `init` and in a
callout, a binding created and assigned by a script, and `config writeback` across a restart.

Run by `cargo test` (crates/bindery/tests/peers.rs) with BINDERY_BIN set. One daemon sends to
an aiosmtpd sink through dnsmasq; the sink records each message's source address and EHLO
name. Shows:
- `init` sets the default binding's `ehlo_hostname`; mail on the default binding greets the
  sink with it;
- a callout sets `suspend_delivery` on a binding: its mail is held; the callout clears it and
  the mail goes;
- a callout creates binding `new1` (its own `bind_address` and EHLO name) and assigns the
  message to it at once: the sink sees it come from 127.0.0.4;
- a refused change returns nil and the reason to the script, and changes nothing;
- `config writeback` writes the run-time changes (not init's) to Local_Changes_File; after a
  restart they are in force; a later change, from the console or from Lua, is dropped by
  `config reload`, which says so;
- scripts on four connections and the console changing the configuration at once neither
  deadlock nor lose or duplicate mail.
"""

import os
import threading
import smtplib
import subprocess
import time
import unittest

from common import BIN
from deliver import SinkSuite, relay_to_sink

SCRIPT = r"""
require("msys.core")
require("msys.extended.message")
local mod = {}

function mod:init()
  local v, t = msys.config("set", "binding", "default", "ehlo_hostname", "lua-init.bindery.test")
  if v == nil then error("init could not set ehlo_hostname: " .. t) end
  return true
end

local function header(msg, name)
  local h = msg:header(name)
  if #h > 0 then return h[1] end
  return nil
end

function mod:validate_set_binding(msg)
  -- X-Switch: "NAME stop" suspends binding NAME, "NAME go" lets it send again.
  local switch = header(msg, "X-Switch")
  if switch then
    local name, what = string.match(switch, "^(%S+) (%S+)$")
    local v, t = msys.config("set", "binding", name, "suspend_delivery",
                             what == "stop" and "true" or "false")
    print("switch " .. name .. ": " .. tostring(v) .. " | " .. t)
  end
  -- X-Create: "NAME IP" makes a binding and sends this message through it.
  local create = header(msg, "X-Create")
  if create then
    local name, ip = string.match(create, "^(%S+) (%S+)$")
    local v, t = msys.config("set", "binding", name, "bind_address", ip)
    if v == nil then error(t) end
    msys.config("set", "binding", name, "ehlo_hostname", name .. ".bindery.test")
    msg:binding(name)
  end
  -- X-Bad: a change the configuration engine refuses.
  if header(msg, "X-Bad") then
    local v, t = msys.config("set", "binding", "b2", "max_outbound_connections", "lots")
    print("refused: " .. tostring(v) .. " | " .. t)
  end
  local named = header(msg, "X-Binding")
  if named then msg:binding(named) end
  return msys.core.VALIDATE_CONT
end
msys.registerModule("runtime", mod)
"""


def config(tmp, dns, sink):
    return relay_to_sink(dns, sink) + f"""
Local_Changes_File = "{tmp}/local_changes.conf"
binding "default" {{ Bind_Address = 127.0.0.9 }}
binding_group "senders" {{
  binding "b2" {{ Bind_Address = 127.0.0.2 EHLO_Hostname = "two.bindery.test" }}
  binding "b3" {{ Bind_Address = 127.0.0.3 EHLO_Hostname = "three.bindery.test" }}
}}
scriptlet "scriptlet" {{ script "runtime" {{ source = "runtime" }} }}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
Control_Listener {{ Listen "{tmp}/bindery.sock" {{ }} }}
"""


class LuaConfig(SinkSuite):
    NAME = "luaconf"
    SCRIPT = SCRIPT
    SCRIPT_FILE = "runtime.lua"

    @classmethod
    def daemon_config(cls):
        cls.sock = os.path.join(cls.tmp, "bindery.sock")
        return config(cls.tmp, cls.dns, cls.sink)

    def console(self, *words, check=True):
        r = subprocess.run([BIN, "console", "-s", self.sock] + list(words), capture_output=True,
                           text=True, timeout=30)
        if check:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def send(self, rcpt, **headers):
        extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
        msg = (f"From: app@origin.test\r\nTo: {rcpt}\r\nSubject: lua config\r\n"
               f"Message-ID: <{rcpt}>\r\n{extra}\r\nHello.\r\n")
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=20) as s:
            s.sendmail("app@origin.test", [rcpt], msg)

    def arrival(self, rcpt, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for m in self.sink.got:
                if rcpt in m["rcpts"]:
                    return m
            time.sleep(0.05)
        self.fail(f"{rcpt} never arrived\n{self.d.stderr_text()[-3000:]}")

    def arrived(self, rcpt):
        return any(rcpt in m["rcpts"] for m in self.sink.got)

    def eval(self, *words):
        return self.console("config", "eval", *words).strip()

    def test_1_init_sets_the_default_binding_ehlo_name(self):
        self.assertEqual(self.eval("binding", "default", "ehlo_hostname"),
                         'EHLO_Hostname = "lua-init.bindery.test"')
        self.send("plain@one.test")
        m = self.arrival("plain@one.test")
        self.assertEqual((m["peer"], m["ehlo"]), ("127.0.0.9", "lua-init.bindery.test"))

    def test_2_a_callout_stops_and_resumes_a_binding(self):
        self.send("switch-off@one.test", X_Switch="b2 stop")
        self.arrival("switch-off@one.test")
        self.assertEqual(self.eval("binding", "b2", "suspend_delivery"), "Suspend_Delivery = true")
        held = [f"held{i}@one.test" for i in range(3)]
        for r in held:
            self.send(r, X_Binding="b2")
        time.sleep(2.5)
        self.assertFalse(any(self.arrived(r) for r in held), "a suspended binding sent")
        active = self.console("binding", "active", "b2")
        self.assertRegex(active, r"Domain: +one\.test  C: *\d+  A: +3 ")
        self.send("switch-on@one.test", X_Switch="b2 go")
        for r in held:
            m = self.arrival(r)
            self.assertEqual((m["peer"], m["ehlo"]), ("127.0.0.2", "two.bindery.test"))
        self.assertIn("switch b2: false | Suspend_Delivery = false", self.d.stderr_text())

    def test_3_a_binding_created_in_a_callout_is_assigned_at_once(self):
        self.send("created@one.test", X_Create="new1 127.0.0.4")
        m = self.arrival("created@one.test")
        self.assertEqual((m["peer"], m["ehlo"]), ("127.0.0.4", "new1.bindery.test"))
        show = self.console("config", "show", "binding", "new1")
        self.assertIn("Bind_Address = 127.0.0.4", show)
        summary = self.console("binding", "summary", "new1")
        self.assertIn("Summary Statistics For Binding new1", summary)

    def test_4_a_refused_change_returns_the_reason_and_changes_nothing(self):
        before = self.console("config", "show")
        self.send("refused@one.test", X_Bad="1")
        self.arrival("refused@one.test")
        log = self.d.stderr_text()
        self.assertIn("refused: nil | <console>:2:", log)
        self.assertIn("invalid value", log)
        self.assertEqual(self.console("config", "show"), before)
        self.assertEqual(self.eval("binding", "b2", "max_outbound_connections"),
                         "Max_Outbound_Connections = 32")

    def test_5_writeback_survives_a_restart_and_reload_drops_the_rest(self):
        self.console("config", "set", "binding", "b3", "ehlo_hostname", "kept.bindery.test")
        out = self.console("config", "writeback")
        local = os.path.join(self.tmp, "local_changes.conf")
        self.assertIn(f"to {local}.", out)
        with open(local) as f:
            written = f.read()
        self.assertIn('Binding "new1" {', written)
        self.assertIn("EHLO_Hostname = kept.bindery.test", written)
        # init's change is the script's, made again at every start: not a run-time change.
        self.assertNotIn("lua-init", written)

        self.assertEqual(self.d.stop(), 0)
        self.d.start()
        self.assertEqual(self.eval("binding", "b3", "ehlo_hostname"),
                         'EHLO_Hostname = "kept.bindery.test"')
        self.send("after-restart@one.test", X_Binding="new1")
        m = self.arrival("after-restart@one.test")
        self.assertEqual((m["peer"], m["ehlo"]), ("127.0.0.4", "new1.bindery.test"))
        self.send("after-restart-b3@one.test", X_Binding="b3")
        m = self.arrival("after-restart-b3@one.test")
        self.assertEqual((m["peer"], m["ehlo"]), ("127.0.0.3", "kept.bindery.test"))

        # An operator's change to what init set stands: the generations it makes replay init
        # without making its changes again.
        self.console("config", "set", "binding", "default", "ehlo_hostname",
                     "operator.bindery.test")
        self.console("config", "set", "binding", "b2", "max_outbound_connections", "7")
        self.assertEqual(self.eval("binding", "default", "ehlo_hostname"),
                         'EHLO_Hostname = "operator.bindery.test"')
        self.send("operator@one.test")
        m = self.arrival("operator@one.test")
        self.assertEqual((m["peer"], m["ehlo"]), ("127.0.0.9", "operator.bindery.test"))

        # Not written back: those two, one more from the console, one from Lua.
        self.console("config", "set", "binding", "b3", "ehlo_hostname", "dropped.bindery.test")
        self.send("lua-stop@one.test", X_Switch="b3 stop")
        self.arrival("lua-stop@one.test")
        self.assertEqual(self.eval("binding", "b3", "suspend_delivery"), "Suspend_Delivery = true")
        out = self.console("config", "reload")
        self.assertIn("Dropped 4 run-time change(s) that were not written back.", out)
        self.assertEqual(self.eval("binding", "b3", "ehlo_hostname"),
                         'EHLO_Hostname = "kept.bindery.test"')
        self.assertEqual(self.eval("binding", "b3", "suspend_delivery"),
                         "Suspend_Delivery = false")
        self.assertEqual(self.eval("binding", "default", "ehlo_hostname"),
                         'EHLO_Hostname = "lua-init.bindery.test"')

    def test_6_concurrent_changes_from_scripts_and_the_console(self):
        rcpts = [[f"race{t}-{i}@one.test" for i in range(10)] for t in range(4)]
        errors = []

        def client(mine):
            try:
                with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30) as s:
                    for i, r in enumerate(mine):
                        switch = "b2 stop" if i % 2 == 0 else "b2 go"
                        msg = (f"From: app@origin.test\r\nTo: {r}\r\nSubject: race\r\n"
                               f"X-Switch: {switch}\r\n\r\nHello.\r\n")
                        s.sendmail("app@origin.test", [r], msg)
            except Exception as e:  # reported below, in the test's thread
                errors.append(e)

        threads = [threading.Thread(target=client, args=(m,)) for m in rcpts]
        for t in threads:
            t.start()
        for i in range(10):
            self.console("config", "set", "binding", "b3", "max_outbound_connections", str(5 + i))
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(self.eval("binding", "b3", "max_outbound_connections"),
                         "Max_Outbound_Connections = 14")
        for mine in rcpts:
            for r in mine:
                self.arrival(r)
        time.sleep(1)
        counts = {}
        for m in self.sink.got:
            for r in m["rcpts"]:
                counts[r] = counts.get(r, 0) + 1
        self.assertEqual([r for mine in rcpts for r in mine if counts.get(r) != 1], [])
        # Every message's own change is in force at the end: the last in each client is "go".
        self.assertEqual(self.eval("binding", "b2", "suspend_delivery"), "Suspend_Delivery = false")


if __name__ == "__main__":
    unittest.main(verbosity=2)
