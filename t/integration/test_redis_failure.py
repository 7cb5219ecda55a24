"""Storage failures: 503 + Retry-After within mdm_redis_timeout, never a
hang, and recovery without losing queued commands."""

import concurrent.futures
import plistlib
import socket
import ssl
import threading
import time

import requests

from mdmdevice import Admin, Device, command, parse_command, sign

SLACK = 1.5


def check_503(server, resp, elapsed, limit):
    assert resp.status_code == 503, (resp.status_code, resp.text)
    ra = resp.headers.get("Retry-After")
    assert ra is not None and ra.strip().isdigit() and int(ra) > 0, ra
    assert elapsed <= limit, "503 after %.2fs (limit %.2fs)" % (elapsed,
                                                                 limit)


def timed(fn):
    t = time.time()
    r = fn()
    return r, time.time() - t


def until_ok(fn, timeout=6.0):
    """Retry fn until it answers 200; returns (response, tries)."""
    end = time.time() + timeout
    tries = 0
    while True:
        tries += 1
        r = fn()
        if r.status_code == 200 or time.time() > end:
            return r, tries
        time.sleep(0.2)


def abandon_request(server, pki, d):
    """Send a signed Idle over TLS and close without reading the answer."""
    body = plistlib.dumps({"Status": "Idle", "UDID": d.udid})
    host, port = server.base_url.split("://")[1].split(":")
    ctx = ssl.create_default_context(cafile=pki.root)
    raw = socket.create_connection(("127.0.0.1", int(port)), 5)
    s = ctx.wrap_socket(raw, server_hostname=host)
    head = ("PUT /mdm/connect HTTP/1.1\r\nHost: %s\r\n"
            "Content-Type: application/x-apple-aspen-mdm\r\n"
            "Mdm-Signature: %s\r\nContent-Length: %d\r\n\r\n" % (
                host, sign(body, d.cert_path, d.key_path), len(body)))
    s.sendall(head.encode() + body)
    time.sleep(0.2)
    s.close()


def test_redis_killed(server, pki, redis):
    redis.restart(aof=True)
    admin = Admin(server, pki)
    d = Device(server, pki)
    # the module may need a request to notice the restart
    r, _ = until_ok(d.authenticate)
    assert r.status_code == 200, r.text
    assert d.token_update().status_code == 200
    c = command("DeviceInformation", Queries=["UDID"])
    assert admin.enqueue(d.udid, c, nopush=True).status_code == 200

    redis.kill9()
    limit = server.redis_timeout + SLACK
    mark = server.log_mark()
    # several requests: both workers, both endpoints, new connections too
    for fn in (d.idle, d.idle, d.token_update,
               lambda: Device(server, pki, udid=d.udid).idle(), d.idle):
        r, el = timed(fn)
        check_503(server, r, el, limit)
    server.wait_log_id("MDM04001", mark)
    # admin calls fail the same way, without hanging
    r, el = timed(lambda: admin.queue(d.udid))
    assert r.status_code == 503 and el <= limit, (r.status_code, el)

    redis.restart(aof=True)
    r, tries = until_ok(d.idle, timeout=server.redis_timeout + 4)
    assert r.status_code == 200, (r.status_code, r.text)
    cmd = parse_command(r)
    assert cmd and cmd["CommandUUID"] == c["CommandUUID"], cmd
    assert d.ack(c["CommandUUID"]).status_code == 200
    assert admin.queue(d.udid).json()["commands"] == []


def test_redis_stopped(server, pki, redis):
    admin = Admin(server, pki)
    d = Device(server, pki).enroll()
    c = command("ProfileList")
    assert admin.enqueue(d.udid, c, nopush=True).status_code == 200

    limit = server.redis_timeout + SLACK
    mark = server.log_mark()
    redis.sigstop()
    try:
        # concurrently, so every worker's connection is exercised
        results = []

        def one():
            dd = Device(server, pki, udid=d.udid)
            try:
                results.append(timed(dd.token_update))
            except requests.exceptions.RequestException as e:
                results.append((e, None))
        ts = [threading.Thread(target=one) for _ in range(4)]
        for t in ts:
            t.start()
        # clients that give up while their request waits for Redis
        for _ in range(3):
            abandon_request(server, pki, d)
        r, el = timed(d.idle)
        for t in ts:
            t.join(30)
        check_503(server, r, el, limit)
        for r2, el2 in results:
            assert el2 is not None, r2
            check_503(server, r2, el2, limit)
        logged = server.error_log_lines(mark)
        assert any("MDM04001" in l or "MDM04002" in l for l in logged), \
            "\n".join(logged)
    finally:
        redis.cont()

    assert not server.bad_lines(mark), server.bad_lines(mark)
    # recovery: the late replies of the timed-out commands must not be
    # taken for the answers of new requests
    r, tries = until_ok(d.idle, timeout=server.redis_timeout + 4)
    assert r.status_code == 200, (r.status_code, r.text)
    cmd = parse_command(r)
    assert cmd and cmd["CommandUUID"] == c["CommandUUID"], cmd
    r = d.ack(c["CommandUUID"])
    assert r.status_code == 200 and r.content == b""
    for _ in range(6):
        r = d.idle()
        assert r.status_code == 200 and r.content == b"", (r.status_code,
                                                           r.content[:200])
    assert admin.queue(d.udid).status_code == 200


def test_redis_restart_between_requests(server, pki, redis):
    """Redis restarted while the server's connections to it are idle
    (closed by Redis): once Redis is back, no request gets a 503 (nginx
    notices the close in its event loop; a pool must not hand out a dead
    connection)."""
    def burst():
        with concurrent.futures.ThreadPoolExecutor(12) as ex:
            return list(ex.map(lambda _: Admin(server, pki).queue(
                "RESTART-TEST-0001").status_code, range(24)))

    assert 503 not in burst()   # connections opened in every worker
    redis.restart()
    time.sleep(0.3)
    mark = server.log_mark()
    try:
        got = burst()
        assert 503 not in got, (got, [l for l in server.error_log_lines(mark)
                                      if "MDM0" in l])
    finally:
        # a failure here must not leave dead connections to later tests
        for _ in range(4):
            burst()
