"""Declarative device management end to end, against both servers: the
admin stores declarations and a set and assigns the set; the device gets
the DeclarativeManagement command, fetches tokens, declaration items and
each declaration, posts status reports the admin API then returns."""

import json
import plistlib

from mdmdevice import Admin, Device

CONF = {
    "Type": "com.apple.configuration.management.test",
    "Identifier": "com.example.test",
    "ServerToken": "conf-1",
    "Payload": {"Echo": "hello"},
}
ACT = {
    "Type": "com.apple.activation.simple",
    "Identifier": "com.example.act",
    "ServerToken": "act-1",
    "Payload": {"StandardConfigurations": ["com.example.test"]},
}


def dm(d, endpoint, data=None):
    m = d._ids({"MessageType": "DeclarativeManagement",
                "Endpoint": endpoint})
    if data is not None:
        m["Data"] = data
    return d.send("checkin", m)


def put(a, decl):
    r = a.req("POST", "/ddm/declarations", data=json.dumps(decl))
    assert r.status_code == 200, r.text
    return r.json()


def next_command(d):
    r = d.idle()
    assert r.status_code == 200, r.text
    return plistlib.loads(r.content) if r.content else None


def tokens(d):
    r = dm(d, "tokens")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()["SyncTokens"]


def test_ddm_flow(server, pki, redis):
    d = Device(server, pki).enroll()
    a = Admin(server, pki)
    put(a, CONF)
    put(a, ACT)
    r = a.req("POST", "/ddm/sets/base",
              data=json.dumps({"declarations": [CONF["Identifier"],
                                                ACT["Identifier"]]}))
    assert r.status_code == 200, r.text
    r = a.req("POST", "/ddm/assign/" + d.udid,
              data=json.dumps({"sets": ["base"]}))
    assert r.status_code == 200, r.text
    assert r.json()["enrollments"]["changed"] == [d.udid]
    assert r.json()["pushed"] is True
    assert any(e[1][b"id"].decode() == d.udid
               for e in redis.client().xrange("mdm:push"))

    # the command carries the SyncTokens
    cmd = next_command(d)
    assert cmd["Command"]["RequestType"] == "DeclarativeManagement"
    sync = json.loads(cmd["Command"]["Data"])["SyncTokens"]
    t1 = sync["DeclarationsToken"]
    assert d.ack(cmd["CommandUUID"]).status_code == 200

    assert tokens(d) == sync
    assert tokens(d) == sync  # stable

    r = dm(d, "declaration-items")
    assert r.status_code == 200, r.text
    items = r.json()
    assert items["DeclarationsToken"] == t1
    decls = items["Declarations"]
    assert decls["Configurations"] == [
        {"Identifier": CONF["Identifier"], "ServerToken": "conf-1"}]
    assert decls["Activations"] == [
        {"Identifier": ACT["Identifier"], "ServerToken": "act-1"}]
    assert decls["Assets"] == [] and decls["Management"] == []

    for cat, decl in (("configuration", CONF), ("activation", ACT)):
        r = dm(d, "declaration/%s/%s" % (cat, decl["Identifier"]))
        assert r.status_code == 200, r.text
        assert r.json() == decl
    # right identifier, wrong type: not found
    mark = server.log_mark()
    r = dm(d, "declaration/asset/" + CONF["Identifier"])
    assert r.status_code == 404
    server.wait_log_id("MDM01010", mark)

    # status reports: merged item by item, errors kept, readable by admin
    report = {"StatusItems": {"device": {"identifier": {
        "serial-number": "F00", "udid": d.udid}},
        "management": {"declarations": {"configurations": [
            {"identifier": CONF["Identifier"], "active": True,
             "valid": "valid", "server-token": "conf-1"}]}}},
        "Errors": []}
    r = dm(d, "status", json.dumps(report).encode())
    assert r.status_code == 200 and not r.content, r.text
    report2 = {"StatusItems": {"device": {"operating-system": {
        "version": "17.0"}}},
        "Errors": [{"StatusItem": "softwareupdate.install-state",
                    "Reasons": [{"Code": "Error.X"}]}]}
    assert dm(d, "status", json.dumps(report2).encode()).status_code == 200
    r = a.req("GET", "/ddm/status/" + d.udid)
    assert r.status_code == 200, r.text
    st = r.json()
    dev = st["StatusItems"]["device"]
    assert dev["identifier"]["serial-number"] == "F00"
    assert dev["operating-system"]["version"] == "17.0"
    assert st["StatusItems"]["management"]["declarations"][
        "configurations"][0]["active"] is True
    assert st["Errors"] == report2["Errors"]
    kinds = [e[1] for e in redis.client().xrange("mdm:events")
             if e[1].get(b"kind") == b"ddm-status"]
    assert len(kinds) == 2 and json.loads(kinds[1][b"report"]) == report2

    # one declaration changes: a new token, a new command
    put(a, dict(CONF, ServerToken="conf-2"))
    t2 = tokens(d)["DeclarationsToken"]
    assert t2 != t1
    cmd = next_command(d)
    assert cmd["Command"]["RequestType"] == "DeclarativeManagement"
    assert json.loads(cmd["Command"]["Data"])["SyncTokens"][
        "DeclarationsToken"] == t2
    assert d.ack(cmd["CommandUUID"]).status_code == 200
    # storing it again unchanged changes nothing
    assert put(a, dict(CONF, ServerToken="conf-2"))["changed"] is False
    assert tokens(d)["DeclarationsToken"] == t2

    # out of the set: its URL is gone
    r = a.req("DELETE", "/ddm/sets/base/" + CONF["Identifier"])
    assert r.status_code == 200, r.text
    t3 = tokens(d)["DeclarationsToken"]
    assert t3 not in (t1, t2)
    mark = server.log_mark()
    r = dm(d, "declaration/configuration/" + CONF["Identifier"])
    assert r.status_code == 404
    server.wait_log_id("MDM01010", mark)
    items = dm(d, "declaration-items").json()["Declarations"]
    assert items["Configurations"] == [] and len(items["Activations"]) == 1

    r = a.req("GET", "/ddm/enrollments/" + d.udid)
    assert r.status_code == 200, r.text
    assert r.json()["sets"] == ["base"]
    assert r.json()["token"] == t3


def test_ddm_no_declarations(server, pki):
    d = Device(server, pki).enroll()
    t = tokens(d)
    r = dm(d, "declaration-items")
    assert r.status_code == 200
    assert r.json()["DeclarationsToken"] == t["DeclarationsToken"]
    assert all(v == [] for v in r.json()["Declarations"].values())


def test_ddm_bad_device_input(server, pki, redis):
    d = Device(server, pki).enroll()
    digest = redis.client().execute_command("DEBUG", "DIGEST")
    for endpoint, data, status, mid in (
            ("status", b"not json", 400, "MDM01009"),
            ("status", b"[1, 2]", 400, "MDM01009"),
            ("status", b'{"StatusItems": 3}', 400, "MDM01009"),
            ("status", None, 400, "MDM01009"),
            ("nonsense", None, 404, "MDM01008"),
            ("declaration/bogus/x", None, 404, "MDM01008")):
        mark = server.log_mark()
        r = dm(d, endpoint, data)
        assert r.status_code == status, (endpoint, r.status_code)
        server.wait_log_id(mid, mark)
        assert len([i for i in server.mdm_ids(mark) if i == mid]) == 1
    assert redis.client().execute_command("DEBUG", "DIGEST") == digest


def test_ddm_admin_refusals(server, pki, redis):
    a = Admin(server, pki)
    digest = redis.client().execute_command("DEBUG", "DIGEST")
    for body in (b"not json", b"[]", {"Identifier": "x"},
                 dict(CONF, ServerToken=None), dict(CONF, Payload=[]),
                 dict(CONF, Type="com.example.other"),
                 {k: v for k, v in CONF.items() if k != "ServerToken"}):
        if isinstance(body, dict):
            body = json.dumps({k: v for k, v in body.items()
                               if v is not None})
        r = a.req("POST", "/ddm/declarations", data=body)
        assert r.status_code == 400, body
        assert r.json()["id"] == "MDM05030", r.text
    r = a.req("POST", "/ddm/sets/s", data=json.dumps(
        {"declarations": ["nope"]}))
    assert r.status_code == 404 and r.json()["id"] == "MDM05033"
    r = a.req("POST", "/ddm/assign/UNKNOWN-UDID",
              data=json.dumps({"sets": ["nope"]}))
    assert r.status_code == 404 and r.json()["id"] == "MDM05034"
    r = a.req("GET", "/ddm/status/UNKNOWN-UDID")
    assert r.status_code == 404 and r.json()["id"] == "MDM05037"
    r = a.req("PATCH", "/ddm/sets")
    assert r.status_code in (404, 405)
    assert redis.client().execute_command("DEBUG", "DIGEST") == digest
    put(a, CONF)
    r = a.req("POST", "/ddm/assign/UNKNOWN-UDID",
              data=json.dumps({"declarations": [CONF["Identifier"]]}))
    assert r.status_code == 404 and r.json()["id"] == "MDM05007"
