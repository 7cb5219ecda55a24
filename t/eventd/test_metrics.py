"""mdm-eventd's metrics_listen: GET /metrics (Prometheus text format
0.0.4) scraped before and after a known sequence of deliveries; exact
deltas."""

import os
import subprocess
import time

from conftest import checkin, eventd_bin, free_port, secret_file, wait_for
import mdmtest
from mdmtest import (check_metrics_http, check_metrics_listen_refused,
                     http_get as get, val)
from test_eventd import pending, status, write_mixed


def scrape(port):
    return mdmtest.scrape(port, "mdm_eventd_")


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
    check_metrics_http(port, "DELETE")
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
    check_metrics_listen_refused(run, "MDM12100", 9102)
