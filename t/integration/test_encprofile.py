"""Per-device encrypted profiles: POST /profiles/encrypted/ID in both
servers; the device's next Idle gets the InstallProfile, whose
EncryptedPayloadContent opens with the device key (openssl cms)."""

import plistlib
import subprocess

from mdmdevice import Device, parse_command

PROFILE = {
    "PayloadIdentifier": "com.example.itest.enc",
    "PayloadDisplayName": "Encrypted itest",
    "PayloadContent": [{
        "PayloadType": "com.apple.wifi.managed",
        "PayloadIdentifier": "com.example.itest.enc.wifi",
        "SSID_STR": "corp",
        "Password": "s3cr3t-pw",
    }],
}


def post(admin, eid, body, query=""):
    h = {"Content-Type": "application/x-plist"}
    return admin.req("POST", "/profiles/encrypted/" + eid + query,
                     data=body, headers=h)


def decrypt(pki, ident, der, tmp_path):
    src = tmp_path / "epc.der"
    src.write_bytes(der)
    out = subprocess.run(
        ["openssl", "cms", "-decrypt", "-binary", "-inform", "DER",
         "-in", str(src), "-recip", pki.cert(ident), "-inkey", pki.key(ident)],
        check=True, capture_output=True).stdout
    return plistlib.loads(out)


def test_encrypted_profile(server, pki, redis, admin, tmp_path):
    dev = Device(server, pki)
    body = plistlib.dumps(PROFILE)
    # unknown enrollment: 404, nothing stored
    r = post(admin, dev.udid, body)
    assert r.status_code == 404, r.text
    assert r.json()["id"] == "MDM05061"
    assert redis.client().dbsize() == 0
    dev.enroll()
    n = redis.client().dbsize()
    # not a plist dictionary / not a profile: 400, nothing stored
    for bad in (b"not a plist", plistlib.dumps(["x"]),
                plistlib.dumps({"PayloadContent": "x"})):
        r = post(admin, dev.udid, bad)
        assert r.status_code == 400, r.text
        assert r.json()["id"] == "MDM05060"
    assert redis.client().dbsize() == n
    r = admin.req("GET", "/profiles/encrypted/" + dev.udid)
    assert r.status_code == 405
    r = post(admin, dev.udid, body)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["request_type"] == "InstallProfile"
    assert j["profile_identifier"] == "com.example.itest.enc"
    assert j["pushed"] is True
    cmd = parse_command(dev.idle())
    assert cmd["CommandUUID"] == j["command_uuid"]
    assert cmd["Command"]["RequestType"] == "InstallProfile"
    raw = cmd["Command"]["Payload"]
    assert b"s3cr3t-pw" not in raw
    prof = plistlib.loads(raw)  # unsigned: no signer at the admin location
    assert prof["PayloadType"] == "Configuration"
    assert prof["PayloadIdentifier"] == "com.example.itest.enc"
    assert "PayloadContent" not in prof
    inner = decrypt(pki, "dev1", prof["EncryptedPayloadContent"], tmp_path)
    assert len(inner) == 1
    assert inner[0]["Password"] == "s3cr3t-pw"
    assert inner[0]["PayloadIdentifier"] == "com.example.itest.enc.wifi"
    # JSON, a single payload, no push
    r = admin.req("POST", "/profiles/encrypted/%s?nopush=1" % dev.udid,
                  json={"PayloadType": "com.apple.wifi.managed",
                        "SSID_STR": "guest"})
    assert r.status_code == 200, r.text
    assert r.json()["pushed"] is False
    # revoked: the certificate is no longer known, 409
    assert admin.revoke(dev.udid).status_code == 200
    r = post(admin, dev.udid, body)
    assert r.status_code == 409, r.text
    assert r.json()["id"] == "MDM05062"
