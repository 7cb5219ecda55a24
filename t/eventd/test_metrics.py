"""mdm-eventd's metrics_listen: GET /metrics (Prometheus text format
0.0.4) scraped before and after a known sequence of deliveries; exact
deltas."""

import http.client
import os
import re
import socket
import subprocess
import time

from conftest import checkin, eventd_bin, free_port, secret_file, wait_for
from test_eventd import pending, status, write_mixed

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"')


def get(port, path="/metrics", method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, dict(r.getheaders()), body


def parse(text):
    """{(name, frozenset(labels)): value}; every sample belongs to a family
    with # HELP and # TYPE."""
    samples, types, helps = {}, {}, set()
    for ln in text.splitlines():
        if ln.startswith("# HELP "):
            helps.add(ln.split()[2])
        elif ln.startswith("# TYPE "):
            _, _, name, typ = ln.split()
            types[name] = typ
        else:
            m = SAMPLE.match(ln)
            assert m, ln
            name, labels, value = m.group(1), m.group(3), m.group(4)
            assert name in types and name in helps, ln
            lab = frozenset(LABEL.findall(labels or ""))
            assert (name, lab) not in samples, ln
            samples[(name, lab)] = float(value)
    for name, typ in types.items():
        assert typ in ("counter", "gauge"), name
        assert typ != "counter" or name.endswith("_total"), name
        assert name.startswith("mdm_eventd_"), name
    return samples


def scrape(port):
    st, headers, body = get(port)
    assert st == 200, body
    assert headers["Content-Type"] == "text/plain; version=0.0.4"
    assert int(headers["Content-Length"]) == len(body.encode())
    return parse(body)


def val(s, name, **labels):
    return s.get((name, frozenset((k, str(v)) for k, v in labels.items())),
                 0.0)


def failed(s, ep):
    return sum(v for (n, lab), v in s.items()
               if n == "mdm_eventd_batches_failed_total" and
               ("endpoint", ep) in lab)


def test_metrics_exact_deltas(rc, make_receiver, make_eventd):
    r1 = make_receiver()
    r2 = make_receiver()
    port = free_port()
    d = make_eventd([("hook", r1.url, {}),
                     ("pushes", r2.url, {"kinds": "push"})],
                    metrics_listen="127.0.0.1:%d" % port).start()
    before = scrape(port)
    assert abs(val(before, "mdm_eventd_start_time_seconds") -
               time.time()) < 60
    for ep in ("hook", "pushes"):
        assert val(before, "mdm_eventd_consecutive_failures",
                   endpoint=ep) == 0

    # 1. 12 events of every kind: all to hook, the 4 push events to pushes
    t0 = time.time()
    write_mixed(rc, 12)
    assert r1.wait(lambda r: len(r.events()) == 12), d.text()
    assert r2.wait(lambda r: len(r.events()) == 4), d.text()
    assert wait_for(lambda: pending(rc, "hook") == 0 and
                    pending(rc, "pushes") == 0)
    a = scrape(port)
    dv = "mdm_eventd_events_delivered_total"
    assert val(a, dv, endpoint="hook") - val(before, dv, endpoint="hook") \
        == 12
    assert val(a, dv, endpoint="pushes") - \
        val(before, dv, endpoint="pushes") == 4
    bd = "mdm_eventd_batches_delivered_total"
    assert val(a, bd, endpoint="hook") == len(r1.requests)
    assert failed(a, "hook") == 0 and failed(a, "pushes") == 0
    assert val(a, "mdm_eventd_last_success_timestamp_seconds",
               endpoint="hook") >= int(t0)

    # 2. two 503 answers, then 200
    r1.fail_next = 2
    r1.fail_status = 503
    checkin(rc, "DEV-X", "TokenUpdate")
    assert r1.wait(lambda r: len(r.events()) == 13), d.text()
    assert wait_for(lambda: pending(rc, "hook") == 0)
    b = scrape(port)
    assert val(b, dv, endpoint="hook") - val(a, dv, endpoint="hook") == 1
    assert val(b, "mdm_eventd_batches_failed_total", endpoint="hook",
               reason="http", status=503) == 2
    assert failed(b, "hook") == 2
    assert val(b, "mdm_eventd_consecutive_failures", endpoint="hook") == 0
    assert val(b, "mdm_eventd_last_failure_timestamp_seconds",
               endpoint="hook") >= int(t0)

    # 3. the receiver down: failures, backlog; nothing for pushes
    r1.stop()
    fails0 = d.text().count("MDM12141")
    for i in range(5):
        checkin(rc, "DEV-%d" % i, "Idle")
    assert d.wait_log("MDM12141", count=fails0 + 2), d.text()

    def down():
        s = scrape(port)
        return s if (val(s, "mdm_eventd_consecutive_failures",
                         endpoint="hook") >= 2 and
                     val(s, "mdm_eventd_backlog", endpoint="hook") +
                     val(s, "mdm_eventd_pending", endpoint="hook") == 5) \
            else None
    c = wait_for(down)
    assert c, scrape(port)
    assert val(c, "mdm_eventd_pending", endpoint="hook") >= 1
    assert val(c, "mdm_eventd_last_success_timestamp_seconds",
               endpoint="hook") == val(b, "mdm_eventd_last_success_"
                                          "timestamp_seconds",
                                       endpoint="hook")
    assert val(c, "mdm_eventd_batches_failed_total", endpoint="hook",
               reason="connect", status=0) >= 2
    assert val(c, "mdm_eventd_consecutive_failures", endpoint="pushes") == 0
    assert val(c, dv, endpoint="hook") == val(b, dv, endpoint="hook")

    # 4. back up: delivered, caught up
    t_up = time.time()
    r1.start()
    assert r1.wait(lambda r: len(r.events()) == 18, 30), d.text()
    assert d.wait_log("MDM12142")
    assert wait_for(lambda: pending(rc, "hook") == 0)

    def caught_up():
        s = scrape(port)
        return s if (val(s, "mdm_eventd_backlog", endpoint="hook") == 0 and
                     val(s, "mdm_eventd_pending", endpoint="hook") == 0) \
            else None
    e = wait_for(caught_up)
    assert e, scrape(port)
    assert val(e, dv, endpoint="hook") - val(before, dv, endpoint="hook") \
        == 18
    assert val(e, dv, endpoint="pushes") - \
        val(before, dv, endpoint="pushes") == 4
    # every failed attempt counted once: the log says how many there were
    n_log = sum(1 for ln in d.text().splitlines()
                if "MDM12141" in ln and "endpoint hook:" in ln)
    assert failed(e, "hook") == n_log
    assert val(e, "mdm_eventd_batches_failed_total", endpoint="hook",
               reason="connect", status=0) == n_log - 2
    assert val(e, "mdm_eventd_consecutive_failures", endpoint="hook") == 0
    assert val(e, "mdm_eventd_last_success_timestamp_seconds",
               endpoint="hook") >= int(t_up)
    assert val(e, "mdm_eventd_events_dropped_total", endpoint="hook") == 0
    assert val(e, "mdm_eventd_redis_up") == 1
    # the status hash counts the same
    assert wait_for(lambda: status(rc, "hook").get("failures") ==
                    str(n_log)), status(rc, "hook")
    assert int(status(rc, "hook")["delivered"]) == \
        val(e, dv, endpoint="hook")


def test_metrics_http(rc, receiver, make_eventd):
    port = free_port()
    make_eventd([("hook", receiver.url, {})],
                metrics_listen="127.0.0.1:%d" % port).start()
    assert get(port, "/")[0] == 404
    assert get(port, "/metrics/x")[0] == 404
    st, h, _ = get(port, "/metrics", "DELETE")
    assert st == 405 and "GET" in h["Allow"]
    st, h, body = get(port, "/metrics", "HEAD")
    assert st == 200 and body == "" and int(h["Content-Length"]) > 0
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.sendall(b"nonsense\n\n")
    assert s.recv(100).startswith(b"HTTP/1.1 400")
    s.close()
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"b" * 5000)
    assert s.recv(100).startswith(b"HTTP/1.1 431")
    s.close()
    idle = [socket.create_connection(("127.0.0.1", port), 5)
            for _ in range(12)]
    time.sleep(0.2)
    for s in idle:
        s.close()
    assert wait_for(lambda: get(port)[0] == 200)
    # deliveries go on while being scraped
    checkin(rc, "DEV-1", "Idle")
    for _ in range(20):
        assert get(port)[0] == 200
    assert receiver.wait(lambda r: len(r.events()) == 1)


def test_metrics_listen_refused(tmp_path, redis_server):
    good = secret_file(str(tmp_path))
    ep = "endpoint hook http://127.0.0.1:9/ secret %s" % good

    def run(line, check=True):
        conf = os.path.join(str(tmp_path), "m.conf")
        with open(conf, "w") as f:
            f.write("redis %s\n%s\n%s\n" % (redis_server.addr, line, ep))
        return subprocess.run([eventd_bin(), "-c", conf] +
                              (["-t"] if check else []),
                              capture_output=True, text=True, timeout=20)
    for ok in ("metrics_listen 127.0.0.1:9102", "metrics_listen [::1]:9102",
               "metrics_listen off"):
        p = run(ok)
        assert p.returncode == 0, (ok, p.stderr)
    for bad in ("localhost:9102", "metrics.example.com:9102", "127.0.0.1",
                "127.0.0.1:0", "127.0.0.1:99999", "[::1]", "1.2.3:80",
                "::1:9102"):
        p = run("metrics_listen " + bad)
        assert p.returncode == 1, (bad, p.stderr)
        assert "MDM12100" in p.stderr and "metrics_listen" in p.stderr, \
            (bad, p.stderr)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        p = run("metrics_listen 127.0.0.1:%d" % s.getsockname()[1],
                check=False)
    finally:
        s.close()
    assert p.returncode == 1 and "metrics_listen" in p.stderr, p.stderr
    assert "in use" in p.stderr, p.stderr
