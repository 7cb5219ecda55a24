"""SCEP replay and the approval routes, against both servers: the PKCSReq
that Debian's scepclient sent (recorded by a proxy) replayed byte for byte
gets the same certificate, checked with openssl, and nothing new is
issued; GetNextCACert without a next CA; the admin API's /scep/pending
routes."""

import glob
import http.server
import os
import subprocess
import threading
import urllib.request

import pytest
import requests

from mdmdevice import Admin
from test_enroll import SCEPCLIENT, new_challenge, scepclient

pytestmark = pytest.mark.skipif(not os.path.exists(SCEPCLIENT),
                                reason="Debian's scep package is missing")


class RecordingProxy(http.server.BaseHTTPRequestHandler):
    """Forwards to the SCEP endpoint and keeps the PKIOperation bodies."""

    target = None
    bodies = []

    def forward(self, data):
        q = self.path.split("?", 1)[1] if "?" in self.path else ""
        req = urllib.request.Request(self.target + "?" + q, data=data)
        with urllib.request.urlopen(req, timeout=10) as r:
            body, ctype = r.read(), r.headers["Content-Type"]
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.forward(None)

    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"]))
        self.bodies.append(data)
        self.forward(data)

    def log_message(self, *a):
        pass


def openssl(*args):
    return subprocess.run(["openssl"] + list(args), check=True,
                          capture_output=True)


def cert_records(redis):
    return len(redis.client().keys("*{scep}:cert:*"))


def issued_in(rep, req, key, d):
    """The certificate in a CertRep, opened as the client would: the
    envelope decrypted with the key of the request's signer."""
    for name, data in (("rep.der", rep), ("req.der", req)):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    p = lambda n: os.path.join(d, n)
    openssl("cms", "-verify", "-noverify", "-binary", "-inform", "DER",
            "-in", p("rep.der"), "-out", p("env.der"))
    openssl("cms", "-verify", "-noverify", "-binary", "-inform", "DER",
            "-in", p("req.der"), "-signer", p("signer.pem"), "-out",
            os.devnull)
    openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-in",
            p("env.der"), "-recip", p("signer.pem"), "-inkey", key, "-out",
            p("certs.p7"))
    out = openssl("pkcs7", "-inform", "DER", "-in", p("certs.p7"),
                  "-print_certs").stdout
    return openssl_fp(out)


def openssl_fp(pem):
    return subprocess.run(["openssl", "x509", "-noout", "-fingerprint",
                           "-sha256"], input=pem, check=True,
                          capture_output=True).stdout


def test_replayed_pkcsreq(server, pki, redis, tmp_path):
    RecordingProxy.target = server.scep_url
    RecordingProxy.bodies = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RecordingProxy)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    d = str(tmp_path / "a")
    try:
        url = "http://127.0.0.1:%d/scep" % srv.server_address[1]
        p = scepclient(server, pki, d, new_challenge(server, pki),
                       cn="dev-replay", url=url)
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        srv.shutdown()
        srv.server_close()
    assert len(RecordingProxy.bodies) == 1
    req = RecordingProxy.bodies[0]
    with open(os.path.join(d, "cert.pem"), "rb") as f:
        want = openssl_fp(f.read())
    n = cert_records(redis)
    mark = server.log_mark()
    # the same bytes, twice: the same certificate (its challenge is spent
    # already), nothing issued
    for i in range(2):
        r = requests.post(server.scep_url + "?operation=PKIOperation",
                          data=req, timeout=10)
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "application/x-pki-message"
        got = issued_in(r.content, req, os.path.join(d, "key.pem"),
                        str(tmp_path))
        assert got == want
    assert cert_records(redis) == n
    server.wait_log_id("MDM08034", mark)
    assert "MDM08017" not in server.mdm_ids(mark)
    assert not server.bad_lines(mark)


def test_get_next_ca_cert_unconfigured(server, pki):
    r = requests.get(server.scep_url, params={"operation": "GetCACaps"},
                     timeout=10)
    assert "GetNextCACert" not in r.text.split()
    mark = server.log_mark()
    r = requests.get(server.scep_url, params={"operation": "GetNextCACert"},
                     timeout=10)
    assert r.status_code == 404
    server.wait_log_id("MDM08005", mark)


def test_pending_routes(server, pki, redis):
    a = Admin(server, pki)
    r = a.req("GET", "/scep/pending")
    assert r.status_code == 200, r.text
    assert r.json() == {"pending": []}
    mark = server.log_mark()
    r = a.req("POST", "/scep/pending/NO-SUCH/approve")
    assert r.status_code == 404
    assert "MDM08055" in r.text
    r = a.req("POST", "/scep/pending/NO-SUCH/reject")
    assert r.status_code == 404
    assert "MDM08055" in r.text
    # a base64 transactionID's '/' travels as %2F (Apache refuses encoded
    # slashes unless AllowEncodedSlashes: 404 either way)
    assert a.req("POST", "/scep/pending/NO%2FSUCH/approve").status_code \
        == 404
    assert a.req("GET", "/scep/pending/X/approve").status_code == 405
    assert a.req("POST", "/scep/pending").status_code == 405
    assert a.req("POST", "/scep/pending/X/other").status_code == 404
    assert not redis.client().keys("*{scep}:txn:NO*")
