"""Refused requests: the status, the MDM id in the error log, no change in
Redis, and never a 401 on a device endpoint."""

import base64
import http.client
import plistlib
import ssl

import pytest
import requests

from mdmdevice import Admin, Device, command, sign

DEVICE_PATHS = ["/mdm/checkin", "/mdm/connect", "/mdm"]


def digest(redis):
    """DEBUG DIGEST-VALUE of every key but the events stream, and the
    events stream's entries (reported apart: a clearer message)."""
    c = redis.client()
    keys = sorted(k for k in c.keys("*") if k != b"mdm:events")
    vals = c.execute_command("DEBUG", "DIGEST-VALUE", *keys) if keys else []
    return dict(zip(keys, vals)), c.xrange("mdm:events")


def refused(server, redis, resp_fn, status, mdm_id):
    """Run resp_fn; assert status, the logged id, Redis unchanged."""
    before = digest(redis)
    mark = server.log_mark()
    r = resp_fn()
    assert r.status_code == status, (r.status_code, r.text)
    assert r.status_code != 401
    if mdm_id:
        server.wait_log_id(mdm_id, mark)
    after = digest(redis)
    assert after[0] == before[0], "a refused request changed Redis keys"
    assert after[1] == before[1], \
        "a refused request appended to mdm:events: %r" % (
            after[1][len(before[1]):],)
    return r


def test_certificate_reuse(server, pki, redis):
    a = Device(server, pki, ident="dev1").enroll()
    b = Device(server, pki, ident="dev1")
    refused(server, redis, b.authenticate, 400, "MDM03002")
    assert not redis.client().exists("mdm:{%s}:rec" % b.udid)
    # the first enrollment still works
    assert a.idle().status_code == 200


@pytest.mark.parametrize("identity", ["signature", "tls"])
def test_certificate_mismatch(identity, server, pki, redis):
    a = Device(server, pki, ident="dev1", identity=identity).enroll()
    evil = Device(server, pki, udid=a.udid, ident="dev2", identity=identity)
    refused(server, redis, evil.idle, 400, "MDM03004")
    refused(server, redis, evil.token_update, 400, "MDM03004")
    refused(server, redis, evil.checkout, 400, "MDM03004")


@pytest.mark.parametrize("identity", ["signature", "tls"])
def test_revoked_certificate(identity, server, pki, redis):
    """Revoked through the admin API: refused on its next check-in and
    command request (Authenticate included), a new identity enrolls."""
    d = Device(server, pki, ident="dev1", identity=identity).enroll()
    admin = Admin(server, pki)
    mark = server.log_mark()
    r = admin.revoke(d.udid)
    assert r.status_code == 200, r.text
    server.wait_log_id("MDM05017", mark)
    assert len(r.json()["revoked"]) == 64
    for fn in (d.idle, d.token_update, d.authenticate):
        refused(server, redis, fn, 400, "MDM03005")
    assert admin.revoke(d.udid).status_code == 409
    assert admin.revoke(d.udid, "zz").status_code == 400
    fresh = Device(server, pki, udid=d.udid, ident="dev2",
                   identity=identity).enroll()
    assert fresh.idle().status_code == 200


def test_unbound(server, pki, redis):
    d = Device(server, pki)
    refused(server, redis, d.idle, 400, "MDM03003")


def test_unknown_topic(server, pki, redis):
    d = Device(server, pki, topic="com.apple.mgmt.External.not-ours")
    refused(server, redis, d.authenticate, 400, "MDM03001")


@pytest.mark.parametrize("body", [
    b"garbage, not a plist",
    b"<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>Mess",
    plistlib.dumps(["an", "array"]),
    b"",
])
def test_bad_plist(body, server, pki, redis):
    d = Device(server, pki)
    refused(server, redis, lambda: d.send_raw("checkin", body), 400,
            "MDM01001")


def test_message_errors(server, pki, redis):
    d = Device(server, pki)
    refused(server, redis, lambda: d.send("checkin", {
        "MessageType": "Florp", "UDID": d.udid, "Topic": d.topic}),
        400, "MDM01004")
    refused(server, redis, lambda: d.send("checkin", {
        "MessageType": "Authenticate", "Topic": d.topic}), 400, None)
    d.enroll()
    refused(server, redis, lambda: d.report("Florping"), 400, "MDM01005")
    refused(server, redis, lambda: d.send("report", {
        "Status": "Idle", "UDID": "bad udid{}"}), 400, "MDM01006")


def test_bad_signatures(server, pki, redis):
    d = Device(server, pki)
    msg = plistlib.dumps(d.authenticate_msg())
    good = sign(msg, d.cert_path, d.key_path)
    other = plistlib.dumps(dict(d.authenticate_msg(), DeviceName="x"))
    cases = {
        "tampered": (other, good),
        "not base64": (msg, "!!!not*base64!!!"),
        "random": (msg, base64.b64encode(b"\x30\x82" + b"A" * 300).decode()),
        "truncated": (msg, good[:len(good) // 2]),
        "other body": (msg, sign(b"something else", d.cert_path,
                                 d.key_path)),
    }
    for name, (body, sig) in cases.items():
        refused(server, redis, lambda: d.send_raw(
            "checkin", body, headers={"Mdm-Signature": sig}), 400, "MDM02002")


def test_missing_identity(server, pki, redis):
    d = Device(server, pki, identity="none")
    refused(server, redis, d.authenticate, 400, "MDM02001")
    p = Device(server, pki, identity="none", base_url=server.proxied_url)
    refused(server, redis, p.authenticate, 400, "MDM02001")


def test_bad_proxy_header(server, pki, redis):
    d = Device(server, pki, identity="none", base_url=server.proxied_url)
    for v in [":not base64!:", ":" + base64.b64encode(b"junk").decode() + ":",
              "-----BEGIN%20CERTIFICATE-----garbage"]:
        refused(server, redis, lambda: d.send(
            "checkin", d.authenticate_msg(), headers={"Client-Cert": v}),
            400, "MDM02004")


@pytest.mark.parametrize("ident", ["expired", "notyet", "stranger",
                                   "serverauth", "selfsigned"])
def test_refused_certificate_signature(ident, server, pki, redis):
    d = Device(server, pki, ident=ident)
    refused(server, redis, d.authenticate, 400, "MDM02005")


@pytest.mark.parametrize("ident", ["stranger", "serverauth"])
def test_refused_certificate_tls(ident, server, pki, redis):
    # (an expired TLS certificate is refused by nginx itself, before us)
    d = Device(server, pki, ident=ident, identity="tls")
    if server.name == "apache" and ident == "serverauth":
        # mod_ssl's optional_no_ca forgives only an unknown issuer: a
        # certificate not for clientAuth fails the handshake (AH02276,
        # "unsuitable certificate purpose"), before the module sees it
        before = digest(redis)
        mark = server.log_mark()
        with pytest.raises(requests.exceptions.ConnectionError):
            d.authenticate()
        server.wait_log_id("AH02276", mark)
        assert digest(redis) == before
        return
    refused(server, redis, d.authenticate, 400, "MDM02005")


@pytest.mark.parametrize("ident", ["expired", "stranger"])
def test_refused_certificate_header(ident, server, pki, redis):
    d = Device(server, pki, ident=ident, identity="header")
    refused(server, redis, d.authenticate, 400, "MDM02005")


def raw_put(server, pki, path, length, url=None):
    """Send only the headers of a huge PUT and read the answer."""
    url = url or server.base_url
    host, port = url.split("://")[1].split(":")
    if url.startswith("https"):
        ctx = ssl.create_default_context(cafile=pki.root)
        c = http.client.HTTPSConnection(host, int(port), context=ctx,
                                        timeout=10)
    else:
        c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.putrequest("PUT", path)
    c.putheader("Content-Type", "application/x-apple-aspen-mdm")
    c.putheader("Content-Length", str(length))
    c.endheaders()
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


@pytest.mark.parametrize("path", DEVICE_PATHS)
def test_oversized_body(path, server, pki, redis):
    before = digest(redis)
    assert raw_put(server, pki, path, 2 * 1024 * 1024) == 413
    # and a real 1.5 MB signed body, streamed (chunked: no Content-Length)
    d = Device(server, pki)
    big = plistlib.dumps(dict(d.authenticate_msg(), Pad="x" * 1500000))
    h = {"Content-Type": "application/x-apple-aspen-mdm-checkin",
         "Mdm-Signature": sign(big, d.cert_path, d.key_path)}
    try:
        r = d.session.put(server.base_url + path, data=iter([big]),
                          headers=h, timeout=15)
        assert r.status_code == 413, r.status_code
    except requests.exceptions.ConnectionError:
        pass  # nginx may close while we still send; the header case counts
    assert digest(redis) == before


@pytest.mark.parametrize("path", DEVICE_PATHS)
@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH"])
def test_wrong_method(path, method, server, pki, redis):
    d = Device(server, pki)
    refused(server, redis, lambda: d.send(
        "checkin", d.authenticate_msg(), method=method,
        url=server.base_url + path), 405, None)


def test_never_401(server, pki, redis):
    """A device is never told 401, whatever it sends."""
    d = Device(server, pki, identity="none")
    statuses = set()
    for base in (server.base_url, server.proxied_url):
        for path in DEVICE_PATHS:
            if base == server.proxied_url and path != "/mdm":
                continue
            for h in ({}, {"Authorization": "Basic Zm9vOmJhcg=="},
                      {"Mdm-Signature": "xx"},
                      {"Authorization": "Bearer x", "Mdm-Signature": ""}):
                for m in ("PUT", "GET"):
                    r = d.send("checkin", d.authenticate_msg(), headers=h,
                               method=m, url=base + path)
                    statuses.add(r.status_code)
    assert 401 not in statuses, statuses
    assert statuses <= {400, 405}, statuses


def test_admin_auth(server, pki, redis):
    d = Device(server, pki).enroll()
    c = command("ProfileList")
    # no basic auth: nginx's own 401 (the admin, not a device)
    r = Admin(server, pki, auth=False).enqueue(d.udid, c)
    assert r.status_code == 401
    # basic auth, no key / wrong key: 403 JSON
    for key in (False, "wrong-key"):
        r = Admin(server, pki, key=key).enqueue(d.udid, c)
        assert r.status_code == 403, (r.status_code, r.text)
        assert r.headers["Content-Type"].startswith("application/json")
        r.json()
        r = Admin(server, pki, key=key).queue(d.udid)
        assert r.status_code == 403
    # wrong password
    a = Admin(server, pki)
    a.s.auth = ("admin", "wrong")
    assert a.queue(d.udid).status_code == 401
    # nothing was queued
    assert Admin(server, pki).queue(d.udid).json()["commands"] == []


def test_admin_errors(server, pki, redis, admin):
    a = Device(server, pki).enroll()
    b = Device(server, pki, ident="dev2").enroll()
    unknown = "UNKNOWN-ENROLLMENT-0001"

    c = command("ProfileList")
    r = admin.enqueue(unknown, c)
    assert r.status_code == 404, r.text
    assert r.json()["enrollments"] == {unknown: "unknown"}
    r = admin.enqueue(a.udid, c, nopush=True)
    assert r.status_code == 200
    r = admin.enqueue(a.udid, c, nopush=True)
    assert r.status_code == 409, r.text
    assert r.json()["enrollments"] == {a.udid: "duplicate"}
    r = admin.enqueue([a.udid, b.udid, unknown], c, nopush=True)
    assert r.status_code == 207, r.text
    assert r.json()["enrollments"] == {a.udid: "duplicate",
                                       b.udid: "queued", unknown: "unknown"}
    # an answered uuid is a duplicate too
    r = a.idle()
    assert plistlib.loads(r.content)["CommandUUID"] == c["CommandUUID"]
    a.ack(c["CommandUUID"])
    assert admin.enqueue(a.udid, c, nopush=True).status_code == 409

    assert admin.enrollment(unknown).status_code == 404
    assert admin.result(a.udid, "NO-SUCH-UUID").status_code == 404
    assert admin.delete(a.udid, "NO-SUCH-UUID").status_code == 404

    # delete one, clear all
    c2, c3 = command("DeviceInformation"), command("SecurityInfo")
    for x in (c2, c3):
        assert admin.enqueue(a.udid, x, nopush=True).status_code == 200
    r = admin.delete(a.udid, c2["CommandUUID"])
    assert r.status_code == 200 and r.json() == {"removed": 1}
    assert [x["uuid"] for x in admin.queue(a.udid).json()["commands"]] == \
        [c3["CommandUUID"]]
    r = admin.delete(b.udid)
    assert r.status_code == 200 and r.json() == {"removed": 1}
    r = admin.delete(a.udid)
    assert r.status_code == 200 and r.json() == {"removed": 1}

    # push
    r = admin.push([a.udid, b.udid])
    assert r.status_code == 200, r.text
    assert sorted(r.json()["pushed"]) == sorted([a.udid, b.udid])
    ids = [e[1][b"id"].decode() for e in redis.client().xrange("mdm:push")]
    assert sorted(ids) == sorted([a.udid, b.udid])

    # bad input
    for raw in (b"{not json", b"{}", b'{"Command": {}}', b"\x00\x01"):
        r = admin.enqueue(a.udid, None, raw=raw, ctype="application/json")
        assert r.status_code == 400, (raw, r.status_code, r.text)
    # wrong method on a known path, unknown path
    assert admin.req("GET", "/enqueue/" + a.udid).status_code == 405
    assert admin.req("PUT", "/queue/" + a.udid).status_code == 405
    assert admin.req("POST", "/enrollments/" + a.udid).status_code == 405
    assert admin.req("GET", "/push/" + a.udid).status_code == 405
    assert admin.req("GET", "/no-such-thing").status_code == 404
    assert admin.req("GET", "/").status_code == 404


def test_admin_only_from_localhost(server, pki):
    """The admin API is for 127.0.0.1 only (nginx allow/deny, Apache
    Require ip): a client on 127.0.0.2 gets 403, credentials or not."""
    host, port = server.base_url.split("://")[1].split(":")
    ctx = ssl.create_default_context(cafile=pki.root)
    auth = base64.b64encode(("%s:%s" % server.admin_auth).encode()).decode()
    c = http.client.HTTPSConnection(host, int(port), context=ctx,
                                    timeout=10,
                                    source_address=("127.0.0.2", 0))
    try:
        c.request("GET", "/mdm/admin/queue/SOME-DEVICE",
                  headers={"Authorization": "Basic " + auth,
                           "X-API-Key": server.admin_key})
        r = c.getresponse()
        r.read()
    finally:
        c.close()
    assert r.status == 403, r.status
