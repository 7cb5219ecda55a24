"""Identity renewal before expiry, against both servers: a device enrolled
with Debian's scepclient is listed by GET /renewals, the sweep (POST
/renewals/run) queues an InstallProfile with a fresh one-time challenge
and a renewal CN once per certificate; the device installs its SCEP
payload with scepclient, checks in with the new certificate (the binding
moves, MDM03007) and the old certificate is refused from then (MDM03006)."""

import os
import plistlib
import subprocess

import pytest

from mdmdevice import Admin, Device, cert_sha256, parse_command
from test_enroll import SCEPCLIENT, IssuedPki, enroll_scep, scepclient

pytestmark = pytest.mark.skipif(not os.path.exists(SCEPCLIENT),
                                reason="Debian's scep package is missing")


ENC_PROFILE = {
    "PayloadIdentifier": "com.example.itest.renewed",
    "PayloadContent": [{"PayloadType": "com.apple.wifi.managed",
                        "SSID_STR": "renewed"}],
}


def listed(admin, days):
    r = admin.req("GET", "/renewals", params={"days": str(days)})
    assert r.status_code == 200, r.text
    return {e["id"]: e for e in r.json()["enrollments"]}


def scep_payload(cmd):
    assert cmd["Command"]["RequestType"] == "InstallProfile"
    prof = plistlib.loads(cmd["Command"]["Payload"])
    scep = [p for p in prof["PayloadContent"]
            if p["PayloadType"] == "com.apple.security.scep"]
    assert len(scep) == 1
    return scep[0]["PayloadContent"]


def test_renewal_rebinds(server, pki, redis, tmp_path):
    admin = Admin(server, pki)
    cert, key = enroll_scep(server, pki, str(tmp_path / "a"), cn="dev-ren")
    old = Device(server, IssuedPki(pki, cert, key), ident="issued").enroll()
    assert old.idle().status_code == 200
    old_sha = cert_sha256(cert)

    # listed with the certificate's notAfter (validity 365 days)
    e = listed(admin, 400)[old.udid]
    assert e["cert"] == old_sha and not e["offered"]
    assert 360 <= e["days_left"] <= 366
    assert old.udid not in listed(admin, 10)
    rec = admin.enrollment(old.udid).json()["record"]
    assert str(rec["not_after"]) == str(e["not_after"])

    # the sweep offers once per certificate, with a push
    mark = server.log_mark()
    r = admin.req("POST", "/renewals/run", params={"days": "400"})
    assert r.status_code == 200, r.text
    assert old.udid in r.json()["offered"]
    server.wait_log_id("MDM13003", mark)
    r = admin.req("POST", "/renewals/run", params={"days": "400"})
    assert old.udid not in r.json()["offered"]
    assert listed(admin, 400)[old.udid]["offered"]

    # the device gets the profile; scepclient installs its SCEP payload
    r = old.idle()
    cmd = parse_command(r)
    scep = scep_payload(cmd)
    subject = dict(rdn[0] for rdn in scep["Subject"])
    assert subject["CN"].startswith("mdm-renew-")
    assert scep["URL"] == server.scep_url
    d = str(tmp_path / "b")
    p = scepclient(server, pki, d, scep["Challenge"], cn=subject["CN"])
    assert p.returncode == 0, p.stdout + p.stderr
    # the challenge was one-time
    p2 = scepclient(server, pki, str(tmp_path / "c"), scep["Challenge"],
                    cn=subject["CN"])
    assert p2.returncode != 0
    new_cert = os.path.join(d, "cert.pem")
    new_sha = cert_sha256(new_cert)

    # still the old certificate until the new one is seen
    assert old.ack(cmd["CommandUUID"]).status_code == 200
    new = Device(server, IssuedPki(pki, new_cert, os.path.join(d, "key.pem")),
                 udid=old.udid, ident="issued")
    mark = server.log_mark()
    r = new.idle()
    assert r.status_code == 200, server.error_log_lines(mark)
    server.wait_log_id("MDM03007", mark)
    assert admin.enrollment(old.udid).json()["record"]["cert"] == new_sha
    assert new.idle().status_code == 200

    # store_cert on: the rebind stored the new certificate's DER with it,
    # so an encrypted profile goes to the new key at once
    r = admin.req("POST", "/profiles/encrypted/%s?nopush=1" % old.udid,
                  data=plistlib.dumps(ENC_PROFILE),
                  headers={"Content-Type": "application/x-plist"})
    assert r.status_code == 200, r.text
    assert r.json()["encrypted_to"] == new_sha
    cmd = parse_command(new.idle())
    prof = plistlib.loads(cmd["Command"]["Payload"])
    inner = subprocess.run(
        ["openssl", "cms", "-decrypt", "-binary", "-inform", "DER",
         "-recip", new_cert, "-inkey", os.path.join(d, "key.pem")],
        input=prof["EncryptedPayloadContent"], check=True,
        capture_output=True).stdout
    assert plistlib.loads(inner)[0]["SSID_STR"] == "renewed"
    assert new.ack(cmd["CommandUUID"]).status_code == 200

    # from then the old certificate is refused, Authenticate included
    mark = server.log_mark()
    assert old.idle().status_code == 400
    server.wait_log_id("MDM03006", mark)
    assert old.authenticate().status_code == 400
    assert new.idle().status_code == 200

    # the new certificate is listed, not offered yet
    e = listed(admin, 400)[old.udid]
    assert e["cert"] == new_sha and not e["offered"]


def test_renewal_refusals(server, pki, redis, tmp_path):
    admin = Admin(server, pki)
    for q in ("days=x", "days=-1", "days=99999", "days"):
        mark = server.log_mark()
        r = admin.req("GET", "/renewals?" + q)
        assert r.status_code == 400, (q, r.text)
        assert r.json()["id"] == "MDM13002"
        server.wait_log_id("MDM13002", mark)
    assert admin.req("POST", "/renewals").status_code == 405
    assert admin.req("GET", "/renewals/run").status_code == 405
    assert admin.req("POST", "/renewals/other").status_code == 404
    # a certificate with a renewal CN that was never offered: refused
    cert, key = enroll_scep(server, pki, str(tmp_path / "a"), cn="dev-x")
    dev = Device(server, IssuedPki(pki, cert, key), ident="issued").enroll()
    c2, k2 = enroll_scep(server, pki, str(tmp_path / "b"),
                         cn="mdm-renew-00112233445566778899aabbccddeeff")
    other = Device(server, IssuedPki(pki, c2, k2), udid=dev.udid,
                   ident="issued")
    mark = server.log_mark()
    assert other.idle().status_code == 400
    server.wait_log_id("MDM03004", mark)
    assert dev.idle().status_code == 200
