"""mdm-eventd against python3 http.server receivers and a private
redis-server."""

import datetime
import json
import os
import signal
import subprocess
import time

from conftest import (PREFIX, SECRET, checkin, eventd_bin, push_event,
                      report, secret_file, sid_key, verify, wait_for, xadd)

UDID = "0000FE00-8D5F0D6BC4A1E4AB"
GROUP = "mdm-eventd:"


def sanitized():
    with open(eventd_bin(), "rb") as f:
        return b"__asan_init" in f.read()


def pending(rc, name):
    return rc.xpending(PREFIX + "events", GROUP + name)["pending"]


def status(rc, name):
    return rc.hgetall(PREFIX + "eventd:" + name)


def write_mixed(rc, n, nids=5):
    """n events over nids enrollments, interleaved, of every kind."""
    ids = []
    for i in range(n):
        eid = "DEV-%d" % (i % nids)
        k = i % 3
        if k == 0:
            ids.append(checkin(rc, eid, "Idle"))
        elif k == 1:
            ids.append(report(rc, eid, "cmd-%d" % i))
        else:
            ids.append(push_event(rc, eid))
    return ids


def check_order(events, written):
    """Each written event arrived; per enrollment in stream order."""
    got = [s for s, _ in events]
    assert set(got) == set(written), (len(got), len(written))
    per = {}
    for s, e in events:
        per.setdefault(e["fields"]["id"], []).append(sid_key(s))
    for eid, seq in per.items():
        # duplicates (at-least-once) may repeat a run, never go back past
        # an event that was not delivered again
        first = []
        for k in seq:
            if k not in first:
                first.append(k)
        assert first == sorted(first), eid


# ------------------------------------------------------------------ tests

def test_every_kind_json_and_signature(rc, receiver, make_eventd):
    d = make_eventd([("hook", receiver.url, {})]).start()
    sids = [checkin(rc, UDID, "Authenticate"),
            checkin(rc, UDID, "TokenUpdate"),
            report(rc, UDID, "4A2B-1", "Acknowledged", "InstalledApplicationList"),
            report(rc, UDID, "4A2B-2", "NotNow", "DeviceLock"),
            push_event(rc, UDID, "dead"),
            checkin(rc, UDID, "DeclarativeManagement"),
            # a kind this daemon has never heard of goes out as it is
            xadd(rc, {"kind": "declarative-status", "id": UDID,
                      "valid": "true", "note": "caf\u00e9"}),
            checkin(rc, UDID, "CheckOut")]
    assert receiver.wait(lambda r: len(r.events()) == len(sids)), d.text()
    got = receiver.events()
    assert [s for s, _ in got] == sids
    byid = dict(got)
    for sid in sids:
        want = rc.xrange(PREFIX + "events", sid, sid)[0][1]
        e = byid[sid]
        assert e["fields"] == want
        ms = int(sid.split("-")[0])
        t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
        assert e["time"] == t.strftime("%Y-%m-%dT%H:%M:%S.") + \
            "%03dZ" % (ms % 1000)
    for req in receiver.requests:
        h = req["headers"]
        assert req["path"] == "/hook"
        assert h["content-type"] == "application/json"
        assert h["user-agent"].startswith("mdm-eventd/")
        assert verify(req), h
        body = req["json"]
        assert body["endpoint"] == "hook"
        assert h["x-mdm-event-id"] == body["events"][0]["stream_id"]
        assert h["x-mdm-event-count"] == str(len(body["events"]))
        assert h["x-mdm-attempt"] == "1"
        # the exact bytes are signed: a changed body fails
        bad = dict(req, body=req["body"] + b" ")
        assert not verify(bad)
        assert not verify(req, secret=b"another-secret-0123456789")
        names = [k.lower() for k, _ in req["header_list"]]
        assert len(names) == len(set(names))
    assert wait_for(lambda: pending(rc, "hook") == 0)
    st = wait_for(lambda: (lambda s: s if s.get("delivered") == str(len(sids))
                           else None)(status(rc, "hook")))
    assert st["url"] == receiver.url and st["group"] == GROUP + "hook", st
    assert st["state"] == "idle" and st["failures"] == "0", st
    assert "error" not in d.text()


def test_receiver_down_then_up(rc, make_receiver, make_eventd):
    r = make_receiver(start=False)
    d = make_eventd([("hook", r.url, {"batch": 20})]).start()
    written = write_mixed(rc, 300)
    assert d.wait_log("MDM12141", count=3), d.text()
    assert "Connection refused" in d.text() or "connect" in d.text()
    # held: one batch read and pending (the first event may have been
    # read alone, as soon as it was written), the rest left in the stream
    assert 1 <= pending(rc, "hook") <= 20
    st = status(rc, "hook")
    assert wait_for(lambda: status(rc, "hook").get("state") == "backoff"), st
    r.start()
    assert r.wait(lambda x: len(x.events()) >= 300, 30), d.text()
    got = r.events()
    assert len(got) == 300  # no restart: nothing twice
    check_order(got, written)
    # and in stream order overall: one batch at a time
    assert [s for s, _ in got] == written
    assert d.wait_log("MDM12142")
    assert wait_for(lambda: pending(rc, "hook") == 0)


def test_500_and_retry_after(rc, receiver, make_eventd):
    receiver.fail_next = 3
    d = make_eventd([("hook", receiver.url, {})]).start()
    sid = checkin(rc, UDID, "Authenticate")
    assert receiver.wait(lambda r: len(r.events()) == 1), d.text()
    reqs = receiver.requests
    assert [q["answered"] for q in reqs] == [500, 500, 500, 200]
    # the same delivery each time, signed afresh, attempt counted
    assert {q["headers"]["x-mdm-event-id"] for q in reqs} == {sid}
    assert [q["headers"]["x-mdm-attempt"] for q in reqs] == ["1", "2", "3",
                                                             "4"]
    assert all(verify(q) for q in reqs)
    assert all(q["body"] == reqs[0]["body"] for q in reqs)
    assert "HTTP 500" in d.text()
    # Retry-After is honoured (capped by retry_max_ms, 400 ms here)
    receiver.fail_next = 1
    receiver.fail_status = 503
    receiver.retry_after = 1
    t0 = time.time()
    checkin(rc, UDID, "TokenUpdate")
    assert receiver.wait(lambda r: len(r.events()) == 2), d.text()
    assert time.time() - t0 >= 0.35
    assert "HTTP 503" in d.text()


def test_sigkill_mid_delivery_then_restart(rc, receiver, make_eventd):
    receiver.delay = 3
    d = make_eventd([("hook", receiver.url, {"batch": 10})]).start()
    written = write_mixed(rc, 50)
    # the first batch is on the wire (the receiver holds it)
    assert receiver.wait(lambda r: len(r.requests) == 1)
    time.sleep(0.3)
    d.kill9()
    inflight = [e["stream_id"] for e in receiver.requests[0]["json"]["events"]]
    # the first event may have been read alone, as soon as it was written
    assert inflight and inflight == written[:len(inflight)]
    receiver.delay = 0
    d.start()
    assert d.wait_log("MDM12125"), d.text()
    assert receiver.wait(lambda r: len(set(s for s, _ in r.events())) == 50,
                         20), d.text()
    time.sleep(0.3)
    got = receiver.events()
    check_order(got, written)
    seen, dups = set(), []
    for s, _ in got:
        if s in seen:
            dups.append(s)
        seen.add(s)
    # duplicates only of the batch that was on the wire, each at most once
    assert set(dups) <= set(inflight), dups
    assert len(dups) == len(set(dups))
    assert wait_for(lambda: pending(rc, "hook") == 0)


def test_sigterm_drains_restart_nothing_twice(rc, receiver, make_eventd):
    receiver.delay = 0.5
    d = make_eventd([("hook", receiver.url, {"batch": 5})]).start()
    written = write_mixed(rc, 30)
    assert receiver.wait(lambda r: len(r.requests) >= 1)
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(10) == 0
    assert "MDM12107" in d.text() and "MDM12109" in d.text()
    n = len(receiver.events())
    assert n >= 1 and n < 30  # the batch on the wire finished
    receiver.delay = 0
    written += write_mixed(rc, 10)
    d.logf.close()
    d.start()
    assert receiver.wait(lambda r: len(r.events()) >= 40, 20), d.text()
    time.sleep(0.3)
    got = receiver.events()
    assert [s for s, _ in got] == written  # in order, none twice
    assert "MDM12125" not in d.text()


def test_two_endpoints_one_down(rc, make_receiver, make_eventd):
    a = make_receiver(start=False)
    b = make_receiver()
    d = make_eventd([("a", a.url, {"batch": 7}),
                     ("b", b.url, {"batch": 7})]).start()
    written = write_mixed(rc, 100)
    assert b.wait(lambda r: len(r.events()) == 100), d.text()
    check_order(b.events(), written)
    assert [s for s, _ in b.events()] == written
    assert pending(rc, "b") == 0
    assert 1 <= pending(rc, "a") <= 7  # one batch held, the rest in the stream
    assert "endpoint a: delivery" in d.text()
    assert "endpoint b: delivery" not in d.text()
    more = write_mixed(rc, 20)
    assert b.wait(lambda r: len(r.events()) == 120), d.text()
    a.start()
    assert a.wait(lambda r: len(r.events()) == 120, 20), d.text()
    assert [s for s, _ in a.events()] == written + more
    assert wait_for(lambda: pending(rc, "a") == 0)


def test_kinds_filter(rc, receiver, make_eventd):
    d = make_eventd([("hook", receiver.url, {"kinds": "report,push"})]).start()
    written = write_mixed(rc, 30)
    want = [s for s in written
            if rc.xrange(PREFIX + "events", s, s)[0][1]["kind"] != "checkin"]
    assert receiver.wait(lambda r: len(r.events()) == 20), d.text()
    assert [s for s, _ in receiver.events()] == want
    assert wait_for(lambda: pending(rc, "hook") == 0)
    # a batch of nothing but skipped kinds is acknowledged, not posted
    n = len(receiver.requests)
    sid = checkin(rc, UDID)
    assert wait_for(lambda: rc.xinfo_groups(PREFIX + "events")[0][
        "last-delivered-id"] == sid)
    assert wait_for(lambda: pending(rc, "hook") == 0)
    time.sleep(0.2)
    assert len(receiver.requests) == n


def test_start_all_and_position_persists(rc, receiver, make_eventd):
    early = write_mixed(rc, 6)
    d = make_eventd([("hook", receiver.url, {})], start="all").start()
    assert receiver.wait(lambda r: len(r.events()) == 6), d.text()
    d.stop()
    later = write_mixed(rc, 4)  # written while the daemon is stopped
    d.start()
    assert receiver.wait(lambda r: len(r.events()) == 10), d.text()
    assert [s for s, _ in receiver.events()] == early + later


def test_start_new_skips_history(rc, receiver, make_eventd):
    write_mixed(rc, 5)
    d = make_eventd([("hook", receiver.url, {})]).start()
    sid = checkin(rc, UDID)
    assert receiver.wait(lambda r: len(r.events()) == 1), d.text()
    assert receiver.events()[0][0] == sid


def test_tls_verification(rc, pki, make_receiver, make_eventd):
    r = make_receiver(tls=True)
    d = make_eventd([("bad", r.url, {}),
                     ("good", r.url, {"ca_file": pki.ca_file})]).start()
    written = write_mixed(rc, 12)
    assert r.wait(lambda x: len(x.events()) == 12), d.text()
    assert [s for s, _ in r.events()] == written
    assert all(q["json"]["endpoint"] == "good" for q in r.requests)
    # the endpoint without the CA fails verification, logs it, retries
    assert d.wait_log("endpoint bad: delivery", count=3), d.text()
    t = d.text()
    assert "SSL" in t or "certificate" in t, t
    assert pending(rc, "bad") > 0
    # the status hash is written every status_interval_ms: wait for it
    deadline = time.time() + 5
    st = status(rc, "bad")
    while int(st.get("failures", 0)) < 2 and time.time() < deadline:
        time.sleep(0.05)
        st = status(rc, "bad")
    assert int(st["failures"]) >= 2 and st["state"] in ("backoff",
                                                        "sending"), st


def test_tls_verify_off_warns(rc, make_receiver, make_eventd):
    r = make_receiver(tls=True)
    d = make_eventd([("lax", r.url, {"tls_verify": "off"})]).start()
    assert "MDM12104" in d.text()
    checkin(rc, UDID)
    assert r.wait(lambda x: len(x.events()) == 1), d.text()


def test_bounded_memory_while_down(rc, make_receiver, make_eventd):
    r = make_receiver(start=False)
    # in the sanitizer build, ASan's quarantine of freed memory (256 MB by
    # default) would count as RSS: keep it small, it is not the daemon's
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(
        x for x in (env.get("ASAN_OPTIONS"), "quarantine_size_mb=4") if x)
    d = make_eventd([("hook", r.url, {"batch": 100})]).start(env=env)
    checkin(rc, UDID)
    assert d.wait_log("MDM12141")
    time.sleep(0.5)
    before = d.rss_kb()
    p = rc.pipeline(transaction=False)
    n = 20000
    for i in range(n):
        p.xadd(PREFIX + "events", {
            "kind": "report", "id": "DEV-%d" % (i % 50), "status":
            "Acknowledged", "uuid": "%08d-0000-4000-8000-000000000000" % i,
            "request_type": "ProfileList", "cert": "ef" * 32})
        if i % 1000 == 999:
            p.execute()
    p.execute()
    time.sleep(2)
    during = d.rss_kb()
    # one batch in memory, whatever the backlog
    assert during - before < 4096, (before, during)
    assert pending(rc, "hook") == 1  # the batch read before the backlog
    r.start()
    assert r.wait(lambda x: len(x.events()) == n + 1, 90), d.text()[-2000:]
    got = [s for s, _ in r.events()]
    assert len(set(got)) == n + 1
    assert got == sorted(got, key=sid_key)
    # delivering: jansson and hiredis buffers of a batch, reused; ASan's
    # allocator keeps more per size class
    after = d.rss_kb()
    print("RSS kB: before %d, while down %d, after %d" % (before, during,
                                                         after))
    assert after - before < (24576 if sanitized() else 8192), (before, after)


def test_trimmed_before_delivery_is_reported(rc, make_receiver, make_eventd):
    r = make_receiver(start=False)
    d = make_eventd([("hook", r.url, {"batch": 5})]).start()
    for i in range(5):
        checkin(rc, UDID)
    assert d.wait_log("MDM12141")
    # a tiny cap: entries after the group's position are trimmed away
    for i in range(50):
        rc.xadd(PREFIX + "events", {"kind": "checkin", "id": UDID,
                                    "type": "Idle"}, maxlen=10,
                approximate=False)
    assert d.wait_log("MDM12130"), d.text()
    r.start()
    # the batch in memory, then the 10 entries left
    left = [i for i, _ in rc.xrange(PREFIX + "events")]
    assert len(left) == 10
    assert r.wait(lambda x: [s for s, _ in x.events()][-10:] == left), \
        d.text()
    assert wait_for(lambda: status(rc, "hook").get("trimmed") == "0")


def test_redis_restart(rc, redis_server, receiver, make_eventd):
    d = make_eventd([("hook", receiver.url, {})]).start()
    checkin(rc, UDID)
    assert receiver.wait(lambda r: len(r.events()) == 1)
    rc.client_kill_filter(_type="normal", skipme=True)
    assert d.wait_log("MDM12121"), d.text()
    sid = checkin(rc, UDID, "TokenUpdate")
    assert receiver.wait(lambda r: len(r.events()) == 2, 15), d.text()
    assert receiver.events()[1][0] == sid


def test_flushall_recreates_the_group(rc, receiver, make_eventd):
    d = make_eventd([("hook", receiver.url, {})]).start()
    checkin(rc, UDID)
    assert receiver.wait(lambda r: len(r.events()) == 1)
    rc.flushall()
    sids = [checkin(rc, UDID, "TokenUpdate"), report(rc, UDID, "u-1")]
    # the group is gone: created again at the stream's start, so the events
    # written since are delivered
    assert receiver.wait(lambda r: len(r.events()) == 3, 15), d.text()
    assert [s for s, _ in receiver.events()][1:] == sids
    assert "created at the stream's start" in d.text()


def test_sighup_reloads_secret(rc, receiver, make_eventd):
    d = make_eventd([("hook", receiver.url, {})]).start()
    checkin(rc, UDID)
    assert receiver.wait(lambda r: len(r.events()) == 1)
    new = b"rotated-secret-abcdef0123456789"
    secret_file(d.dir, new)
    d.proc.send_signal(signal.SIGHUP)
    assert d.wait_log("MDM12102"), d.text()
    checkin(rc, UDID)
    assert receiver.wait(lambda r: len(r.events()) == 2)
    assert verify(receiver.requests[1], secret=new)
    assert not verify(receiver.requests[1], secret=SECRET)
    # a secret others can read is refused; the old one stays
    os.chmod(os.path.join(d.dir, "secret"), 0o644)
    d.proc.send_signal(signal.SIGHUP)
    assert d.wait_log("MDM12103"), d.text()
    checkin(rc, UDID)
    assert receiver.wait(lambda r: len(r.events()) == 3)
    assert verify(receiver.requests[2], secret=new)


def test_bad_configurations(tmp_path, redis_server):
    good = secret_file(str(tmp_path))
    lax = secret_file(str(tmp_path), mode=0o644, name="lax")
    short = os.path.join(str(tmp_path), "short")
    fd = os.open(short, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"tiny\n")
    os.close(fd)
    ep = "endpoint hook http://127.0.0.1:9/ secret %s" % good
    cases = [
        ("bogus 1\n" + ep, "unknown option \"bogus\""),
        ("batch 0\n" + ep, "batch: expected a number"),
        ("retry_base_ms x\n" + ep, "retry_base_ms: expected a number"),
        ("start later\n" + ep, "start: new or all"),
        ("consumer a:b\n" + ep, "consumer:"),
        ("redis\n" + ep, "redis: expected one value"),
        ("log loud\n" + ep, "log: info or debug"),
        ("", "endpoint: no \"endpoint\" line"),
        ("endpoint hook ftp://x/ secret " + good, "URL: an http://"),
        ("endpoint h/k http://x/ secret " + good, "endpoint: name"),
        (ep + "\n" + ep, "name \"hook\" used twice"),
        ("endpoint hook http://x/", "secret: required"),
        ("endpoint hook http://x/ secret", "endpoint: expected"),
        ("endpoint hook http://x/ secret /nonexistent/s",
         "secret: cannot open /nonexistent/s"),
        ("endpoint hook http://x/ secret " + lax, "chmod 600"),
        ("endpoint hook http://x/ secret " + short, "at least 16 bytes"),
        (ep + " ca_file /nonexistent/ca.pem", "ca_file: cannot read"),
        (ep + " tls_verify maybe", "tls_verify: on or off"),
        (ep + " kinds ,", "kinds:"),
        (ep + " batch 0", "endpoint hook: batch"),
        (ep + " colour blue", "unknown endpoint option \"colour\""),
    ]
    for i, (text, want) in enumerate(cases):
        conf = os.path.join(str(tmp_path), "c%d.conf" % i)
        with open(conf, "w") as f:
            f.write(text + "\n")
        for args in (["-t"], []):
            p = subprocess.run([eventd_bin(), "-c", conf] + args,
                               capture_output=True, text=True, timeout=10)
            assert p.returncode == 1, (text, p.stderr)
            assert "MDM12100" in p.stderr and want in p.stderr, (text,
                                                                   p.stderr)
            # the secret never shows in a message
            assert SECRET.decode() not in p.stderr
    conf = os.path.join(str(tmp_path), "ok.conf")
    with open(conf, "w") as f:
        f.write(ep + "\n")
    p = subprocess.run([eventd_bin(), "-t", "-c", conf], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0 and "configuration ok" in p.stderr, p.stderr
    p = subprocess.run([eventd_bin(), "-c", "/nonexistent.conf"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and "cannot open" in p.stderr
    p = subprocess.run([eventd_bin(), "-x"], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 2 and "usage" in p.stderr


def test_example_configuration_parses(tmp_path):
    """conf/eventd/eventd.conf, with its secret path pointed at a test
    file, passes -t."""
    from conftest import TOP
    good = secret_file(str(tmp_path))
    with open(os.path.join(TOP, "conf", "eventd", "eventd.conf")) as f:
        text = f.read().replace("/etc/mdm/eventd/audit.secret", good)
    conf = os.path.join(str(tmp_path), "example.conf")
    with open(conf, "w") as f:
        f.write(text)
    p = subprocess.run([eventd_bin(), "-t", "-c", conf], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0, p.stderr


def test_non_utf8_value_gives_valid_json(rc, receiver, make_eventd):
    """Bodies are valid JSON even for values that are not UTF-8."""
    d = make_eventd([("hook", receiver.url, {})]).start()
    rc.execute_command("XADD", PREFIX + "events", "*", "kind", "checkin",
                       "id", UDID, "type", b"Id\xffle\x00x")
    assert receiver.wait(lambda r: len(r.events()) == 1), d.text()
    e = receiver.events()[0][1]
    assert e["fields"]["type"] == "Id?le\u0000x"
    json.loads(receiver.requests[0]["body"])
