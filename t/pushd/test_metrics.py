"""mdm-pushd's metrics_listen: GET /metrics (Prometheus text format 0.0.4)
scraped before and after a known sequence of pushes; exact deltas."""

import subprocess
import time

from conftest import enroll, free_port, pending, push, pushd_bin, wait_for
import mdmtest
from mdmtest import (check_metrics_http, check_metrics_listen_refused,
                     http_get as get, val)
from test_pushd import outcome


def scrape(port):
    return mdmtest.scrape(port, "mdm_pushd_")


def delta(a, b, name, **labels):
    return val(b, name, **labels) - val(a, name, **labels)


def test_metrics_exact_deltas(rc, standin, make_pushd, topic_cert):
    topic = topic_cert[0]
    port = free_port()
    d = make_pushd(metrics_listen="127.0.0.1:%d" % port).start()
    before = scrape(port)
    assert abs(val(before, "mdm_pushd_start_time_seconds") - time.time()) < 60
    assert val(before, "mdm_pushd_cert_days_left", topic=topic) >= 364
    assert val(before, "mdm_pushd_cert_refused", topic=topic) == 0
    assert val(before, "mdm_pushd_redis_up") == 1

    # 5 successes, one 410 Unregistered, one 400 BadDeviceToken, one 429
    # then success, one 400 BadTopic (failed, not dead)
    ok = ["OK-%d" % i for i in range(5)]
    for eid in ok:
        enroll(rc, eid, topic)
    t410, _ = enroll(rc, "GONE", topic)
    t400, _ = enroll(rc, "BADTOK", topic)
    t429, _ = enroll(rc, "SLOW", topic)
    tbt, _ = enroll(rc, "BADTOPIC", topic)
    standin.script[t410] = [(410, "Unregistered")]
    standin.script[t400] = [(400, "BadDeviceToken")]
    standin.script[t429] = [(429, "TooManyRequests"), 200]
    standin.script[tbt] = [(400, "BadTopic")]
    for eid in ok + ["GONE", "BADTOK", "SLOW", "BADTOPIC"]:
        push(rc, eid)
    # and one for an enrollment that does not exist: skipped
    push(rc, "NO-SUCH-DEVICE")
    for eid in ok + ["SLOW"]:
        assert outcome(rc, eid, "ok"), d.text()
    assert outcome(rc, "GONE", "dead") and outcome(rc, "BADTOK", "dead")
    assert outcome(rc, "BADTOPIC", "failed")
    assert wait_for(lambda: pending(rc) == 0)
    # the gauges of the queue come with the status interval (100 ms)
    after = wait_for(lambda: (lambda s: s if val(
        s, "mdm_pushd_queue_pending") == 0 and val(
        s, "mdm_pushd_jobs") == 0 else None)(scrape(port)))
    assert after, scrape(port)

    assert delta(before, after, "mdm_pushd_requests_total") == 10
    assert delta(before, after, "mdm_pushd_coalesced_total") == 0
    assert delta(before, after, "mdm_pushd_pushes_sent_total") == 10
    assert delta(before, after, "mdm_pushd_pushes_succeeded_total") == 6
    f = "mdm_pushd_pushes_failed_total"
    assert delta(before, after, f, result="dead", reason="Unregistered",
                 status=410) == 1
    assert delta(before, after, f, result="dead", reason="BadDeviceToken",
                 status=400) == 1
    assert delta(before, after, f, result="failed", reason="BadTopic",
                 status=400) == 1
    assert sum(v for (n, _), v in after.items() if n == f) == 3
    r = "mdm_pushd_retries_total"
    assert delta(before, after, r, reason="TooManyRequests", status=429) == 1
    assert sum(v for (n, _), v in after.items() if n == r) == 1
    assert delta(before, after, "mdm_pushd_pushes_skipped_total",
                 reason="unknown-enrollment", status=0) == 1
    assert val(after, "mdm_pushd_inflight_streams") == 0
    assert val(after, "mdm_pushd_retries_waiting") == 0
    assert val(after, "mdm_pushd_queue_lag") == 0
    assert val(after, "mdm_pushd_queue_oldest_pending_age_seconds") == 0
    assert val(after, "mdm_pushd_connections") >= 1
    # the same as the status hash says
    assert len(standin.requests) == 10

    # coalescing: a push on the wire (answered after 0.5 s); two more
    # requests for it meanwhile are coalesced and get one push after it
    tc, _ = enroll(rc, "COAL", topic)
    standin.script[tc] = [(200, None, 0.5), 200]
    push(rc, "COAL")
    assert standin.wait(lambda s: len(s.for_token(tc)) == 1)
    push(rc, "COAL")
    push(rc, "COAL")
    assert standin.wait(lambda s: len(s.for_token(tc)) == 2, 5)
    assert wait_for(lambda: pending(rc) == 0)
    again = wait_for(lambda: (lambda s: s if val(
        s, "mdm_pushd_jobs") == 0 and val(
        s, "mdm_pushd_pushes_succeeded_total") == val(
        after, "mdm_pushd_pushes_succeeded_total") + 2 else None)(
        scrape(port)))
    assert again, scrape(port)
    assert delta(after, again, "mdm_pushd_requests_total") == 1
    assert delta(after, again, "mdm_pushd_coalesced_total") == 2
    assert delta(after, again, "mdm_pushd_pushes_sent_total") == 2
    assert "AddressSanitizer" not in d.text()


def test_metrics_http(rc, standin, make_pushd):
    port = free_port()
    make_pushd(metrics_listen="127.0.0.1:%d" % port).start()
    st, _, _ = get(port, "/metrics?x=1")
    assert st == 200
    check_metrics_http(port)
    # many scrapes in a row
    for _ in range(30):
        assert get(port)[0] == 200


def test_metrics_listen_refused(tmp_path, pki, redis_server):
    _, c, k = pki.push_cert("mcfg")

    def run(line, check=True):
        p = tmp_path / "m.conf"
        p.write_text("redis %s\n%s\ncert %s key %s\n" %
                     (redis_server.addr, line, c, k))
        return subprocess.run([pushd_bin(), "-c", str(p)] +
                              (["-t"] if check else []),
                              capture_output=True, text=True, timeout=20)
    check_metrics_listen_refused(run, "MDM09100", 9101)


def test_metrics_label_sets_bounded(rc, standin, make_pushd, topic_cert):
    """Reasons come from the server: 70 distinct ones give 63 label sets
    and one "other" holding the rest; nothing is lost."""
    topic = topic_cert[0]
    port = free_port()
    make_pushd(metrics_listen="127.0.0.1:%d" % port).start()
    for i in range(70):
        t, _ = enroll(rc, "R-%d" % i, topic)
        standin.script[t] = [(400, "Reason%02d" % i)]
        push(rc, "R-%d" % i)
    for i in range(70):
        assert outcome(rc, "R-%d" % i, "failed")
    s = wait_for(lambda: (lambda x: x if sum(
        v for (n, _), v in x.items()
        if n == "mdm_pushd_pushes_failed_total") == 70 else None)(
        scrape(port)))
    assert s, scrape(port)
    sets = [k for k in s if k[0] == "mdm_pushd_pushes_failed_total"]
    assert len(sets) == 64
    assert val(s, "mdm_pushd_pushes_failed_total", result="other",
               reason="other", status=0) == 7
