"""Prometheus metrics (nginx: mdm_metrics_zone + mdm_metrics; Apache:
SetHandler mdm-metrics): scrape, drive a known sequence of requests over
both nginx workers / Apache children, scrape again and check the exact
deltas."""

import concurrent.futures
import plistlib
import re
import time

from mdmdevice import Admin, Device, command, new_session, sign

LINE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$")


def parse(text):
    """{'name{labels}': value}; every sample's family has HELP and TYPE."""
    out, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        m = LINE.match(line)
        assert m, "not a sample line: %r" % line
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or family in typed, "no # TYPE for %s" % name
        key = name + (m.group(2) or "")
        assert key not in out, "duplicate sample %s" % key
        out[key] = float(m.group(3))
    return out


def scrape(server, pki):
    s = new_session(pki)
    r = s.get(server.base_url + "/mdm/metrics", timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("text/plain"), r.headers
    return parse(r.text)


def delta(before, after):
    keys = set(before) | set(after)
    d = {k: after.get(k, 0) - before.get(k, 0) for k in keys}
    return {k: v for k, v in d.items() if v}


def req(type_, status):
    return 'mdm_requests_total{type="%s",status="%s"}' % (type_, status)


def refusal(mdm_id):
    return 'mdm_refusals_total{id="%s"}' % mdm_id


def settle(server, pki, before, want, timeout=3.0):
    """Scrape until the deltas of the keys in want are want (requests are
    counted when logged, just after their answer went out); returns the
    last deltas."""
    end = time.time() + timeout
    while True:
        d = delta(before, scrape(server, pki))
        if all(d.get(k, 0) == v for k, v in want.items()) or \
                time.time() > end:
            return d
        time.sleep(0.05)


def served_pids(server, udid):
    pids = set()
    for line in server.access_log_lines():
        if ("id=%s " % udid) in line:
            m = re.search(r"pid=(\d+)", line)
            if m:
                pids.add(int(m.group(1)))
    return pids


def idle_burst(server, pki, udid, n=16):
    """n Idle reports on n new connections at once: they spread over the
    workers (children)."""
    def one(_):
        d = Device(server, pki, udid=udid)
        r = d.send("report", {"Status": "Idle", "UDID": udid},
                   headers={"Connection": "close"})
        return r.status_code
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        return list(ex.map(one, range(n)))


def test_metrics_deltas(server, pki, redis):
    d = Device(server, pki)
    admin = Admin(server, pki)
    before = scrape(server, pki)

    assert d.authenticate().status_code == 200
    assert d.token_update().status_code == 200

    # Idle from every worker: bursts until two processes served some
    idles = 0
    for _ in range(10):
        codes = idle_burst(server, pki, d.udid)
        assert codes == [200] * len(codes), codes
        idles += len(codes)
        if len(served_pids(server, d.udid)) >= 2:
            break
    assert len(served_pids(server, d.udid)) >= 2, \
        "all requests went to one process"

    # refusals: a bad signature, an unknown message type, a wrong method
    body = plistlib.dumps(d.authenticate_msg())
    r = d.send_raw("checkin", body, headers={
        "Mdm-Signature": sign(b"another body", d.cert_path, d.key_path)})
    assert r.status_code == 400
    r = d.send("checkin", {"MessageType": "Florp", "UDID": d.udid,
                           "Topic": d.topic})
    assert r.status_code == 400
    r = d.session.get(d.url("report"), timeout=10)
    assert r.status_code == 405

    # the admin API: one command queued, one call without the key
    assert admin.enqueue(d.udid, command("DeviceInformation",
                                         Queries=["UDID"]),
                         nopush=True).status_code == 200
    assert Admin(server, pki, key=False).queue(d.udid).status_code == 403

    want = {
        req("Authenticate", 200): 1,
        req("TokenUpdate", 200): 1,
        req("Idle", 200): idles,
        # refused before the message was read: type "none"
        req("none", 400): 2,
        req("none", 405): 1,
        req("admin", 200): 1,
        req("admin", 403): 1,
        refusal("MDM02002"): 1,
        refusal("MDM01004"): 1,
        refusal("MDM06001"): 1,
        refusal("MDM05012"): 1,
        # Authenticate, TokenUpdate, the Idles, the enqueue
        "mdm_redis_seconds_count": idles + 3,
        'mdm_redis_seconds_bucket{le="+Inf"}': idles + 3,
    }
    got = settle(server, pki, before, want)
    # chain checks: every request with a good signature (the unknown
    # message type too: identity comes first), from the cache or not
    checks = 2 + idles + 1
    hits = got.pop('mdm_identity_cache_total{result="hit"}', 0)
    misses = got.pop('mdm_identity_cache_total{result="miss"}', 0)
    assert hits + misses == checks, (hits, misses, checks)
    assert got.pop("mdm_identity_direct_total", 0) == checks
    assert got.pop("mdm_redis_seconds_sum", 0) > 0
    for k in list(got):
        if k.startswith("mdm_redis_seconds_bucket") and "Inf" not in k:
            assert 0 <= got.pop(k) <= idles + 3, k
    assert got == want

    # Redis gone: 503 from any process, one Redis error per request
    before = scrape(server, pki)
    redis.stop()
    try:
        fails = 0
        for _ in range(2):
            codes = idle_burst(server, pki, d.udid, n=4)
            assert codes == [503] * 4, codes
            fails += 4
        want = {
            req("Idle", 503): fails,
            refusal("MDM04001"): fails,
        }
        got = settle(server, pki, before, want)
        errors = {k: got.pop(k) for k in list(got)
                  if k.startswith("mdm_redis_errors_total")}
        assert sum(errors.values()) == fails, errors
        assert 'mdm_redis_errors_total{kind="reply"}' not in errors
        assert 'mdm_redis_errors_total{kind="timeout"}' not in errors
        got.pop('mdm_identity_cache_total{result="hit"}', 0)
        got.pop('mdm_identity_cache_total{result="miss"}', 0)
        got.pop("mdm_identity_direct_total", 0)
        assert got == want
    finally:
        redis.start(wipe=False)
        # let every process leave its reconnect back-off
        time.sleep(1.0)


def test_metrics_format(server, pki):
    s = new_session(pki)
    r = s.get(server.base_url + "/mdm/metrics", timeout=10)
    assert r.status_code == 200
    text = r.text
    for family, kind in (("mdm_requests_total", "counter"),
                         ("mdm_refusals_total", "counter"),
                         ("mdm_redis_seconds", "histogram"),
                         ("mdm_redis_errors_total", "counter"),
                         ("mdm_identity_cache_total", "counter"),
                         ("mdm_identity_direct_total", "counter")):
        assert "# HELP %s " % family in text
        assert "# TYPE %s %s\n" % (family, kind) in text
    m = parse(text)
    les = [k for k in m if k.startswith("mdm_redis_seconds_bucket")]
    assert les[-1] == 'mdm_redis_seconds_bucket{le="+Inf"}'
    values = [m[k] for k in les]
    assert values == sorted(values)  # cumulative
    assert m['mdm_redis_seconds_bucket{le="+Inf"}'] == \
        m["mdm_redis_seconds_count"]
    # a scrape counts nothing itself
    assert parse(s.get(server.base_url + "/mdm/metrics",
                       timeout=10).text) == m
    # only GET (and HEAD)
    assert s.post(server.base_url + "/mdm/metrics",
                  timeout=10).status_code == 405



def test_metrics_survive_reload(server, pki):
    """nginx reload (same zone name and size) and Apache graceful restart
    keep the counters."""
    d = Device(server, pki)
    d.enroll()
    key = req("TokenUpdate", 200)
    before = settle(server, pki, {}, {})
    assert before.get(key, 0) >= 1
    server.reload()
    after = scrape(server, pki)
    assert after.get(key, 0) >= before[key], (before.get(key), after.get(key))
    assert d.token_update().status_code == 200
    got = settle(server, pki, after, {key: 1})
    assert got.get(key) == 1
