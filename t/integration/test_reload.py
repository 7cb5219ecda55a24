"""Reload under load (nginx SIGHUP, Apache SIGUSR1 graceful restart) and
stop (nginx SIGQUIT, Apache SIGTERM)."""

import threading
import time

import requests

from conftest import BAD_LOG, UNEXPECTED, make_server
from mdmdevice import Admin, Device, command, parse_command


def poll_loop(server, pki, udid, stop, out):
    d = Device(server, pki, udid=udid)
    while not stop.is_set():
        try:
            r = d.idle()
        except requests.exceptions.ConnectionError as e:
            # a keep-alive connection closed by an old worker: retry once
            # on a new connection
            d = Device(server, pki, udid=udid)
            out["retried"] += 1
            try:
                r = d.idle()
            except requests.exceptions.RequestException as e2:
                out["failed"].append("retry failed: %r (first %r)" % (e2, e))
                continue
        except requests.exceptions.RequestException as e:
            out["failed"].append(repr(e))
            continue
        out["n"] += 1
        if r.status_code != 200:
            out["failed"].append("%d %r" % (r.status_code, r.text[:200]))
        elif r.content:
            out["commands"].append(parse_command(r)["CommandUUID"])


def test_reload_under_load(server, pki, redis):
    d = Device(server, pki).enroll()
    mark = server.log_mark()
    stop = threading.Event()
    out = {"n": 0, "retried": 0, "failed": [], "commands": []}
    ts = [threading.Thread(target=poll_loop,
                           args=(server, pki, d.udid, stop, out))
          for _ in range(4)]
    for t in ts:
        t.start()
    try:
        time.sleep(0.7)
        n0 = out["n"]
        server.reload()
        time.sleep(0.7)
        # commands enqueued after the reload reach the device
        c = command("ProfileList")
        assert Admin(server, pki).enqueue(d.udid, c, nopush=True) \
            .status_code == 200
        time.sleep(0.7)
    finally:
        stop.set()
        for t in ts:
            t.join(20)
    assert out["n"] > n0 > 0, out["n"]
    assert not out["failed"], out["failed"][:10]
    assert c["CommandUUID"] in out["commands"]
    bad = [l for l in server.error_log_lines(mark) if UNEXPECTED.search(l)
           or BAD_LOG.search(l)]
    assert not bad, "\n".join(bad)


def test_graceful_stop(server, pki, redis, upstream, tmp_path):
    """A second instance: used (Redis connections open in every worker),
    reloaded, then stopped (nginx SIGQUIT, Apache SIGTERM): no
    open-socket alerts, prompt exit."""
    run = str(tmp_path / "quit-run")
    srv = make_server(server.name, run, pki, redis, upstream)
    srv.start()
    try:
        for _ in range(2):
            redis.client().flushall()
            ds = [Device(srv, pki, ident=i) for i in ("dev1", "dev2")]
            for dd in ds:
                dd.enroll()
                for _ in range(4):
                    r = Device(srv, pki, udid=dd.udid, ident=dd.ident).idle()
                    assert r.status_code == 200
            srv.reload()
        t = time.time()
        srv.stop()
        assert time.time() - t < 10
    finally:
        srv.stop()
    lines = srv.error_log_lines()
    bad = [l for l in lines if BAD_LOG.search(l) or UNEXPECTED.search(l)]
    assert not bad, "\n".join(bad)
    assert any(srv.stopped_re.search(l) for l in lines), "\n".join(lines)
