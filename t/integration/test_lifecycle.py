"""A device's whole life through the module, for each identity source."""

import plistlib
import os
import time
import uuid as uuidlib

import pytest

from conftest import SAMPLES
from mdmdevice import (Device, SHARED_IPAD_USER, command, parse_command,
                       cert_sha256)

MODES = {
    # name: (identity, endpoint)
    "signature-split": ("signature", "split"),
    "tls-split": ("tls", "split"),
    "header-proxied": ("header", "combined"),
    "pem-header-proxied": ("pem-header", "combined"),
    "signature-combined": ("signature", "combined"),
    "tls-combined": ("tls", "combined"),
}


def rec(redis, eid):
    d, _, rest = eid.partition(":")
    key = "mdm:{%s}%s:rec" % (d, (":" + rest) if rest else "")
    return {k.decode(): v for k, v in redis.client().hgetall(key).items()}


def rkey(eid, suffix):
    d, _, rest = eid.partition(":")
    return "mdm:{%s}%s:%s" % (d, (":" + rest) if rest else "", suffix)


def flag(v):
    return str(v).lower() in ("1", "true")


def expect_cmd(resp, uuid, request_type):
    assert resp.status_code == 200, (resp.status_code, resp.text)
    cmd = parse_command(resp)
    assert cmd is not None, "expected command %s, got an empty 200" % uuid
    assert cmd["CommandUUID"] == uuid, cmd
    assert cmd["Command"]["RequestType"] == request_type, cmd
    return cmd


def expect_empty(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text)
    assert resp.content == b"", resp.content


@pytest.mark.parametrize("mode", sorted(MODES))
def test_lifecycle(mode, server, pki, redis, admin):
    identity, endpoint = MODES[mode]
    dev = Device(server, pki, identity=identity, endpoint=endpoint)
    eid = dev.udid

    # Authenticate: record created, disabled until TokenUpdate
    r = dev.authenticate()
    expect_empty(r)
    rr = rec(redis, eid)
    assert rr, "no record after Authenticate"
    assert not flag(rr.get(b"enabled".decode(), b"0").decode()), rr
    assert rr["cert"].decode().lower() == cert_sha256(dev.cert_path)
    assert rr["topic"].decode() == server.topic
    # the certificate claim
    assert redis.client().get("mdm:cert:" + cert_sha256(dev.cert_path)) \
        == eid.encode()

    # enqueue before TokenUpdate works (the enrollment exists)
    expect_empty(dev.token_update())
    rr = rec(redis, eid)
    assert flag(rr["enabled"].decode()), rr
    assert rr["token"].decode().lower() == dev.token.hex()
    assert rr["magic"].decode() == dev.magic

    r = admin.enrollment(eid)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["id"] == eid
    assert flag(j["record"]["enabled"])
    assert j["queue_length"] == 0

    # three commands: JSON envelope, bare JSON, plist envelope
    c1 = command("DeviceInformation", Queries=["OSVersion", "UDID"])
    r = admin.enqueue(eid, c1)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["command_uuid"] == c1["CommandUUID"]
    assert j["request_type"] == "DeviceInformation"
    assert j["enrollments"] == {eid: "queued"}
    assert j["pushed"] is True
    push = redis.client().xrange("mdm:push")
    assert [e[1][b"id"] for e in push] == [eid.encode()]

    r = admin.enqueue(eid, {"RequestType": "ProfileList"}, nopush=True)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["pushed"] is False
    u2 = j["command_uuid"]
    assert u2 and j["request_type"] == "ProfileList"
    assert len(redis.client().xrange("mdm:push")) == 1

    c3 = command("SecurityInfo")
    r = admin.enqueue(eid, None, raw=plistlib.dumps(c3), nopush=True,
                      ctype="application/xml")
    assert r.status_code == 200, r.text
    u1, u3 = c1["CommandUUID"], c3["CommandUUID"]

    r = admin.queue(eid)
    assert r.status_code == 200, r.text
    q = r.json()
    assert q["id"] == eid
    assert [c["uuid"] for c in q["commands"]] == [u1, u2, u3]
    assert [c["request_type"] for c in q["commands"]] == [
        "DeviceInformation", "ProfileList", "SecurityInfo"]
    assert not any(flag(c["notnow"]) for c in q["commands"])

    # Idle -> c1; Ack c1 -> c2; NotNow c2 -> c3; Error c3 -> nothing
    cmd = expect_cmd(dev.idle(), u1, "DeviceInformation")
    assert cmd["Command"]["Queries"] == ["OSVersion", "UDID"]
    expect_cmd(dev.ack(u1, QueryResponses={"OSVersion": "17.0"}), u2,
               "ProfileList")
    expect_cmd(dev.notnow(u2), u3, "SecurityInfo")
    chain = [{"ErrorCode": 12021, "ErrorDomain": "MCMDMErrorDomain",
              "LocalizedDescription": "nope", "USEnglishDescription": "nope"}]
    expect_empty(dev.error(u3, chain))

    q = admin.queue(eid).json()
    assert [c["uuid"] for c in q["commands"]] == [u2]

    # results
    r = admin.result(eid, u1)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["id"] == eid and j["uuid"] == u1
    assert j["status"] == "Acknowledged"
    body = plistlib.loads(j["body"].encode())
    assert body["QueryResponses"] == {"OSVersion": "17.0"}
    r = admin.result(eid, u3)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["status"] == "Error"
    assert plistlib.loads(j["body"].encode())["ErrorChain"] == chain
    ttl = redis.client().ttl(rkey(eid, "res:" + u3))
    assert 0 < ttl <= 7 * 86400, ttl
    assert admin.result(eid, u2).status_code == 404

    # the NotNow'd command comes back at the next Idle
    expect_cmd(dev.idle(), u2, "ProfileList")
    expect_empty(dev.ack(u2))
    expect_empty(dev.idle())
    assert admin.queue(eid).json()["commands"] == []

    # events stream: one entry per accepted message
    ev = redis.client().xrange("mdm:events")
    assert len(ev) >= 9, ev

    # CheckOut disables
    expect_empty(dev.checkout())
    assert not flag(rec(redis, eid)["enabled"].decode())
    assert not flag(admin.enrollment(eid).json()["record"]["enabled"])

    # the module's variables in the access log (conf/nginx/log-format.conf)
    lines = [l for l in access_lines(server) if (" id=" + eid + " ") in l]
    sha = cert_sha256(dev.cert_path)
    want = [
        ("msg=Authenticate", "type=Device", "cert=" + sha, "err=-"),
        ("msg=Idle", "uuid=- next=" + u1),
        ("msg=Acknowledged", "uuid=%s next=%s" % (u1, u2)),
        ("msg=NotNow", "uuid=%s next=%s" % (u2, u3)),
        ("msg=Error", "uuid=%s next=-" % u3),
    ]
    for parts in want:
        assert any(all(p in l for p in parts) for l in lines), \
            (parts, lines)


def access_lines(server):
    out = []
    for path in (server.access_log, server.default_access_log):
        try:
            with open(path, errors="replace") as f:
                out += f.read().splitlines()
        except FileNotFoundError:
            pass
    return out


def test_user_channel(server, pki, redis, admin):
    dev = Device(server, pki).enroll()
    user = dev.user(str(uuidlib.uuid4()).upper(), short="jdoe",
                    long="John Doe")
    r = user.token_update()
    assert r.status_code == 200, r.text
    eid = user.enrollment_id
    assert eid == dev.udid + ":" + user.user_id
    rr = rec(redis, eid)
    assert rr["type"] == b"User", rr
    assert flag(rr["enabled"].decode())
    assert rr["parent"].decode() == dev.udid

    c = command("ProfileList")
    r = admin.enqueue(eid, c, nopush=True)
    assert r.status_code == 200, r.text
    # the device channel does not get the user's command
    expect_empty(dev.idle())
    expect_cmd(user.idle(), c["CommandUUID"], "ProfileList")
    expect_empty(user.ack(c["CommandUUID"]))
    assert admin.result(eid, c["CommandUUID"]).json()["status"] == \
        "Acknowledged"

    # a command for the device and one for the user in one call
    c2 = command("DeviceInformation", Queries=["UDID"])
    r = admin.enqueue([dev.udid, eid], c2, nopush=True)
    assert r.status_code == 200, r.text
    assert r.json()["enrollments"] == {dev.udid: "queued", eid: "queued"}
    expect_cmd(dev.idle(), c2["CommandUUID"], "DeviceInformation")
    expect_cmd(user.idle(), c2["CommandUUID"], "DeviceInformation")

    # Authenticate clears the queues of the device and its users
    r = dev.authenticate()
    assert r.status_code == 200, r.text
    assert admin.queue(eid).json()["commands"] == []
    assert admin.queue(dev.udid).json()["commands"] == []

    expect_empty(user.checkout())


def test_shared_ipad(server, pki, redis, admin):
    dev = Device(server, pki).enroll()
    user = dev.user(SHARED_IPAD_USER, short="student42")
    r = user.token_update()
    assert r.status_code == 200, r.text
    eid = dev.udid + ":student42"
    assert user.enrollment_id == eid
    rr = rec(redis, eid)
    assert rr["type"] == b"SharediPad", rr
    assert rr["user_short_name"] == b"student42"

    c = command("InstalledApplicationList")
    assert admin.enqueue(eid, c, nopush=True).status_code == 200
    expect_empty(dev.idle())
    expect_cmd(user.idle(), c["CommandUUID"], "InstalledApplicationList")
    expect_empty(user.notnow(c["CommandUUID"]))
    expect_cmd(user.idle(), c["CommandUUID"], "InstalledApplicationList")
    expect_empty(user.ack(c["CommandUUID"]))


def sample(path):
    with open(os.path.join(SAMPLES, path), "rb") as f:
        return f.read()


def test_real_samples_commandment(server, pki, redis, admin):
    """Real iOS 11.3.1 messages, byte for byte, signed by dev1."""
    udid = "1c111c111c111c111c111c111c111c111c111c11"
    topic = "com.apple.mgmt.XServer.1c111c11-1c11-1c11-1c11-1c111c111c11"
    dev = Device(server, pki, udid=udid, topic=topic)

    expect_empty(dev.send_raw("checkin", sample(
        "commandment/Authenticate/IOS-11.3.1.xml")))
    rr = rec(redis, udid)
    assert rr["serial"] == b"XXXXXXXXXXXX"
    assert rr["product"] == b"iPad4,1"
    assert rr["os"] == b"11.3.1"
    expect_empty(dev.send_raw("checkin", sample(
        "commandment/TokenUpdate/iOS-11.3.1.xml")))
    rr = rec(redis, udid)
    assert flag(rr["enabled"].decode())
    assert rr["magic"] == b"AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA"

    uuids = {
        "3ab89975-490b-4f33-80c7-0982069272ba": ("DeviceInformation",
            "commandment/DeviceInformation/iOS-11.3.1.xml", "Acknowledged"),
        "bb5d7813-e7c3-4279-b954-4b678925de5f": ("DeviceLock",
            "commandment/NotNow/iOS-11.3.1.xml", "NotNow"),
        "52aab5d2-6a61-4fe8-b685-44f8b56972d0": ("ProfileList",
            "commandment/Errors/iOS-11.3.1-CommandFormatError.xml",
            "CommandFormatError"),
        "93289d88-c8da-4732-9a7e-33dd51851b6e": ("AvailableOSUpdates",
            "commandment/Errors/iOS-11.3.1-AvailableOSUpdatesFailure.xml",
            "Error"),
    }
    order = list(uuids)
    for u in order:
        r = admin.enqueue(udid, command(uuids[u][0], uuid=u), nopush=True)
        assert r.status_code == 200, r.text

    expect_cmd(dev.idle(), order[0], uuids[order[0]][0])
    for i, u in enumerate(order):
        body = sample(uuids[u][1])
        r = dev.send_raw("report", body)
        nxt = order[i + 1] if i + 1 < len(order) else None
        if nxt:
            expect_cmd(r, nxt, uuids[nxt][0])
        else:
            expect_empty(r)
        if uuids[u][2] != "NotNow":
            j = admin.result(udid, u).json()
            assert j["status"] == uuids[u][2]
            assert j["body"].encode() == body
    # the NotNow'd DeviceLock again at the next Idle
    expect_cmd(dev.idle(), order[1], "DeviceLock")

    expect_empty(dev.send_raw("checkin", sample(
        "commandment/CheckOut/iOS-11.3.1.xml")))
    assert not flag(rec(redis, udid)["enabled"].decode())


def test_real_samples_nanomdm_and_user(server, pki, redis, admin):
    udid = "663b07bb783e9ade1dae4fbb92ea12afc0ce5b69"
    dev = Device(server, pki, udid=udid, ident="dev2",
                 topic="com.apple.mgmt.External."
                       "e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9")
    expect_empty(dev.send_raw("checkin", sample(
        "nanomdm/mdm_testdata_Authenticate.1.plist")))
    expect_empty(dev.send_raw("checkin", sample(
        "nanomdm/mdm_testdata_TokenUpdate.1.plist")))
    rr = rec(redis, udid)
    assert rr["serial"] == b"F5JM992LF193"
    assert rr["token"].decode().lower() == \
        "47e8eec062c2f729ec1703c1b3e18f1971d85f00be76445d34080baa701b5f51"
    assert rr["unlock"].startswith(b"DATA")

    # a real macOS user-channel TokenUpdate (device first, same cert)
    mudid = "E3568F17-92ED-450A-8904-C3BF4CB7E9A5"
    mac = Device(server, pki, udid=mudid, ident="dev1",
                 topic="com.apple.mgmt.commandment.dev")
    mac.enroll()
    expect_empty(mac.send_raw("checkin", sample(
        "commandment/TokenUpdate/10.12.2-user.xml")))
    eid = mudid + ":A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883"
    rr = rec(redis, eid)
    assert rr["type"] == b"User"
    assert rr["user_short_name"] == b"cjoe"
    r = admin.enrollment(eid)
    assert r.status_code == 200 and r.json()["id"] == eid


def test_access_log_of_refusals(server, pki, redis):
    """A refusal's MDM id and identity verdict reach the access log (an
    identity refusal comes before the message is read: id=-)."""
    stranger = Device(server, pki, ident="stranger")
    unbound = Device(server, pki)
    cases = [
        (stranger.authenticate, ("id=- ", "identity=untrusted",
                                 "cert=" + cert_sha256(stranger.cert_path),
                                 "err=MDM02005")),
        (Device(server, pki, identity="none").authenticate,
         ("id=- ", "identity=none", "cert=- ", "err=MDM02001")),
        (unbound.idle, ("id=%s " % unbound.udid, "msg=Idle", "identity=ok",
                        "err=MDM03003")),
    ]
    def new_lines(marks=None):
        out = []
        for i, path in enumerate((server.access_log,
                                  server.default_access_log)):
            try:
                with open(path, errors="replace") as f:
                    ls = f.read().splitlines()
            except FileNotFoundError:
                ls = []
            out.append(ls[marks[i]:] if marks else ls)
        return out

    marks = [len(ls) for ls in new_lines()]
    for fn, _ in cases:
        assert fn().status_code == 400
    end = time.time() + 2
    while True:
        lines = sum(new_lines(marks), [])
        missing = [want for _, want in cases
                   if not any(" 400 " in l and all(w in l for w in want)
                              for l in lines)]
        if not missing or time.time() > end:
            break
        time.sleep(0.1)
    assert not missing, (missing, lines)
