#!/usr/bin/env python3
"""Momentum's sample policies, unchanged, through the daemon (issue 19).

The scripts are copied verbatim from SparkPost/momentum_sample_policy into
tests/policy-corpus/ (tests/policy-corpus/SOURCES.tsv gives each one's commit and path) and
loaded from there, as a Momentum operator's scripts would be:

- kitchen-sink `each_rcpt.lua` (validate_data_spool_each_rcpt: the X-Binding header goes into
  the message context and is removed) with kitchen-sink `set_binding.lua`
  (validate_set_binding: the binding named in the context, else its group, else
  "fallthrough binding", which names no binding here: the default binding). The aiosmtpd sink on 127.0.0.20 sees which source address each
  message came from, and that X-Binding is gone.
- kitchen-sink `add_bcc_recipient.lua` (validate_data reaches the message through
  `msys.core.accept_construct_get_message_construct` and adds a recipient with
  `vctx:add_recipient`): the sink gets the BCC copy.
- kitchen-sink `discard_from_specific_address.lua` (`msg:discard` in validate_data): the
  client gets 250, nothing reaches the sink, the mainlog has a `discard` record with the
  script's reason.
- kitchen-sink `messageid_on_delivery.lua` (`core_log_delivery_v1(msg, dr, now, note,
  notelen)`): each delivery prints the local id and the remote reply to the daemon's log.
- kitchen-sink `route_to_smart_host.lua` (`msg:routing_domain` in
  validate_data_spool_each_rcpt): mail for a domain with no MX goes by the smart host's.
- A message whose recipients get different bindings from a per-recipient script is spooled
  as one message per binding, each delivered from its own binding's address.

Run by `cargo test` (crates/bindery/tests/peers.rs) with BINDERY_BIN set.
"""

import os
import subprocess
import smtplib
import time
import unittest

import dkim_verify
from deliver import ASSIGN_BY_HEADER, SinkSuite, relay_to_sink

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "policy-corpus",
                      "momentum_sample_policy", "kitchen-sink")

# Our corpus helper (not from the sample repository): route_to_smart_host.lua reads the
# recipient's domain from the message context ("rcptto_domain"), which its own setup filled.
HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "policy-corpus",
                       "helpers")

# Not from the sample repository: a per-recipient binding, to see a message split.
BY_RECIPIENT = r"""
local mod = {}
function mod:validate_set_binding(msg)
  if string.find(msg:rcptto(), "^split%-b2@") then msg:binding("b2") end
  return msys.core.VALIDATE_CONT
end
msys.registerModule("by_recipient", mod)
"""


class SamplePolicies(SinkSuite):
    NAME = "sample-policies"
    SCRIPT = BY_RECIPIENT
    SCRIPT_FILE = "by_recipient.lua"
    # example.com's mail goes to the sink too (add_bcc_recipient.lua's addresses).
    DNS_EXTRA = ("--mx-host=example.com,mx.one.test,10", "--mx-host=my.smart.host,mx.one.test,10")

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
binding "b2" {{ Bind_Address = 127.0.0.2 }}
# set_binding.lua's "fallthrough binding" is a placeholder, and a name with a space is no
# binding name: msg:binding() then assigns nothing and the default binding sends.
binding "default" {{ Bind_Address = 127.0.0.9 }}
binding_group "pool" {{
  binding "p4" {{ Bind_Address = 127.0.0.4 }}
}}
# set_binding.lua ends its phase (VALIDATE_DONE): by_recipient goes first.
scriptlet "scriptlet" {{
  script "by_recipient" {{ source = "by_recipient" }}
  script "rcptto_domain" {{ source = "{HELPERS}/rcptto-domain.lua" }}
  script "smarthost" {{ source = "{CORPUS}/route_to_smart_host.lua" }}
  script "each_rcpt" {{ source = "{CORPUS}/each_rcpt.lua" }}
  script "set_binding" {{ source = "{CORPUS}/set_binding.lua" }}
  script "bcc" {{ source = "{CORPUS}/add_bcc_recipient.lua" }}
  script "on_delivery" {{ source = "{CORPUS}/messageid_on_delivery.lua" }}
  # Its validate_data ends the phase (VALIDATE_DONE): last.
  script "discard" {{ source = "{CORPUS}/discard_from_specific_address.lua" }}
}}
domain "example.com" {{ Remote_SMTP_Port = {cls.sink.port} }}
domain "my.smart.host" {{ Remote_SMTP_Port = {cls.sink.port} }}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
"""

    def send(self, rcpts, extra="", sender="a@origin.test"):
        msg = (f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\nSubject: sample\r\n{extra}"
               f"\r\nHello.\r\n")
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail(sender)
            for r in rcpts:
                s.rcpt(r)
            return s.data(msg.encode())

    def test_add_bcc_recipient_adds_the_bcc(self):
        code, _ = self.send(["someemail@example.com"])
        self.assertEqual(code, 250)
        self.arrived("someemail@example.com")
        bcc = self.arrived("bcced_email@example.com")
        self.assertIn(b"Subject: sample", bcc["data"])

    def test_route_to_smart_host_routes_by_another_domain(self):
        # smarthostdomain.tld has no MX in the suite's DNS: only the routing domain the script
        # sets (my.smart.host, whose MX is the sink) gets it there.
        self.send(["someone@smarthostdomain.tld"])
        m = self.arrived("someone@smarthostdomain.tld")
        self.assertEqual(m["rcpts"], ["someone@smarthostdomain.tld"])

    def test_messageid_on_delivery_logs_each_delivery(self):
        self.send(["logged@one.test"])
        self.arrived("logged@one.test")
        rec = [r for r in self.d.records("delivery") if r["rcpt"] == "logged@one.test"]
        deadline = time.time() + 10
        while time.time() < deadline and not rec:
            time.sleep(0.05)
            rec = [r for r in self.d.records("delivery") if r["rcpt"] == "logged@one.test"]
        msg_id = rec[0]["id"]
        # print() goes to the daemon's log: "local messageid: ", id, " remote messageid: ",
        # and the sink's reply, tab-separated.
        want = f"local messageid: \t{msg_id}\t remote messageid: \t250 2.0.0 OK queued"
        deadline = time.time() + 10
        while time.time() < deadline and want not in self.d.stderr_text():
            time.sleep(0.05)
        self.assertIn(want, self.d.stderr_text())
        self.assertIn("core_log_delivery_v1: Grabbing the remote message id on delivery",
                      self.d.stderr_text())

    def test_discard_from_specific_address_accepts_and_drops(self):
        code, text = self.send(["dropped@one.test"], sender="jdoe@example.com")
        self.assertEqual(code, 250, text)
        deadline = time.time() + 20
        while time.time() < deadline and not self.d.records("discard"):
            time.sleep(0.05)
        rec = self.d.records("discard")
        self.assertEqual(len(rec), 1, self.d.records())
        self.assertEqual(rec[0]["reason"], "550 5.7.0 discarded due to OOB responses")
        self.assertEqual(rec[0]["recipients"], ["dropped@one.test"])
        self.assertIn(rec[0]["id"], text.decode())
        time.sleep(1)
        self.assertFalse([m for m in self.sink.got if "dropped@one.test" in m["rcpts"]])
        self.assertFalse([r for r in self.d.records("reception")
                          if "dropped@one.test" in r["recipients"]])

    def test_x_binding_chooses_the_binding_and_is_removed(self):
        self.send(["x1@one.test"], "X-Binding: b2\r\n")
        m = self.arrived("x1@one.test")
        self.assertEqual(m["peer"], "127.0.0.2")
        self.assertNotIn(b"X-Binding", m["data"])

    def test_a_group_name_chooses_the_group(self):
        self.send(["x2@one.test"], "X-Binding: pool\r\n")
        self.assertEqual(self.arrived("x2@one.test")["peer"], "127.0.0.4")

    def test_no_header_falls_through(self):
        self.send(["x3@one.test"])
        self.assertEqual(self.arrived("x3@one.test")["peer"], "127.0.0.9")

    def test_recipients_on_different_bindings_split_the_message(self):
        self.send(["split-b2@one.test", "split-other@one.test"])
        a = self.arrived("split-b2@one.test")
        b = self.arrived("split-other@one.test")
        self.assertEqual((a["peer"], b["peer"]), ("127.0.0.2", "127.0.0.9"))
        self.assertEqual((a["rcpts"], b["rcpts"]), (["split-b2@one.test"], ["split-other@one.test"]))
        recs = [r for r in self.d.records("reception")
                if set(r["recipients"]) & {"split-b2@one.test", "split-other@one.test"}]
        self.assertEqual(len(recs), 2, recs)
        self.assertNotEqual(recs[0]["id"], recs[1]["id"])

    def test_config_check_has_no_warning(self):
        import subprocess
        from common import BIN
        r = subprocess.run([BIN, "config", "check", "-c", self.d.conf], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("warning", r.stdout)


DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "policy-corpus",
                    "support-docs")


class ReferencePageExamples(SinkSuite):
    """Examples from Momentum's reference pages, unchanged (tests/policy-corpus/support-docs):
    `vctx:tarpit(1)` at connect holds the greeting a second; `vctx:disconnect(421, ...)` for
    MAIL FROM:<disconnect@example.com> answers and closes the connection."""

    NAME = "reference-examples"

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
scriptlet "scriptlet" {{
  script "tarpit" {{ source = "{DOCS}/ref-vctx-tarpit.1.lua" }}
  script "disconnect" {{ source = "{DOCS}/ref-vctx-disconnect.2.lua" }}
}}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
"""

    def test_tarpit_holds_the_greeting(self):
        started = time.monotonic()
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as s:
            waited = time.monotonic() - started
            s.noop()
        self.assertGreaterEqual(waited, 0.9, "the greeting came at once")

    def test_disconnect_answers_and_closes(self):
        s = smtplib.SMTP("127.0.0.1", self.d.port, timeout=10)
        s.ehlo("client.test")
        code, text = s.mail("disconnect@example.com")
        self.assertEqual((code, text), (421, b"4.7.1 Go away dude"))
        with self.assertRaises(smtplib.SMTPServerDisconnected):
            s.noop()
        s.close()


class CapabilityAdd(SinkSuite):
    """`ac:esmtp_capability_add` (the reference page's example adds 8BITMIME, which bindery
    offers already: it is not repeated) and a keyword bindery does not offer."""

    NAME = "capability-add"
    SCRIPT = r"""
local mod = {}
function mod:validate_connect(ac, vctx)
  ac:esmtp_capability_add("XSAMPLE 1")
  return msys.core.VALIDATE_CONT
end
msys.registerModule("extra", mod)
"""
    SCRIPT_FILE = "extra.lua"

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
scriptlet "scriptlet" {{
  script "doc" {{ source = "{DOCS}/ref-ac-esmtp-capability-add.1.lua" }}
  script "extra" {{ source = "extra" }}
}}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
"""

    def test_keywords_are_added_once(self):
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as s:
            code, text = s.ehlo("client.test")
        lines = text.decode().split("\n")
        self.assertEqual(code, 250)
        self.assertEqual(sum(1 for l in lines if l == "8BITMIME"), 1, lines)
        self.assertIn("XSAMPLE 1", lines)


TRAINING = os.path.join(os.path.dirname(CORPUS), "training-policy")
MULTI = os.path.join(os.path.dirname(CORPUS), "multi-channel-demo")

# Not from the sample repository: drives the training policy's modules (unchanged, found as
# `inbound.*` through the `inbound` link beside this file) the way its policy.lua would,
# without policy.lua's own modules that need msys.pbp (Momentum 3). An rbldnsd list and a
# DNS RBL at connect, the sending domain's MX or A at MAIL FROM.
TRAINING_DRIVER = r"""
require("inbound.library")
require("inbound.sending_domain")
local mod = {}
function mod:init()
  msys.cidr.define("blocked", { type = "rbldnsd", source = "%(blocked)s", value = "txt",
                                interpolate = true })
  return true
end
function mod:validate_connect(ac, vctx)
  local addr = inbound.library.ip_from_addr_and_port(ac.remote_addr)
  local hit = msys.cidr.query("blocked", addr)
  if hit then
    vctx:set_code(554, hit)
    return msys.core.VALIDATE_DONE
  end
  local a, b, c, d = string.match(addr, "^(%%d+)%%.(%%d+)%%.(%%d+)%%.(%%d+)$")
  local listed = msys.dnsLookup(d .. "." .. c .. "." .. b .. "." .. a .. ".rbl.test", "TXT")
  if listed and #listed > 0 then
    vctx:set_code(554, "Listed: " .. listed[1])
    return msys.core.VALIDATE_DONE
  end
  return msys.core.VALIDATE_CONT
end
function mod:validate_mailfrom(str, ac, vctx)
  local msg = msys.core.accept_construct_get_message_construct(ac).message
  local ok, code, reason = inbound.sending_domain.check({}, "mailfrom", ac, vctx, msg, str)
  if not ok then
    vctx:set_code(code, reason)
    return msys.core.VALIDATE_DONE
  end
  return msys.core.VALIDATE_CONT
end
msys.registerModule("training_driver", mod)
"""


class DaemonServices(SinkSuite):
    """The policy reaching the daemon's services, with Momentum's own scripts where the sample
    repository has one:

    - training-policy `inbound/sending_domain.lua` (msys.dnsLookup MX then A, through the
      daemon's resolver, dnsmasq here): MAIL FROM a domain that does not exist gets 554
      "Invalid sending domain"; one with only an A record passes;
    - an rbldnsd file (msys.cidr) and a DNS RBL (msys.dnsLookup TXT) refuse the greeting to
      127.0.0.6 and 127.0.0.5, with the list's text;
    - multi-channel-demo `secondary_delivery.lua` (core_post_msg_each_rcpt, msg:copy,
      msg:inject): each message's copy goes to esmtp@http-inbound-gateway.local, and the copy
      (recv_method P_INTERNAL) is not copied again;
    - kitchen-sink `action_based_on_connection_ip.lua` (msys.audit.inbound_session_count,
      msys.expandMacro("%{spfv1:i}")): a second session from 127.0.0.1 while one is open gets
      421 and is closed."""

    NAME = "daemon-services"
    SCRIPT = ""
    SCRIPT_FILE = "unused.lua"
    DNS_EXTRA = ('--txt-record=5.0.0.127.rbl.test,spam source',
                 "--mx-host=http-inbound-gateway.local,mx.one.test,10",
                 "--host-record=aonly.test,127.0.0.20")

    @classmethod
    def prepare(cls):
        blocked = os.path.join(cls.tmp, "blocked.txt")
        with open(blocked, "w") as f:
            f.write("# test list\n127.0.0.6 :2:Blocked $ by list\n")
        with open(os.path.join(cls.tmp, "driver.lua"), "w") as f:
            f.write(TRAINING_DRIVER % {"blocked": blocked})
        os.symlink(os.path.join(TRAINING, "inbound"), os.path.join(cls.tmp, "inbound"))

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
Relay_Hosts = ( 127.0.0.0/8 )
domain "http-inbound-gateway.local" {{ Remote_SMTP_Port = {cls.sink.port} }}
domain "aonly.test" {{ Remote_SMTP_Port = {cls.sink.port} }}
scriptlet "scriptlet" {{
  script "driver" {{ source = "driver" }}
  script "secondary" {{ source = "{MULTI}/secondary_delivery.lua" }}
  script "connections" {{ source = "{CORPUS}/action_based_on_connection_ip.lua" }}
}}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
"""

    # The connection-count script allows one session at a time from 127.0.0.1 (and a
    # session the client has closed may still be open on the server's side for a moment):
    # the other tests come from addresses of their own.
    def test_sending_domain_needs_mx_or_a(self):
        with self.session("127.0.0.9") as s:
            s.ehlo("client.test")
            code, text = s.mail("someone@nosuch.test")
            self.assertEqual((code, text), (554, b"5.7.1 Invalid sending domain"))
            code, _ = s.mail("someone@aonly.test")
            self.assertEqual(code, 250)
            s.rset()

    def test_rbldnsd_list_and_dns_rbl_refuse_the_greeting(self):
        for source, want in (("127.0.0.6", b"Blocked 127.0.0.6 by list"),
                             ("127.0.0.5", b"Listed: spam source")):
            with self.assertRaises(smtplib.SMTPConnectError) as e:
                self.session(source)
            self.assertEqual(e.exception.smtp_code, 554)
            self.assertIn(want, e.exception.smtp_error)
        with self.session("127.0.0.7") as s:
            self.assertEqual(s.noop()[0], 250)

    def test_secondary_delivery_injects_one_copy(self):
        with self.session("127.0.0.8") as s:
            s.sendmail("a@one.test", ["orig@one.test"],
                       b"From: a@one.test\r\nSubject: secondary\r\n\r\nHello.\r\n")
        self.arrived("orig@one.test")
        copy = self.arrived("esmtp@http-inbound-gateway.local")
        self.assertIn(b"Subject: secondary", copy["data"])
        time.sleep(1)
        copies = [m for m in self.sink.got if "esmtp@http-inbound-gateway.local" in m["rcpts"]]
        self.assertEqual(len(copies), 1, "the copy was copied again")

    def test_second_session_from_localhost_is_refused(self):
        first = self.session()
        try:
            first.ehlo("client.test")
            with self.assertRaises(smtplib.SMTPConnectError) as e:
                self.session()
            self.assertEqual(e.exception.smtp_code, 421)
            self.assertIn(b"Too many simultaneous connections from: 127.0.0.1",
                          e.exception.smtp_error)
        finally:
            first.quit()
        # Once the server has closed the first, a new session is welcome again.
        deadline = time.time() + 10
        while True:
            try:
                with self.session() as s:
                    self.assertEqual(s.noop()[0], 250)
                break
            except smtplib.SMTPConnectError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)


# Not from the sample repository: a per-minute limit on the inbound_audit module's counts.
AUDIT_LIMIT = r"""
local mod = {}
function mod:validate_mailfrom(str, ac, vctx)
  local span = { startv = 0, endv = 1 }
  local c = msys.audit.connections("60,2", span)
  local r = msys.audit.receptions("60,2", span)
  local j = msys.audit.rejections("60,2", span)
  if r >= 2 then
    vctx:set_code(452, "4.7.1 too much mail from you: " .. c .. " connections, " .. r ..
                  " messages, " .. j .. " refused")
    return msys.core.VALIDATE_DONE
  end
  return msys.core.VALIDATE_CONT
end
msys.registerModule("audit_limit", mod)
"""


class InboundAudit(SinkSuite):
    """Momentum's inbound_audit module with `msys.audit.connections`, `receptions` and
    `rejections`: two messages go through, the third MAIL FROM is refused with the counts
    (three connections, two messages, and then the refusal counted); the reference page's
    own example (`msys.audit.*("60,1")`) runs beside it."""

    NAME = "inbound-audit"
    SCRIPT = AUDIT_LIMIT
    SCRIPT_FILE = "audit_limit.lua"

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
inbound_audit {{ monitors = ( "60,1" "60,2" ) }}
scriptlet "scriptlet" {{
  script "limit" {{ source = "audit_limit" }}
  script "page" {{ source = "{DOCS}/ref-msys-audit-connections.2.lua" }}
}}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
"""

    def test_counts_limit_the_third_message(self):
        for n in (1, 2):
            with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as s:
                s.sendmail("a@origin.test", [f"audit{n}@one.test"],
                           f"Subject: {n}\r\n\r\nHi.\r\n".encode())
            self.arrived(f"audit{n}@one.test")
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as s:
            s.ehlo("client.test")
            code, text = s.mail("a@origin.test")
            self.assertEqual(code, 452)
            self.assertEqual(text, b"4.7.1 too much mail from you: 3 connections, 2 messages, 0 refused")
            code, text = s.mail("a@origin.test")
            self.assertEqual(text, b"4.7.1 too much mail from you: 3 connections, 2 messages, 1 refused")


class StateLogger(SinkSuite):
    """The multi-channel demo's `state_logger.lua`, unchanged, through the daemon: each
    callout prints its name, in Momentum's order, `validate_rcptto_list` and `_final`
    between the last RCPT and the message."""

    NAME = "state-logger"

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
scriptlet "scriptlet" {{
  script "state" {{ source = "{MULTI}/state_logger.lua" }}
}}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
"""

    def test_callouts_run_in_order(self):
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as s:
            s.sendmail("a@origin.test", ["one@one.test", "two@one.test"],
                       b"Subject: states\r\n\r\nHi.\r\n")
        self.arrived("one@one.test")
        log = self.d.stderr_text()
        order = [l.split("XXXX STATE: ", 1)[1].split()[0] for l in log.splitlines()
                 if "XXXX STATE: " in l]
        self.assertEqual(order[:8], [
            "validate_connect", "validate_ehlo", "validate_mailfrom", "validate_rcptto",
            "validate_rcptto", "validate_rcptto_list", "validate_rcptto_list_final",
            "validate_data"], order)
        self.assertNotIn("warning", log)


# Not from the sample repository: Momentum's page's pattern for signing from a script, by
# binding: messages on binding "signer" are signed in core_final_validation.
DKIM_BY_BINDING = ASSIGN_BY_HEADER + r"""
require("msys.validate.opendkim")
local sign = {}
function sign:core_final_validation(msg, ac, vctx)
  if msg:binding() == "signer" then
    msys.validate.opendkim.sign(msg, vctx, { selector = "s2048",
      keyfile = "%(keydir)s/%%{d}.%%{s}.key", header_canon = "relaxed", body_canon = "relaxed",
      headerlist = "from:to:subject:date:message-id" })
  end
  return msys.core.VALIDATE_CONT
end
msys.registerModule("dkim_by_binding", sign)
"""

class DkimFromLua(dkim_verify.WithKeys, SinkSuite):
    """`msys.validate.opendkim.sign` through the daemon: a message on binding "signer" reaches
    the sink signed, and python3-dkim and Mail::DKIM verify it with the key dnsmasq serves; a message on the
    default binding arrives unsigned."""

    NAME = "dkim-lua"
    SCRIPT_FILE = "dkim_by_binding.lua"

    @classmethod
    def publish(cls):
        cls.SCRIPT = DKIM_BY_BINDING % {"keydir": cls.keydir}
        key = os.path.join(cls.keydir, "sign.test.s2048.key")
        yield dkim_verify.published("sign.test", "s2048", key, ["genrsa", "-traditional", "-out"])

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + """
binding "signer" { Bind_Address = 127.0.0.2 }
scriptlet "scriptlet" { script "dkim" { source = "dkim_by_binding" } }
ESMTP_Listener { Listen "127.0.0.1:0" { } }
"""

    def verify(self, data):
        """python3-dkim's and Mail::DKIM's verdicts on sign.test's signature."""
        py, perl, _ = dkim_verify.verdicts(data, self.dns.port)[("sign.test", "s2048")]
        return str(py and perl)

    def test_the_signer_binding_signs_and_the_default_does_not(self):
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as s:
            s.sendmail("a@sign.test", ["signed@one.test"],
                       b"From: Alice <a@sign.test>\r\nTo: signed@one.test\r\nSubject: signed\r\n"
                       b"X-Binding: signer\r\n\r\nHello.\r\n")
            s.sendmail("a@sign.test", ["plain@one.test"],
                       b"From: Alice <a@sign.test>\r\nTo: plain@one.test\r\nSubject: plain\r\n\r\nHi.\r\n")
        signed = self.arrived("signed@one.test")
        self.assertEqual(signed["peer"], "127.0.0.2")
        # Our Received: comes on top of the signature, written at the spool after signing.
        self.assertIn(b"\r\nDKIM-Signature: v=1;", signed["data"].split(b"\r\n\r\n")[0])
        self.assertEqual(self.verify(signed["data"]), "True")
        plain = self.arrived("plain@one.test")
        self.assertNotIn(b"DKIM-Signature:", plain["data"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
