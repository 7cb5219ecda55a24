"""mdm-pushd against the APNs stand-in and a private redis-server."""

import json
import os
import signal
import subprocess
import time

from conftest import (PREFIX, TOP, enroll, mdmctl, pending, push, pushd_bin,
                      rec_key, wait_for)

UDID = "0000FE00-8D5F0D6BC4A1E4AB"


def tokenupdate(rc, eid, token, magic):
    """Run the core's own TokenUpdate script (core/lua) on the record."""
    lua = ""
    for f in ("common.lua", "tokenupdate.lua"):
        with open(os.path.join(TOP, "core", "lua", f)) as fh:
            lua += fh.read()
    d = eid.split(":")[0]
    base = "%s{%s}%s" % (PREFIX, d, eid[len(d):])
    keys = ["%s{%s}:rec" % (PREFIX, d), base + ":rec", base + ":q",
            base + ":cmd", base + ":nn", "%s{%s}:users" % (PREFIX, d)]
    rep = rc.eval(lua, 6, *keys, "off", "", "0", base, "token", token,
                  "magic", magic)
    assert rep == ["OK"], rep


def outcome(rc, eid, want=None, timeout=10):
    def get():
        r = rc.hgetall(rec_key(eid))
        if "push_result" not in r:
            return None
        if want is not None and r["push_result"] != want:
            return None
        return r
    return wait_for(get, timeout)


def events(rc):
    return [f for _, f in rc.xrange(PREFIX + "events")
            if f.get("kind") == "push"]


def status(redis_server):
    p = mdmctl(redis_server, "push", "status")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def topic_status(redis_server, topic):
    for d in status(redis_server)["daemons"]:
        for t in d["topics"]:
            if t["topic"] == topic:
                return d, t
    return None, None


# ------------------------------------------------------------------ tests

def test_push_arrives_right(rc, standin, make_pushd, topic_cert,
                            redis_server):
    topic = topic_cert[0]
    token, magic = enroll(rc, UDID, topic)
    d = make_pushd().start()
    # through mdmctl: the very push request the core's admin API writes
    p = mdmctl(redis_server, "push", UDID)
    assert p.returncode == 0, p.stderr
    assert standin.wait(lambda s: len(s.requests) == 1)
    r = standin.requests[0]
    assert r["method"] == "POST"
    assert r["path"] == "/3/device/" + token
    h = r["headers"]
    assert h["apns-topic"] == topic
    assert h["apns-push-type"] == "mdm"
    assert h["apns-priority"] == "10"
    assert int(h["apns-expiration"]) > time.time()
    assert r["body"] == ('{"mdm":"%s"}' % magic).encode()
    # authenticated with the push certificate of that topic
    assert r["uid"] == topic
    # no header sent twice
    names = [k for k, _ in r["all_headers"]]
    assert len(names) == len(set(names))
    rec = outcome(rc, UDID)
    assert rec["push_result"] == "ok", rec
    assert rec["push_status"] == "200"
    assert rec["push_apns_id"] == standin.answered[0][2]
    assert abs(int(rec["push_last"]) - time.time()) < 30
    assert "push_dead" not in rec
    ev = wait_for(lambda: events(rc))
    assert ev[0]["id"] == UDID and ev[0]["result"] == "ok"
    assert ev[0]["topic"] == topic and ev[0]["apns_id"]
    assert wait_for(lambda: pending(rc) == 0)
    assert "error" not in d.text()


def test_user_channel_and_options(rc, standin, make_pushd, topic_cert):
    topic = topic_cert[0]
    eid = UDID + ":B3C0E1C5-2D6E-4F3A-9C7A-5A1B2C3D4E5F"
    token, magic = enroll(rc, eid, topic)
    make_pushd(priority=5, expiration=0).start()
    push(rc, eid)
    assert standin.wait(lambda s: len(s.requests) == 1)
    h = standin.requests[0]["headers"]
    assert h["apns-priority"] == "5"
    assert h["apns-expiration"] == "0"
    assert standin.requests[0]["path"] == "/3/device/" + token
    assert outcome(rc, eid)["push_result"] == "ok"


def test_410_marks_dead_until_tokenupdate(rc, standin, make_pushd,
                                          topic_cert):
    topic = topic_cert[0]
    token, magic = enroll(rc, UDID, topic)
    standin.script[token] = [(410, "Unregistered")]
    d = make_pushd().start()
    push(rc, UDID)
    rec = outcome(rc, UDID, "dead")
    assert rec["push_reason"] == "Unregistered"
    assert rec["push_status"] == "410"
    assert "push_dead" in rec
    # later pushes skip the dead token: nothing reaches APNs
    push(rc, UDID)
    assert outcome(rc, UDID, "skipped")["push_reason"] == "dead-token"
    assert wait_for(lambda: pending(rc) == 0)
    assert len(standin.for_token(token)) == 1
    # the next TokenUpdate (the core's script) brings the device back
    tokenupdate(rc, UDID, token, magic)
    assert "push_dead" not in rc.hgetall(rec_key(UDID))
    push(rc, UDID)
    assert outcome(rc, UDID, "ok")
    assert len(standin.for_token(token)) == 2
    assert d.wait_log("MDM09131")


def test_400_bad_device_token_dead_other_400_final(rc, standin, make_pushd,
                                                   topic_cert):
    topic = topic_cert[0]
    t1, _ = enroll(rc, "DEV-1", topic)
    t2, _ = enroll(rc, "DEV-2", topic)
    standin.script[t1] = [(400, "BadDeviceToken")]
    standin.script[t2] = [(400, "BadTopic")]
    make_pushd().start()
    push(rc, "DEV-1")
    push(rc, "DEV-2")
    r1 = outcome(rc, "DEV-1", "dead")
    assert r1["push_reason"] == "BadDeviceToken" and "push_dead" in r1
    r2 = outcome(rc, "DEV-2", "failed")
    assert r2["push_reason"] == "BadTopic" and "push_dead" not in r2
    time.sleep(0.5)
    # neither is retried
    assert len(standin.for_token(t1)) == 1
    assert len(standin.for_token(t2)) == 1
    assert pending(rc) == 0


def test_429_and_5xx_retried_until_success(rc, standin, make_pushd,
                                           topic_cert, redis_server):
    topic = topic_cert[0]
    token, _ = enroll(rc, UDID, topic)
    standin.script[token] = [(429, "TooManyRequests"),
                             (500, "InternalServerError"),
                             (503, "ServiceUnavailable"), 200]
    make_pushd().start()
    push(rc, UDID)
    rec = outcome(rc, UDID, "ok")
    assert rec
    reqs = standin.for_token(token)
    assert [r["status"] for r in reqs] == [429, 500, 503, 200]
    # back-off between attempts (retry_base_ms 50, doubling, jitter)
    gaps = [b["time"] - a["time"] for a, b in zip(reqs, reqs[1:])]
    assert all(g >= 0.02 for g in gaps), gaps
    assert pending(rc) == 0
    _, t = wait_for(lambda: topic_status(redis_server, topic)[1] and
                    topic_status(redis_server, topic)[1].get("succeeded") and
                    topic_status(redis_server, topic))
    assert int(t["retries"]) == 3 and int(t["succeeded"]) == 1


def test_goaway_and_connection_errors_retried(rc, standin, make_pushd,
                                              topic_cert):
    topic = topic_cert[0]
    token, _ = enroll(rc, UDID, topic)
    standin.script[token] = ["goaway", 200]
    make_pushd().start()
    push(rc, UDID)
    assert outcome(rc, UDID, "ok")
    assert len(standin.for_token(token)) == 2


def test_retries_give_up(rc, standin, make_pushd, topic_cert):
    topic = topic_cert[0]
    token, _ = enroll(rc, UDID, topic)
    standin.script[token] = [500] * 10
    make_pushd(retry_attempts=3).start()
    push(rc, UDID)
    rec = outcome(rc, UDID, "gave-up")
    assert rec["push_status"] == "500"
    assert len(standin.for_token(token)) == 3
    assert wait_for(lambda: pending(rc) == 0)


def test_403_stops_using_the_certificate(rc, standin, make_pushd, topic_cert,
                                         redis_server):
    topic = topic_cert[0]
    t1, _ = enroll(rc, "DEV-1", topic)
    t2, _ = enroll(rc, "DEV-2", topic)
    standin.script[t1] = [(403, "BadCertificate")]
    d = make_pushd().start()
    push(rc, "DEV-1")
    assert outcome(rc, "DEV-1", "failed")["push_reason"] == "BadCertificate"
    assert d.wait_log("MDM09134")
    assert "APNS REFUSED THE PUSH CERTIFICATE" in d.text()
    push(rc, "DEV-2")
    assert outcome(rc, "DEV-2", "failed")["push_reason"] == "cert-refused"
    assert standin.for_token(t2) == []
    _, t = wait_for(lambda: topic_status(redis_server, topic)[1] and
                    topic_status(redis_server, topic)[1]["state"] ==
                    "refused" and topic_status(redis_server, topic))
    assert "BadCertificate" in t["refused"]
    # a reload (the renewed certificate) puts the topic back in use
    d.signal(signal.SIGHUP)
    assert d.wait_log("MDM09105")
    push(rc, "DEV-2")
    assert outcome(rc, "DEV-2", "ok")


def test_coalesced_pushes(rc, standin, make_pushd, topic_cert):
    topic = topic_cert[0]
    token, _ = enroll(rc, UDID, topic)
    t2, _ = enroll(rc, "OTHER", topic)
    for _ in range(5):
        push(rc, UDID)
    push(rc, "OTHER")
    make_pushd().start()
    assert outcome(rc, UDID, "ok") and outcome(rc, "OTHER", "ok")
    assert wait_for(lambda: pending(rc) == 0)
    time.sleep(0.3)
    assert len(standin.for_token(token)) == 1
    ev = [e for e in events(rc) if e["id"] == UDID]
    assert len(ev) == 1 and ev[0]["requests"] == "5"


def test_request_during_flight_gets_its_own_push(rc, standin, make_pushd,
                                                 topic_cert):
    topic = topic_cert[0]
    token, _ = enroll(rc, UDID, topic)
    standin.script[token] = [(200, None, 0.5)]
    make_pushd().start()
    push(rc, UDID)
    assert standin.wait(lambda s: len(s.for_token(token)) == 1)
    # queued after the first push left: the device may have woken before
    push(rc, UDID)
    assert standin.wait(lambda s: len(s.for_token(token)) == 2, 5)
    assert wait_for(lambda: pending(rc) == 0)


def test_kill9_and_restart_loses_nothing(rc, standin, make_pushd,
                                         topic_cert):
    topic = topic_cert[0]
    ids = ["KILL-%03d" % i for i in range(40)]
    tokens = {}
    for i in ids:
        tokens[i], _ = enroll(rc, i, topic)
    # slow answers: the daemon dies with pushes on the wire
    standin.default = (200, None, 0.6)
    d = make_pushd().start()
    for i in ids:
        push(rc, i)
    assert standin.wait(lambda s: len(s.requests) >= 10)
    d.kill9()
    done_before = [i for i in ids if rc.hget(rec_key(i), "push_result")]
    assert len(done_before) < len(ids)
    assert pending(rc) > 0
    standin.default = (200, None, 0)
    d2 = make_pushd(name="d2").start()   # same consumer name
    assert d2.wait_log("MDM09125")
    for i in ids:
        assert outcome(rc, i, "ok"), i
    assert wait_for(lambda: pending(rc) == 0)
    for i in ids:
        assert len(standin.for_token(tokens[i])) >= 1


def test_other_daemon_claims_pending_of_dead_one(rc, standin, make_pushd,
                                                 topic_cert):
    topic = topic_cert[0]
    ids = ["CLAIM-%02d" % i for i in range(10)]
    for i in ids:
        enroll(rc, i, topic)
    standin.default = (200, None, 2.0)
    d = make_pushd(claim_idle_ms=500).start()
    for i in ids:
        push(rc, i)
    assert standin.wait(lambda s: len(s.requests) >= 10)
    d.kill9()
    standin.default = (200, None, 0)
    d2 = make_pushd(name="d2", consumer="test-2", claim_idle_ms=500).start()
    assert d2.wait_log("MDM09126", timeout=10)
    for i in ids:
        assert outcome(rc, i, "ok"), i
    assert wait_for(lambda: pending(rc) == 0)


def test_sigterm_drains(rc, standin, make_pushd, topic_cert):
    topic = topic_cert[0]
    token, _ = enroll(rc, UDID, topic)
    standin.script[token] = [(200, None, 1.0)]
    d = make_pushd().start()
    push(rc, UDID)
    assert standin.wait(lambda s: len(s.requests) == 1)
    d.signal(signal.SIGTERM)
    assert d.proc.wait(10) == 0
    # the push on the wire finished and was recorded before the exit
    assert rc.hget(rec_key(UDID), "push_result") == "ok"
    assert pending(rc) == 0
    assert "MDM09107" in d.text() and "MDM09109" in d.text()


def test_reload_refuses_certificate_with_other_topic(rc, standin, pki,
                                                     make_pushd):
    topic, cert, key = pki.push_cert("reload-me")
    token, _ = enroll(rc, UDID, topic)
    d = make_pushd(certs=[[cert, "key", key]]).start()
    push(rc, UDID)
    assert outcome(rc, UDID, "ok")
    first_serial = standin.requests[-1]["serial"]
    # the file is replaced by a certificate of another topic
    other, c2, k2 = pki.push_cert("other-topic")
    os.replace(c2, cert)
    os.replace(k2, key)
    d.signal(signal.SIGHUP)
    assert d.wait_log("MDM09104")
    t = d.text()
    assert "REFUSED replacement certificate" in t and other in t
    assert "renew" in t
    rc.hdel(rec_key(UDID), "push_result")
    push(rc, UDID)
    assert outcome(rc, UDID, "ok")
    # still the old certificate, still the old topic
    assert standin.requests[-1]["uid"] == topic
    assert standin.requests[-1]["serial"] == first_serial
    # a renewed certificate (same topic, new key and validity) is taken
    pki.push_cert("renewed", topic=topic, days=400)
    os.replace(os.path.join(pki.dir, "renewed.pem"), cert)
    os.replace(os.path.join(pki.dir, "renewed.key"), key)
    d.signal(signal.SIGHUP)
    assert d.wait_log("reloaded push certificate")
    rc.hdel(rec_key(UDID), "push_result")
    push(rc, UDID)
    assert outcome(rc, UDID, "ok")
    assert standin.requests[-1]["uid"] == topic
    assert standin.requests[-1]["serial"] != first_serial


def test_reload_keeps_inflight_pushes(rc, standin, pki, make_pushd):
    topic, cert, key = pki.push_cert("inflight")
    ids = ["HUP-%02d" % i for i in range(10)]
    for i in ids:
        enroll(rc, i, topic)
    standin.default = (200, None, 0.8)
    d = make_pushd(certs=[[cert, "key", key]]).start()
    for i in ids:
        push(rc, i)
    assert standin.wait(lambda s: len(s.requests) == 10)
    pki.push_cert("inflight2", topic=topic, days=500)
    os.replace(os.path.join(pki.dir, "inflight2.pem"), cert)
    os.replace(os.path.join(pki.dir, "inflight2.key"), key)
    d.signal(signal.SIGHUP)
    for i in ids:
        assert outcome(rc, i, "ok"), i
    # none of them needed a second attempt
    assert len(standin.requests) == 10


def test_expired_certificate_reported(rc, standin, pki, make_pushd,
                                      redis_server):
    good, gc, gk = pki.push_cert("good")
    expired, ec_, ek = pki.push_cert("expired", days=-2, start_days=-400)
    enroll(rc, "DEV-OLD", expired)
    enroll(rc, "DEV-NEW", good)
    d = make_pushd(certs=[[gc, "key", gk], [ec_, "key", ek]]).start()
    assert d.wait_log("MDM09111")
    assert "EXPIRED" in d.text()
    push(rc, "DEV-OLD")
    push(rc, "DEV-NEW")
    assert outcome(rc, "DEV-OLD", "failed")["push_reason"] == "cert-expired"
    assert outcome(rc, "DEV-NEW", "ok")
    assert all(r["uid"] == good for r in standin.requests)
    _, t = wait_for(lambda: topic_status(redis_server, expired)[1] and
                    topic_status(redis_server, expired))
    assert t["state"] == "expired" and int(t["days_left"]) < 0
    _, g = topic_status(redis_server, good)
    assert g["state"] == "ok" and int(g["days_left"]) >= 360


def test_expiry_warnings(rc, pki, make_pushd, redis_server):
    t10, c10, k10 = pki.push_cert("ten-days", days=10)
    t40, c40, k40 = pki.push_cert("forty-days", days=40)
    d = make_pushd(certs=[[c10, "key", k10], [c40, "key", k40]]).start()
    assert d.wait_log("MDM09110")
    lines = [ln for ln in d.text().splitlines() if "MDM09110" in ln]
    assert len(lines) == 1 and t10 in lines[0] and "under 14" in lines[0]
    _, t = wait_for(lambda: topic_status(redis_server, t10)[1] and
                    topic_status(redis_server, t10))
    assert t["state"] == "expiring"


def test_pkcs12_with_passphrase_file_and_combined_pem(rc, standin, pki,
                                                      make_pushd):
    t1, p12, passfile = pki.p12("p12cert")
    t2, comb, _ = pki.push_cert("combined", combined=True)
    tok1, _ = enroll(rc, "DEV-P12", t1)
    tok2, _ = enroll(rc, "DEV-PEM", t2)
    make_pushd(certs=[[p12, "passfile", passfile], [comb]]).start()
    push(rc, "DEV-P12")
    push(rc, "DEV-PEM")
    assert outcome(rc, "DEV-P12", "ok") and outcome(rc, "DEV-PEM", "ok")
    assert standin.for_token(tok1)[0]["uid"] == t1
    assert standin.for_token(tok2)[0]["headers"]["apns-topic"] == t2


def test_unknown_topic_skips_and_odd_records(rc, standin, make_pushd,
                                             topic_cert):
    topic = topic_cert[0]
    enroll(rc, "DEV-T", "com.apple.mgmt.External.not-ours")
    enroll(rc, "DEV-X", topic, token="not-hex")
    rc.hset(rec_key("DEV-OFF"), mapping={"topic": topic, "token": "abcd",
                                         "magic": "m", "enabled": "0"})
    make_pushd().start()
    for i in ("DEV-T", "DEV-X", "DEV-OFF", "NO-SUCH-DEVICE"):
        push(rc, i)
    assert outcome(rc, "DEV-T", "failed")["push_reason"] == \
        "no-cert-for-topic"
    assert outcome(rc, "DEV-X", "failed")["push_reason"] == \
        "bad-token-in-record"
    assert outcome(rc, "DEV-OFF", "skipped")["push_reason"] == "disabled"
    assert wait_for(lambda: pending(rc) == 0)
    # an unknown enrollment gets an event but no record
    assert not rc.exists(rec_key("NO-SUCH-DEVICE"))
    assert any(e["id"] == "NO-SUCH-DEVICE" and
               e["reason"] == "unknown-enrollment" for e in events(rc))
    assert standin.requests == []


def test_status_counters(rc, standin, make_pushd, topic_cert, redis_server):
    topic = topic_cert[0]
    toks = {}
    for i in range(5):
        toks[i], _ = enroll(rc, "S-%d" % i, topic)
    standin.script[toks[0]] = [(410, "Unregistered")]
    make_pushd().start()
    for i in range(5):
        push(rc, "S-%d" % i)
    for i in range(5):
        assert outcome(rc, "S-%d" % i)

    def counted():
        d, t = topic_status(redis_server, topic)
        return t and t.get("succeeded") == "4" and (d, t)
    d, t = wait_for(counted)
    assert t["sent"] == "5" and t["dead:Unregistered"] == "1"
    assert t["failed"] == "1"
    assert d["name"] == "test-1" and d["pid"]
    assert t["state"] == "ok" and int(t["days_left"]) >= 360
    assert "retries_pending" in t and "not_after" in t
    # the plain text view
    p = mdmctl(redis_server, "push", "status")
    assert topic in p.stdout


def test_bad_configurations_refused(tmp_path, pki, redis_server):
    def run(conf):
        p = tmp_path / "c.conf"
        p.write_text(conf)
        return subprocess.run([pushd_bin(), "-c", str(p), "-t"],
                              capture_output=True, text=True, timeout=20)
    _, c, k = pki.push_cert("cfg")
    ok = run("redis %s\ncert %s key %s\n" % (redis_server.addr, c, k))
    assert ok.returncode == 0, ok.stderr
    # a certificate whose UID is not an MDM topic
    _, bc, bk = pki.push_cert("notmdm", topic="com.example.not-mdm")
    p = run("cert %s key %s\n" % (bc, bk))
    assert p.returncode == 1 and "MDM09100" in p.stderr
    assert "com.apple.mgmt." in p.stderr
    # two certificates of one topic
    p = run("cert %s key %s\ncert %s key %s\n" % (c, k, c, k))
    assert p.returncode == 1 and "same topic" in p.stderr
    for bad in ("priority 7\n", "endpoint http://x\n", "bogus 1\n",
                "connections 0\n", "cert %s key %s extra\n" % (c, k), ""):
        p = run(bad + ("cert %s key %s\n" % (c, k) if bad else ""))
        assert p.returncode == 1 and "MDM09100" in p.stderr, (bad, p.stderr)
    # the wrong PKCS#12 passphrase
    _, p12, pf = pki.p12("wrongpass")
    with open(pf, "w") as f:
        f.write("nope\n")
    p = run("cert %s passfile %s\n" % (p12, pf))
    assert p.returncode == 1 and "passphrase" in p.stderr


def test_redis_restart_survived(rc, standin, make_pushd, topic_cert,
                                redis_server):
    topic = topic_cert[0]
    enroll(rc, UDID, topic)
    d = make_pushd().start()
    # connections killed under the daemon: it reconnects and goes on
    rc.client_kill_filter(_type="normal", skipme=True)
    assert d.wait_log("MDM09121")
    assert d.wait_log("MDM09123", count=2)
    push(rc, UDID)
    assert outcome(rc, UDID, "ok")


def test_example_configuration_is_valid(tmp_path, pki):
    """conf/pushd/pushd.conf, with its certificate line pointed at a test
    certificate, passes the daemon's own check."""
    _, c, k = pki.push_cert("example")
    lines = []
    with open(os.path.join(TOP, "conf", "pushd", "pushd.conf")) as f:
        for ln in f:
            if ln.startswith("cert "):
                ln = "cert %s key %s\n" % (c, k)
            lines.append(ln)
    p = tmp_path / "pushd.conf"
    p.write_text("".join(lines))
    r = subprocess.run([pushd_bin(), "-c", str(p), "-t"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "configuration ok" in r.stderr


def test_410_after_a_new_token_does_not_kill_it(rc, standin, make_pushd,
                                                topic_cert):
    topic = topic_cert[0]
    token, magic = enroll(rc, UDID, topic)
    standin.script[token] = [(410, "Unregistered", 0.6)]
    make_pushd().start()
    push(rc, UDID)
    assert standin.wait(lambda s: len(s.requests) == 1)
    # the device sends a new token while APNs is answering for the old one
    tokenupdate(rc, UDID, "ab" * 32, magic)
    rec = outcome(rc, UDID, "dead")
    assert "push_dead" not in rec, rec
    assert rec["token"] == "ab" * 32


def test_connection_refused_retried_until_endpoint_up(rc, pki, make_pushd,
                                                      topic_cert):
    from conftest import free_port
    from apns_standin import Standin
    topic = topic_cert[0]
    token, _ = enroll(rc, UDID, topic)
    port = free_port()
    d = make_pushd(endpoint="https://127.0.0.1:%d" % port,
                   retry_max_ms=200, retry_attempts=1000).start()
    push(rc, UDID)
    assert d.wait_log("MDM09136", count=3)
    assert "push_result" not in rc.hgetall(rec_key(UDID))
    assert pending(rc) == 1
    s = Standin(pki.server_cert, pki.server_key, pki.ca_file, port)
    s.start()
    try:
        assert outcome(rc, UDID, "ok")
        assert len(s.for_token(token)) == 1
    finally:
        s.stop()


def test_outcome_kept_while_redis_is_down(tmp_path, standin, pki,
                                          topic_cert):
    """Redis goes away while a push is on the wire: the push finishes, its
    outcome waits in memory and is written (and acknowledged) once Redis
    is back, on the same port with the same data."""
    from conftest import Pushd, RedisServer
    topic, c, k = topic_cert
    rdir = tmp_path / "redis"
    rdir.mkdir()
    own = RedisServer(str(rdir))
    d = None
    try:
        r = own.client()
        token, _ = enroll(r, UDID, topic)
        standin.script[token] = [(200, None, 1.0)]
        ddir = tmp_path / "d"
        ddir.mkdir()
        d = Pushd(str(ddir), own, standin, pki, [[c, "key", k]]).start()
        push(r, UDID)
        assert standin.wait(lambda s: len(s.requests) == 1)
        r.save()
        own.proc.send_signal(signal.SIGSTOP)
        time.sleep(2.5)   # the answer arrives; the write times out
        own.proc.send_signal(signal.SIGCONT)
        assert d.wait_log("MDM09121")
        assert outcome(r, UDID, "ok", timeout=15)
        assert wait_for(lambda: pending(r) == 0, 10)
        assert len(standin.for_token(token)) == 1
        assert d.stop() == 0, d.text()
    finally:
        if d is not None:
            d.stop()
        own.stop()


# ------------------------------------------- the HTTP/2 client (pushd_h2.c)

def own_standin(pki, **kw):
    from conftest import free_port
    from apns_standin import Standin
    s = Standin(pki.server_cert, pki.server_key, pki.ca_file, free_port(),
                **kw)
    s.start()
    return s


def test_server_stream_limit_honoured(rc, pki, make_pushd, topic_cert):
    """The server announces SETTINGS_MAX_CONCURRENT_STREAMS 2 (and closes
    the connection on a third stream): the daemon, configured for 50
    streams on one connection, never has more than 2 open."""
    topic = topic_cert[0]
    ids = ["LIM-%02d" % i for i in range(12)]
    for i in ids:
        enroll(rc, i, topic)
    s = own_standin(pki, max_streams=2)
    try:
        s.default = (200, None, 0.15)
        d = make_pushd(endpoint="https://127.0.0.1:%d" % s.port,
                       connections=1, streams=50).start()
        for i in ids:
            push(rc, i)
        for i in ids:
            assert outcome(rc, i, "ok"), i
        assert s.max_active == 2, s.max_active
        assert len(s.requests) == len(ids)
        assert "MDM09136" not in d.text()   # nothing had to be retried
    finally:
        s.stop()


def test_goaway_refused_streams_retried(rc, standin, make_pushd, topic_cert):
    """GOAWAY with last_stream_id 0: every stream on that connection was
    refused unprocessed, and is sent again on a new connection."""
    topic = topic_cert[0]
    tok, _ = enroll(rc, UDID, topic)
    others = ["GA-%d" % i for i in range(4)]
    for i in others:
        enroll(rc, i, topic)
    standin.script[tok] = [("goaway-refuse", None, 0.3), 200]
    standin.default = (200, None, 0.6)
    d = make_pushd(connections=1).start()
    push(rc, UDID)
    assert standin.wait(lambda s: len(s.requests) == 1)
    for i in others:
        push(rc, i)
    assert outcome(rc, UDID, "ok")
    for i in others:
        assert outcome(rc, i, "ok"), i
    assert "stream refused" in d.text()
    assert len(standin.for_token(tok)) == 2
    assert wait_for(lambda: pending(rc) == 0)


def test_rst_stream_retried(rc, standin, make_pushd, topic_cert):
    topic = topic_cert[0]
    tok, _ = enroll(rc, UDID, topic)
    t2, _ = enroll(rc, "RST-OTHER", topic)
    standin.script[tok] = ["reset", 200]
    d = make_pushd().start()
    push(rc, UDID)
    push(rc, "RST-OTHER")
    assert outcome(rc, UDID, "ok")
    assert outcome(rc, "RST-OTHER", "ok")
    assert "stream reset" in d.text()
    assert len(standin.for_token(tok)) == 2
    # the connection stayed: the reset was of one stream
    assert standin.connections >= 1


def test_request_timeout_retried(rc, standin, make_pushd, topic_cert):
    topic = topic_cert[0]
    tok, _ = enroll(rc, UDID, topic)
    standin.script[tok] = [(200, None, 2.0), 200]
    d = make_pushd(timeout_ms=400).start()
    push(rc, UDID)
    assert outcome(rc, UDID, "ok")
    assert "timeout" in d.text()
    assert len(standin.for_token(tok)) == 2


def test_endpoint_without_http2(rc, pki, make_pushd, topic_cert):
    """A server that does not select h2 in ALPN: warned once (MDM09133),
    the pushes are retried, then given up."""
    topic = topic_cert[0]
    enroll(rc, UDID, topic)
    s = own_standin(pki, alpn=("http/1.1",))
    try:
        d = make_pushd(endpoint="https://127.0.0.1:%d" % s.port,
                       retry_attempts=2).start()
        push(rc, UDID)
        assert outcome(rc, UDID, "gave-up")
        assert d.text().count("MDM09133") == 1
        assert "HTTP/2" in d.text()
        assert s.requests == []
    finally:
        s.stop()


def test_server_certificate_verified(rc, pki, tmp_path, make_pushd,
                                     topic_cert):
    """The stand-in's certificate does not chain to ca_file: no request
    is sent, the push is retried and given up."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    topic = topic_cert[0]
    enroll(rc, UDID, topic)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
          .public_key(key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                         critical=True)
          .sign(key, hashes.SHA256()))
    other = tmp_path / "other-ca.pem"
    other.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    s = own_standin(pki)
    try:
        d = make_pushd(endpoint="https://127.0.0.1:%d" % s.port,
                       ca_file=str(other), retry_attempts=2).start()
        push(rc, UDID)
        rec = outcome(rc, UDID, "gave-up")
        assert rec
        assert "server certificate" in d.text()
        assert s.requests == []
    finally:
        s.stop()
