"""The Transmissions HTTP API (issue 21) against real clients: the PyPI `sparkpost` client
library (python-sparkpost 1.3.10, SparkPost's own; it builds https:// URIs, so its resource URI
has its base URI pointed at the plain-HTTP loopback listener), and curl for every error case. Messages go
to an aiosmtpd sink through dnsmasq, read back with Python's `email`.

The policy is Momentum's sample `kitchen-sink/meta_from_rest_transmission.lua`, unchanged: its
`msg_gen_data_spool` reads the recipient metadata's `binding` and its `validate_set_binding`
assigns that binding group. Group `pool1` sends from 127.0.0.2, `pool2` from 127.0.0.3.

Run: cd tests/peers && BINDERY_BIN=.../bindery python3 transmissions.py
"""

import email
import email.policy
import json
import os
import shutil
import subprocess
import unittest

from common import BIN
from deliver import SinkSuite, relay_to_sink

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "policy-corpus",
                      "momentum_sample_policy", "kitchen-sink",
                      "meta_from_rest_transmission.lua")


def make_key(name, permissions="transmissions:modify"):
    out = subprocess.run([BIN, "api-key", name, "--permissions", permissions], check=True,
                         capture_output=True, text=True).stdout
    key = out.split("key:")[1].split()[0]
    line = out.split("line:")[1].split()[0]
    return key, line


class Transmissions(SinkSuite):
    NAME = "transmissions"
    SCRIPT = open(SAMPLE).read()
    SCRIPT_FILE = "meta.lua"

    @classmethod
    def prepare(cls):
        cls.key, line = make_key("platform")
        cls.reader, reader_line = make_key("reader", "metrics:read")
        with open(os.path.join(cls.tmp, "api_keys"), "w") as f:
            f.write(f"# API keys\n{line}\n{reader_line}\n")

    @classmethod
    def daemon_config(cls):
        return relay_to_sink(cls.dns, cls.sink) + f"""
ec_logger "ec_logger" {{ mainlog = "{cls.tmp}/mainlog.ec" }}
Control_Listener {{ Listen "{cls.tmp}/bindery.sock" {{ }} }}
scriptlet "scriptlet" {{ script "meta" {{ source = "{cls.tmp}/meta.lua" }} }}
binding_group "pool1" {{ binding "p1" {{ bind_address = "127.0.0.2" }} }}
binding_group "pool2" {{ binding "p2" {{ bind_address = "127.0.0.3" }} }}
ESMTP_Listener {{ Listen "127.0.0.1:0" {{ }} }}
HTTP_Listener {{
  Listen "127.0.0.1:0" {{
    API_Key_File = "{cls.tmp}/api_keys"
    API_Max_Request_Size = 10485760
  }}
}}
"""

    @classmethod
    def started(cls):
        cls.http = int(cls.d.wait_log(r"listening \(HTTP\) addr=127\.0\.0\.1:(\d+)"))
        cls.url = f"http://127.0.0.1:{cls.http}/api/v1/transmissions"

    def curl(self, *args, data=None, key=None):
        cmd = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", self.url,
               "-H", "Content-Type: application/json"]
        if key is not None:
            cmd += ["-H", f"Authorization: {key}"]
        if data is not None:
            cmd += ["--data-binary", "@-"]
        out = subprocess.run(cmd + list(args), input=data, capture_output=True, timeout=60)
        body, _, code = out.stdout.rpartition(b"\n")
        return int(code), (json.loads(body) if body.strip() else None)

    def message(self, rcpt):
        got = self.arrived(rcpt)
        return got, email.message_from_bytes(got["data"], policy=email.policy.default)

    def test_the_sparkpost_client_sends_with_substitutions(self):
        from sparkpost import SparkPost
        sp = SparkPost(self.key, base_uri="unused")
        sp.transmissions.base_uri = f"http://127.0.0.1:{self.http}/api/v1"
        res = sp.transmissions.send(
            recipients=[
                {"address": {"email": "ann@one.test", "name": "Ann"},
                 "substitution_data": {"first": "Ann", "items": [{"sku": "A1"}, {"sku": "B2"}]}},
                {"address": {"email": "bob@one.test"},
                 "substitution_data": {"first": "<Bob>"}},
                {"address": {"email": "cy@one.test"}, "substitution_data": {"vip": True}},
            ],
            from_email="News <news@origin.test>",
            subject="Hello {{first}}",
            text="Hi {{first}} from {{sender}}{{each items}} {{loop_var.sku}}{{end}}",
            html="<p>Hi {{first}}{{if vip}} (VIP){{end}}</p>",
            substitution_data={"sender": "Bindery", "first": "friend"},
            campaign="launch",
        )
        self.assertEqual(res["total_accepted_recipients"], 3, res)
        self.assertEqual(res["total_rejected_recipients"], 0, res)
        self.assertTrue(res["id"])
        _, ann = self.message("ann@one.test")
        self.assertEqual(ann["Subject"], "Hello Ann")
        self.assertEqual(ann["From"], "News <news@origin.test>")
        self.assertIn("Ann <ann@one.test>", ann["To"])
        self.assertEqual(ann.get_body(("plain",)).get_content().strip(),
                         "Hi Ann from Bindery A1 B2")
        _, bob = self.message("bob@one.test")
        self.assertEqual(bob["Subject"], "Hello <Bob>")
        self.assertIn("<p>Hi &lt;Bob&gt;</p>", bob.get_body(("html",)).get_content())
        _, cy = self.message("cy@one.test")
        self.assertEqual(cy["Subject"], "Hello friend")
        self.assertIn("(VIP)", cy.get_body(("html",)).get_content())
        # Each spooled and logged as Momentum logs an HTTP injection: protocol rest.
        with open(os.path.join(self.tmp, "mainlog.ec")) as f:
            recs = [line.split("@") for line in f if "@R@" in line and "ann@" in line]
        self.assertTrue(recs, "no R record")
        self.assertIn("rest", recs[0])
        self.assertIn("unknown", recs[0])

    def test_ip_pool_and_the_sample_policy_pick_the_binding(self):
        base = {"content": {"from": "a@origin.test", "subject": "s", "text": "t"}}
        body = dict(base, recipients=[{"address": {"email": "pool@one.test"}}],
                    options={"ip_pool": "pool1"})
        code, res = self.curl(data=json.dumps(body).encode(), key=self.key)
        self.assertEqual(code, 200, res)
        body = dict(base, recipients=[{"address": {"email": "meta@one.test"},
                                       "metadata": {"binding": "pool2"}}])
        code, res = self.curl(data=json.dumps(body).encode(), key=self.key)
        self.assertEqual(code, 200, res)
        self.assertEqual(self.arrived("pool@one.test")["peer"], "127.0.0.2")
        self.assertEqual(self.arrived("meta@one.test")["peer"], "127.0.0.3")

    def test_every_error_gets_sparkposts_shape(self):
        ok = {"recipients": [{"address": {"email": "x@one.test"}}],
              "content": {"from": "a@origin.test", "subject": "s", "text": "t"}}
        cases = [
            (dict(key="wrong-key", data=json.dumps(ok).encode()), 401, None),
            (dict(data=json.dumps(ok).encode()), 401, None),
            (dict(key=self.reader, data=json.dumps(ok).encode()), 403, "1100"),
            (dict(key=self.key, data=b"{not json"), 400, "1300"),
            (dict(key=self.key, data=json.dumps(dict(ok, recipients="x@one.test")).encode()),
             422, "1300"),
            (dict(key=self.key, data=json.dumps(dict(ok, recipients=[])).encode()), 422, "1400"),
            (dict(key=self.key, data=json.dumps(dict(ok, content={"template_id": "t"})).encode()),
             422, "1300"),
            (dict(key=self.key, data=json.dumps(dict(ok, options={"ip_pool": "nope"})).encode()),
             422, "1300"),
        ]
        for kw, status, code in cases:
            got, body = self.curl(**kw)
            self.assertEqual(got, status, (kw.get("data", b"")[:80], body))
            self.assertIsInstance(body["errors"], list)
            self.assertIn("message", body["errors"][0])
            self.assertEqual(body["errors"][0].get("code"), code, body)
        # 50 MB: over API_Max_Request_Size, refused without reading it all into a message.
        big = b'{"recipients": [], "pad": "' + b"x" * (50 * 1024 * 1024) + b'"}'
        got, body = self.curl(key=self.key, data=big)
        self.assertEqual(got, 413, body)
        self.assertEqual(body["errors"][0]["code"], "1300")
        # Nothing of that reached the sink, and the key never shows in the log.
        self.assertNotIn(self.key, self.d.stderr_text())

    def test_counts_per_key_in_the_console_and_metrics(self):
        body = {"recipients": [{"address": {"email": "count@one.test"}}],
                "content": {"from": "a@origin.test", "subject": "s", "text": "t"}}
        code, _ = self.curl(data=json.dumps(body).encode(), key=self.key)
        self.assertEqual(code, 200)
        sock = os.path.join(self.tmp, "bindery.sock")
        out = subprocess.run([BIN, "console", "-s", sock, "injection", "summary"],
                             capture_output=True, text=True, check=True).stdout
        self.assertRegex(out, r"api\s+platform\s+\d+\s+\d+\s+\d+\s+[1-9]")
        self.assertNotIn(self.key, out)


if __name__ == "__main__":
    unittest.main()
