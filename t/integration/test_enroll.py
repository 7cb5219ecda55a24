"""Enrollment, against both servers: Debian's scepclient gets a device
identity from the built-in SCEP CA (PKIOperation by POST, and by GET
through a proxy that hides POSTPKIOperation), one-time challenges,
renewal, revocation; the issued identity then runs an MDM lifecycle; the
enrollment profile is signed and complete, and its challenge enrolls."""

import hashlib
import http.server
import os
import plistlib
import subprocess
import threading
import urllib.parse
import urllib.request

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from conftest import TOPICS
from mdmdevice import Admin, Device, command, new_session, parse_command

SCEPCLIENT = "/usr/bin/scepclient"
PROFILE_CT = "application/x-apple-aspen-config"

pytestmark = pytest.mark.skipif(not os.path.exists(SCEPCLIENT),
                                reason="Debian's scep package is missing")


class IssuedPki:
    """The test PKI, with the identity scepclient obtained as "issued"."""

    def __init__(self, pki, cert, key):
        self._pki, self._cert, self._key = pki, cert, key

    def cert(self, ident):
        return self._cert if ident == "issued" else self._pki.cert(ident)

    def key(self, ident):
        return self._key if ident == "issued" else self._pki.key(ident)

    def __getattr__(self, name):
        return getattr(self._pki, name)


def load(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def ca_fingerprint(pki):
    der = load(os.path.join(pki.dir, "scep-ca.pem")).public_bytes(Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def scepclient(server, pki, d, challenge=None, cn="scep-device", url=None):
    """Run scepclient with its key and certificate in directory d (it
    caches its CSR there: a fresh d is a new enrollment, the same d a
    renewal)."""
    os.makedirs(d, exist_ok=True)
    args = [SCEPCLIENT, "-server-url", url or server.scep_url,
            "-private-key", os.path.join(d, "key.pem"),
            "-certificate", os.path.join(d, "cert.pem"),
            "-cn", cn, "-organization", "libmdm test",
            "-ca-fingerprint", ca_fingerprint(pki), "-keySize", "2048"]
    if challenge is not None:
        args += ["-challenge", challenge]
    return subprocess.run(args, capture_output=True, text=True, timeout=60,
                          cwd=d)


def new_challenge(server, pki):
    r = Admin(server, pki).req("POST", "/scep/challenges")
    assert r.status_code == 201, r.text
    return r.json()["challenge"]


def enroll_scep(server, pki, d, cn="scep-device"):
    c = new_challenge(server, pki)
    p = scepclient(server, pki, d, c, cn=cn)
    assert p.returncode == 0, p.stdout + p.stderr
    return os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")


def check_issued(pki, cert_path, cn, server=None):
    subprocess.run(["openssl", "verify", "-CAfile",
                    os.path.join(pki.dir, "scep-ca.pem"), cert_path],
                   check=True, capture_output=True)
    c = load(cert_path)
    assert c.subject.get_attributes_for_oid(
        x509.NameOID.COMMON_NAME)[0].value == cn
    eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature
    assert c.serial_number.bit_length() > 64
    if server is not None:
        dp = c.extensions.get_extension_for_class(
            x509.CRLDistributionPoints).value
        assert dp[0].full_name[0].value == \
            server.scep_url + "?operation=GetCRL"
    return c


def test_get_ca_caps_and_cert(server, pki):
    r = requests.get(server.scep_url, params={"operation": "GetCACaps"},
                     timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    caps = r.text.split()
    for cap in ("POSTPKIOperation", "SHA-256", "AES", "SCEPStandard",
                "Renewal"):
        assert cap in caps
    r = requests.get(server.scep_url, params={"operation": "GetCACert"},
                     timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/x-x509-ca-cert"
    assert r.content == load(os.path.join(pki.dir, "scep-ca.pem")) \
        .public_bytes(Encoding.DER)


def test_scep_refusals(server, pki, redis, tmp_path):
    mark = server.log_mark()
    r = requests.get(server.scep_url, params={"operation": "Nope"},
                     timeout=10)
    assert r.status_code == 400
    r = requests.post(server.scep_url + "?operation=PKIOperation",
                      data=b"\x30\x03garbage", timeout=10)
    assert r.status_code == 400
    r = requests.put(server.scep_url, data=b"x", timeout=10)
    assert r.status_code == 405
    assert not server.bad_lines(mark)


def test_scepclient_enrolls_by_post(server, pki, redis, tmp_path):
    cert, key = enroll_scep(server, pki, str(tmp_path / "a"), cn="dev-post")
    check_issued(pki, cert, "dev-post", server)
    # the issued identity runs an MDM lifecycle
    ipki = IssuedPki(pki, cert, key)
    d = Device(server, ipki, ident="issued").enroll()
    c = command("DeviceInformation", Queries=["OSVersion"])
    assert Admin(server, pki).enqueue(d.udid, c, nopush=True) \
        .status_code == 200
    r = d.idle()
    assert parse_command(r)["CommandUUID"] == c["CommandUUID"]
    r = d.ack(c["CommandUUID"])
    assert r.status_code == 200 and r.content == b""
    res = Admin(server, pki).result(d.udid, c["CommandUUID"])
    assert res.json()["status"] == "Acknowledged"


def test_challenges(server, pki, redis, tmp_path):
    c = new_challenge(server, pki)
    assert scepclient(server, pki, str(tmp_path / "a"), c).returncode == 0
    # one-time: the same challenge never issues a second certificate
    mark = server.log_mark()
    p = scepclient(server, pki, str(tmp_path / "b"), c)
    assert p.returncode != 0
    assert not os.path.exists(str(tmp_path / "b" / "cert.pem"))
    server.wait_log_id("MDM08", mark)
    # wrong and missing challenges
    assert scepclient(server, pki, str(tmp_path / "c"),
                      "wrong-challenge").returncode != 0
    assert scepclient(server, pki, str(tmp_path / "d")).returncode != 0


def test_renewal(server, pki, redis, tmp_path):
    d = str(tmp_path / "a")
    cert, _ = enroll_scep(server, pki, d, cn="dev-renew")
    first = load(cert).serial_number
    # the same directory: scepclient signs with the certificate it has
    p = scepclient(server, pki, d, cn="dev-renew")
    assert p.returncode == 0, p.stdout + p.stderr
    second = check_issued(pki, cert, "dev-renew").serial_number
    assert second != first


def test_revoked_serial_refused(server, pki, redis, tmp_path):
    cert, key = enroll_scep(server, pki, str(tmp_path / "a"), cn="dev-rev")
    ipki = IssuedPki(pki, cert, key)
    d = Device(server, ipki, ident="issued").enroll()
    assert d.idle().status_code == 200
    serial = "%x" % load(cert).serial_number
    mark = server.log_mark()
    r = Admin(server, pki).req("POST", "/scep/revoke/" + serial)
    assert r.status_code == 200, r.text
    assert r.json()["enrollment"] == d.udid, r.text
    r = d.idle()
    assert r.status_code == 400
    server.wait_log_id("MDM03005", mark)
    # the CA's CRL lists it, signed by the CA
    r = requests.get(server.scep_url, params={"operation": "GetCRL"},
                     timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(r.content)
    ca = load(os.path.join(pki.dir, "scep-ca.pem"))
    assert crl.is_signature_valid(ca.public_key())
    assert crl.issuer == ca.subject
    assert crl.get_revoked_certificate_by_serial_number(
        load(cert).serial_number) is not None
    # nor can it renew itself
    p = scepclient(server, pki, str(tmp_path / "a"), cn="dev-rev")
    assert p.returncode != 0
    assert Admin(server, pki).req(
        "POST", "/scep/revoke/0badc0de").status_code == 404


class CapsProxy(http.server.BaseHTTPRequestHandler):
    """Forwards to the SCEP endpoint; its GetCACaps answer loses
    POSTPKIOperation and SCEPStandard, so that a client uses GET."""

    target = None
    seen = []

    def do_GET(self):
        q = urllib.parse.urlsplit(self.path).query
        args = urllib.parse.parse_qs(q)
        op = args.get("operation", [""])[0]
        self.seen.append(("GET", op, "message" in args))
        with urllib.request.urlopen(self.target + "?" + q, timeout=10) as r:
            body, ctype = r.read(), r.headers["Content-Type"]
        if op == "GetCACaps":
            body = b"\n".join(l for l in body.split(b"\n")
                              if l not in (b"POSTPKIOperation",
                                           b"SCEPStandard"))
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.seen.append(("POST", "", False))
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def test_scepclient_enrolls_by_get(server, pki, redis, tmp_path):
    CapsProxy.target = server.scep_url
    CapsProxy.seen = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CapsProxy)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        url = "http://127.0.0.1:%d/scep" % srv.server_address[1]
        p = scepclient(server, pki, str(tmp_path / "a"),
                       new_challenge(server, pki), cn="dev-get", url=url)
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        srv.shutdown()
        srv.server_close()
    assert ("GET", "PKIOperation", True) in CapsProxy.seen
    assert not [s for s in CapsProxy.seen if s[0] == "POST"]
    check_issued(pki, str(tmp_path / "a" / "cert.pem"), "dev-get")


def payloads(profile):
    return {p["PayloadType"]: p for p in profile["PayloadContent"]}


def get_profile(server, pki, tmp_path, name):
    s = new_session(pki)
    r = s.get(server.base_url + "/mdm/enroll", auth=server.admin_auth,
              timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == PROFILE_CT
    assert r.headers["Cache-Control"] == "no-store"  # one-time challenge
    signed = str(tmp_path / (name + ".mobileconfig"))
    with open(signed, "wb") as f:
        f.write(r.content)
    out = str(tmp_path / (name + ".plist"))
    subprocess.run(["openssl", "cms", "-verify", "-inform", "DER", "-in",
                    signed, "-CAfile", pki.root, "-out", out],
                   check=True, capture_output=True)
    with open(out, "rb") as f:
        return plistlib.load(f)


def test_profile(server, pki, redis, tmp_path):
    s = new_session(pki)
    assert s.get(server.base_url + "/mdm/enroll",
                 timeout=10).status_code == 401  # the web server's auth
    p1 = get_profile(server, pki, tmp_path, "one")
    p2 = get_profile(server, pki, tmp_path, "two")
    assert p1["PayloadType"] == "Configuration"
    assert p1["PayloadVersion"] == 1
    pl = payloads(p1)
    scep = pl["com.apple.security.scep"]["PayloadContent"]
    assert scep["URL"] == server.scep_url
    assert isinstance(scep["Challenge"], str) and scep["Challenge"]
    assert scep["Keysize"] == 2048
    assert scep["Key Type"] == "RSA"
    assert isinstance(scep["Key Usage"], int)
    assert isinstance(scep["CAFingerprint"], bytes)
    assert isinstance(scep["Subject"], list)
    mdm = pl["com.apple.mdm"]
    assert mdm["ServerURL"].startswith("https://")
    assert mdm["ServerURL"].endswith("/mdm/connect")
    assert mdm["CheckInURL"].endswith("/mdm/checkin")
    assert mdm["Topic"] == TOPICS[0]
    assert mdm["IdentityCertificateUUID"] == \
        pl["com.apple.security.scep"]["PayloadUUID"]
    assert mdm["SignMessage"] is True
    assert mdm["AccessRights"] == 8191
    assert mdm["CheckOutWhenRemoved"] is True
    assert "com.apple.mdm.per-user-connections" in mdm["ServerCapabilities"]
    root = pl["com.apple.security.root"]["PayloadContent"]
    assert root == load(pki.root).public_bytes(Encoding.DER)
    # stable identifiers: a second download is the same enrollment
    for a, b in zip(p1["PayloadContent"], p2["PayloadContent"]):
        assert a["PayloadUUID"] == b["PayloadUUID"]
        assert a["PayloadIdentifier"] == b["PayloadIdentifier"]
    assert p1["PayloadUUID"] == p2["PayloadUUID"]
    # but a fresh one-time challenge each time, and it enrolls
    c2 = payloads(p2)["com.apple.security.scep"]["PayloadContent"]
    assert c2["Challenge"] != scep["Challenge"]
    p = scepclient(server, pki, str(tmp_path / "a"), scep["Challenge"],
                   cn="dev-profile")
    assert p.returncode == 0, p.stdout + p.stderr
    ipki = IssuedPki(pki, str(tmp_path / "a" / "cert.pem"),
                     str(tmp_path / "a" / "key.pem"))
    d = Device(server, ipki, ident="issued").enroll()
    assert d.idle().status_code == 200
