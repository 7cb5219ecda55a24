"""Large bodies, concurrency, Redis over a unix socket."""

import concurrent.futures
import plistlib

from conftest import make_server
from mdmdevice import Admin, Device, command, parse_command


def test_large_report_body(server, pki, admin):
    """A report well over client_body_buffer_size (the body goes to a temp
    file the workers must be able to read) is stored byte for byte."""
    d = Device(server, pki).enroll()
    c = command("InstalledApplicationList")
    assert admin.enqueue(d.udid, c, nopush=True).status_code == 200
    assert parse_command(d.idle())["CommandUUID"] == c["CommandUUID"]
    apps = [{"Identifier": "com.example.app%05d" % i,
             "Name": "Application number %d" % i, "Version": "1.%d" % i,
             "BundleSize": i * 1000, "DynamicSize": i}
            for i in range(3000)]
    msg = {"Status": "Acknowledged", "UDID": d.udid,
           "CommandUUID": c["CommandUUID"],
           "InstalledApplicationList": apps}
    body = plistlib.dumps(msg)
    assert 300 * 1024 < len(body) < 1024 * 1024, len(body)
    r = d.send_raw("report", body)
    assert r.status_code == 200, (r.status_code, r.text)
    j = admin.result(d.udid, c["CommandUUID"]).json()
    assert j["status"] == "Acknowledged"
    assert j["body"].encode() == body


def test_concurrent_devices(server, pki, redis, admin):
    """Many enrollments (user channels of one device: one certificate
    binds one device) at once, each over its own connection, both
    workers: every one gets its own command, none another's."""
    n = 24
    base = Device(server, pki, ident="dev1").enroll()
    users = [base.user("U%04d-%s" % (i, "X" * 8)) for i in range(n)]
    for u in users:
        assert u.token_update().status_code == 200
    cmds = {}
    for u in users:
        c = command("ProfileList")
        cmds[u.enrollment_id] = c["CommandUUID"]
        assert admin.enqueue(u.enrollment_id, c, nopush=True) \
            .status_code == 200

    def run(u):
        r = u.idle()
        got = parse_command(r)["CommandUUID"] if r.content else None
        r2 = u.ack(got) if got else None
        return u.enrollment_id, r.status_code, got, \
            r2.status_code if r2 else None, r2.content if r2 else None

    with concurrent.futures.ThreadPoolExecutor(12) as ex:
        res = list(ex.map(run, users))
    for eid, st, got, st2, body2 in res:
        assert st == 200 and got == cmds[eid], (eid, st, got, cmds[eid])
        assert st2 == 200 and body2 == b""
    for u in users:
        assert admin.queue(u.enrollment_id).json()["commands"] == []


def test_redis_unix_socket(server, pki, redis, upstream, tmp_path):
    srv = make_server(server.name, str(tmp_path / "unix-run"), pki, redis,
                      upstream, redis_addr="unix:" + redis.socket)
    srv.start()
    try:
        d = Device(srv, pki).enroll()
        a = Admin(srv, pki)
        c = command("DeviceInformation", Queries=["UDID"])
        assert a.enqueue(d.udid, c, nopush=True).status_code == 200
        r = d.idle()
        assert r.status_code == 200
        assert parse_command(r)["CommandUUID"] == c["CommandUUID"]
        assert redis.client().exists("mdm:{%s}:rec" % d.udid)
    finally:
        srv.stop()
    assert not srv.bad_lines(), srv.bad_lines()


def test_ec_device_identity(server, pki, redis, admin):
    """An EC P-256 device identity, by signature and over TLS."""
    for identity in ("signature", "tls"):
        d = Device(server, pki, ident="devec", identity=identity).enroll()
        c = command("SecurityInfo")
        assert admin.enqueue(d.udid, c, nopush=True).status_code == 200
        assert parse_command(d.idle())["CommandUUID"] == c["CommandUUID"]
        r = d.ack(c["CommandUUID"])
        assert r.status_code == 200 and r.content == b""
        assert d.checkout().status_code == 200
        # free the certificate for the next round
        redis.client().flushall()


def test_user_authenticate_gone(server, pki):
    d = Device(server, pki).enroll()
    u = d.user("C0FFEE00-1111-2222-3333-444455556666", short="jane")
    mark = server.log_mark()
    r = u.send("checkin", u._ids({"MessageType": "UserAuthenticate"}))
    assert r.status_code == 410, (r.status_code, r.text)
    assert not server.bad_lines(mark)
