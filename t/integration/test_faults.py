"""Faults under load, against each server: wrk (t/lib/wrk-status.lua)
PUTs signed Idle reports of a few enrolled devices for a few seconds while
a fault is injected, and tallies the answers by status. Beside the load a
witness device (Witness) gets commands queued through the admin API and
answers them, so that "nothing lost" is checked on real commands:

- every command the admin API accepted (200) is delivered, in the order
  queued; the device never gets a command that was not queued;
- a command the device acknowledged with a 200 answer has its result
  recorded and is never offered again;
- afterwards the stored queue is consistent (t/lib/faultload.py
  queue_state: no uuid twice, bodies and queue entries match).

What each fault may cost (the design's allowance, asserted):

- Redis SIGKILL + restart (AOF, everysec): 2xx or 503; every request
  answered;
- reload (nginx SIGHUP, Apache SIGUSR1), twice: 2xx only; without an
  answer at most one request per keep-alive connection per reload (sent
  just as the old generation closes the idle connection);
- one worker SIGKILLed (nginx worker, Apache child): 2xx only; without an
  answer at most one request per connection (in flight on the dead one);
- mdm-pushd SIGKILLed with pushes in flight: 2xx only, every request
  answered; every push request answered after the restart.

Each test prints one line "FAULT <server> <fault>: requests=N 2xx=N
503=N other=N sockerr=N lost=0" (pytest -s shows it; MDM_FAULT_LOG=FILE
appends it to FILE). Under ASan (MDM_NGINX_PRELOAD / MDM_APACHE_PRELOAD
set) the load runs for fewer seconds; the checks are the same.
"""

import collections
import importlib.util
import os
import re
import signal
import sys
import threading
import time

import pytest
import requests

import faultload
from conftest import TOPICS, build_dir
from mdmdevice import Admin, Device, command, new_session, parse_command

SANITIZED = bool(os.environ.get("MDM_NGINX_PRELOAD") or
                 os.environ.get("MDM_APACHE_PRELOAD"))
LOAD_SECS = 3 if SANITIZED else 4
CONNS = 4
LOAD_DEVICES = 3


# ------------------------------------------------------------- witness

class Witness(threading.Thread):
    """A device beside the load: each round queues one command through
    the admin API, then sends Idle (or Acknowledged for the command it
    holds) and keeps what it got. Everything is recorded in `events`
    (in order): ("attempt"|"accepted", uuid), ("delivered", uuid),
    ("acked", uuid) when an Acknowledged got 200."""

    def __init__(self, server, pki, dev):
        super().__init__(daemon=True)
        self.server, self.pki, self.dev = server, pki, dev
        self.admin = Admin(server, pki)
        self.stop_ev = threading.Event()
        self.events = []
        self.statuses = collections.Counter()
        self.admin_statuses = collections.Counter()
        self.sockerr = 0
        self.cur = None

    def _device_step(self):
        try:
            r = self.dev.ack(self.cur) if self.cur else self.dev.idle()
        except requests.exceptions.RequestException:
            # no answer: whether it was recorded is unknown (at least
            # once); a new connection, and Idle next
            self.sockerr += 1
            self.dev.session = new_session(self.pki)
            self.cur = None
            return None
        self.statuses[r.status_code] += 1
        if r.status_code != 200:
            self.cur = None
            return r
        if self.cur:
            self.events.append(("acked", self.cur))
        cmd = parse_command(r)
        self.cur = cmd["CommandUUID"] if cmd else None
        if self.cur:
            self.events.append(("delivered", self.cur))
        return r

    def run(self):
        i = 0
        while not self.stop_ev.is_set():
            c = command("DeviceInformation", Queries=["UDID", "W%d" % i])
            i += 1
            self.events.append(("attempt", c["CommandUUID"]))
            try:
                r = self.admin.enqueue(self.dev.udid, c, nopush=True)
                self.admin_statuses[r.status_code] += 1
                if r.status_code == 200:
                    self.events.append(("accepted", c["CommandUUID"]))
            except requests.exceptions.RequestException:
                self.admin_statuses["noanswer"] += 1
                self.admin = Admin(self.server, self.pki)
            self._device_step()
            time.sleep(0.01)

    def stop(self):
        self.stop_ev.set()
        self.join(30)
        assert not self.is_alive()

    def drain(self, timeout=15):
        """After the fault: answer until the queue is empty (503 and
        unanswered requests retried until timeout)."""
        end = time.time() + timeout
        while time.time() < end:
            r = self._device_step()
            if r is not None and r.status_code == 200 and self.cur is None:
                return
            if r is None or r.status_code != 200:
                time.sleep(0.1)
        raise AssertionError("witness queue not drained in %ss" % timeout)

    def check(self, rc):
        """Problems found, and the number of lost commands (accepted but
        never delivered, or acknowledged without a stored result)."""
        attempted = [u for k, u in self.events if k == "attempt"]
        accepted = [u for k, u in self.events if k == "accepted"]
        problems = []
        first = []
        acked_at = {}
        for i, (k, u) in enumerate(self.events):
            if k == "delivered":
                if u in acked_at:
                    problems.append("%s offered again after its "
                                    "Acknowledged got 200" % u)
                if u not in first:
                    first.append(u)
            elif k == "acked":
                acked_at.setdefault(u, i)
        extra = set(first) - set(attempted)
        if extra:
            problems.append("delivered, never queued: %r" % sorted(extra))
        lost = [u for u in accepted if u not in first]
        # in the order queued (commands whose enqueue got no 200 may
        # still have been queued: at least once)
        order = [u for u in first if u in set(accepted)]
        if order != [u for u in accepted if u in set(first)]:
            problems.append("delivered out of order")
        for u in acked_at:
            r = self.admin.result(self.dev.udid, u)
            if r.status_code != 200 or r.json().get("status") != \
                    "Acknowledged":
                lost.append(u)
                problems.append("no result for acknowledged %s: %d" % (
                    u, r.status_code))
        q, qp = faultload.queue_state(rc, self.dev.udid)
        problems += qp
        if q:
            problems.append("queue not empty after drain: %r" % q)
        if lost:
            problems.append("lost: %r" % lost)
        self.summary = "witness: queued=%d delivered=%d acked=%d" % (
            len(accepted), len(first), len(acked_at))
        return problems, len(lost)


def other_statuses(counter, allowed):
    return {k: v for k, v in counter.items() if k not in allowed}


def start_load(server, req_dir, names, secs=LOAD_SECS):
    if not os.path.exists(faultload.WRK):
        pytest.fail("no %s: Debian's wrk (tools/quickstart.sh test "
                    "installs it)" % faultload.WRK)
    return faultload.Wrk(server.base_url + "/mdm/connect", req_dir, names,
                         secs, conns=CONNS).start()


def witness_device(server, pki):
    ident = faultload.issue_devices(pki.dir, 1, prefix="fwitness")[0]
    return Device(server, pki, ident=ident).enroll()


def until_ok(fn, timeout=8.0):
    end = time.time() + timeout
    while True:
        try:
            r = fn()
            if r.status_code == 200 or time.time() > end:
                return r
        except requests.exceptions.ConnectionError:
            if time.time() > end:
                raise
        time.sleep(0.1)


def report(server, fault, load, lost, w=None, extra=""):
    if w is not None:
        extra = ("%s %s witness-statuses=%s witness-noanswer=%d" % (
            extra, w.summary, dict(w.statuses),
            w.sockerr + w.admin_statuses["noanswer"])).strip()
    return faultload.fault_line(server.name, fault, load, lost, extra)


# --------------------------------------------------------------- tests

def test_fault_redis_restart(server, pki, redis, load_devices):
    """Redis SIGKILLed under load and started again from its append-only
    file (appendonly yes, appendfsync everysec): answers are 2xx or 503
    (never 401, 500, ...), every request gets one, and no command the
    admin API accepted or a device acknowledged is lost."""
    redis.restart(aof=True)
    redis.client().config_set("appendfsync", "everysec")
    # the module may need a request to notice the new Redis
    until_ok(lambda: Admin(server, pki).queue("WARM-UP-0001"))
    req_dir, names, _ = load_devices(server, LOAD_DEVICES)
    w = witness_device(server, pki)
    wit = Witness(server, pki, w)
    load = start_load(server, req_dir, names)
    wit.start()
    try:
        time.sleep(1.2)
        redis.kill9()
        time.sleep(0.8)
        redis.restart(aof=True)
        redis.client().config_set("appendfsync", "everysec")
        load.wait()
    finally:
        load.stop()
        wit.stop()
    wit.drain()
    problems, lost = wit.check(redis.client())
    line = report(server, "redis-restart", load, lost, wit)
    assert load.unavailable > 0 and load.ok > 0, line
    assert not load.other and load.sockerr == 0, (line, load.output)
    assert not other_statuses(wit.statuses, (200, 503)), line
    assert not other_statuses(wit.admin_statuses, (200, 503)), \
        wit.admin_statuses
    assert not problems, problems
    assert lost == 0


def test_fault_reload(server, pki, redis, load_devices):
    """Two reloads under load (nginx SIGHUP, Apache SIGUSR1 graceful
    restart): every answer is 2xx; the only allowance is a request sent
    on a keep-alive connection just as the old generation closes it
    (no answer; the client retries): at most one per connection per
    reload."""
    req_dir, names, _ = load_devices(server, LOAD_DEVICES)
    w = witness_device(server, pki)
    wit = Witness(server, pki, w)
    mark = server.log_mark()
    load = start_load(server, req_dir, names)
    wit.start()
    reloads = 2
    try:
        time.sleep(0.8)
        for _ in range(reloads):
            server.reload()
            time.sleep(0.5)
        load.wait()
    finally:
        load.stop()
        wit.stop()
    wit.drain()
    problems, lost = wit.check(redis.client())
    line = report(server, "reload", load, lost, wit)
    assert load.ok > 0 and not load.other and load.unavailable == 0, line
    assert load.sockerr <= CONNS * reloads, (line, load.output)
    assert not other_statuses(wit.statuses, (200,)), line
    # the witness's two keep-alive connections (device, admin) have the
    # same allowance
    assert not other_statuses(wit.admin_statuses, (200, "noanswer")), \
        wit.admin_statuses
    assert wit.sockerr + wit.admin_statuses["noanswer"] <= 2 * reloads, \
        line
    assert not problems, problems
    assert lost == 0
    from conftest import UNEXPECTED
    bad = [l for l in server.error_log_lines(mark) if UNEXPECTED.search(l)]
    assert not bad, "\n".join(bad)


# a worker killed on purpose: nginx "[alert] ... worker process N exited
# on signal 9" (Apache does not log a child killed with SIGKILL)
KILLED = re.compile(r"exited on signal 9|exit signal Killed \(9\)")


def test_fault_worker_killed(server, pki, redis, load_devices, extra_node):
    """One worker (nginx) or child (Apache) of a private instance
    SIGKILLed while it serves the load: the parent starts another, every
    answer is 2xx, the requests lost with the dead process are at most
    one per connection, and the witness's queue stays consistent."""
    srv = extra_node(server.name, allow=KILLED)
    req_dir, names, _ = load_devices(srv, LOAD_DEVICES)
    w = witness_device(srv, pki)
    wit = Witness(srv, pki, w)
    before = srv.worker_pids()
    load = start_load(srv, req_dir, names)
    wit.start()
    try:
        time.sleep(1.2)
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        end = time.time() + 5
        while time.time() < end:
            now = srv.worker_pids()
            if victim not in now and len(now) >= len(before):
                break
            time.sleep(0.05)
        load.wait()
    finally:
        load.stop()
        wit.stop()
    after = srv.worker_pids()
    wit.drain()
    problems, lost = wit.check(redis.client())
    line = report(srv, "worker-kill", load, lost, wit,
                  "workers=%d->%d" % (len(before), len(after)))
    assert victim not in after and len(after) >= len(before), \
        (before, after)
    # nginx logs the death; Apache logs no SIGKILLed child (mpm_common)
    assert srv.name != "nginx" or any(
        KILLED.search(l) for l in srv.error_log_lines()), \
        "\n".join(srv.error_log_lines())
    assert load.ok > 0 and not load.other and load.unavailable == 0, line
    assert load.sockerr <= CONNS, (line, load.output)
    assert not other_statuses(wit.statuses, (200,)), line
    assert not other_statuses(wit.admin_statuses, (200, "noanswer")), \
        wit.admin_statuses
    assert wit.sockerr + wit.admin_statuses["noanswer"] <= 2, line
    assert not problems, problems
    assert lost == 0


# ------------------------------------------------------------ mdm-pushd

PUSHD_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "pushd")
PUSHD = os.path.join(build_dir(), "pushd", "mdm-pushd")


def pushd_fixtures():
    """t/pushd/conftest.py under another name (as test_push.py)."""
    if PUSHD_DIR not in sys.path:
        sys.path.insert(0, PUSHD_DIR)
    spec = importlib.util.spec_from_file_location(
        "pushd_fixtures", os.path.join(PUSHD_DIR, "conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class RedisAddr:
    def __init__(self, redis):
        self.addr = "127.0.0.1:%d" % redis.port


@pytest.mark.skipif(not os.path.exists(PUSHD),
                    reason="mdm-pushd is not built")
def test_fault_pushd_killed(server, pki, redis, load_devices, tmp_path):
    """mdm-pushd SIGKILLed while pushes are on the wire (the APNs
    stand-in answers slowly), then started again: every push request
    the admin API accepted is sent at least once and answered (each
    device's push_result is set, the events stream accounts for every
    request), and the consumer group's pending list drains; the device
    load meanwhile gets 2xx only."""
    pf = pushd_fixtures()
    d = str(tmp_path / "push")
    os.makedirs(d)
    ppki = pf.Pki(d)
    _, cert, key = ppki.push_cert("push", topic=TOPICS[0])
    standin = pf.Standin(ppki.server_cert, ppki.server_key, ppki.ca_file,
                         pf.free_port())
    standin.start()
    standin.default = (200, None, 0.4)   # pushes stay in flight a while
    daemon = pf.Pushd(d, RedisAddr(redis), standin, ppki,
                      [[cert, "key", key]])
    rc = redis.client()
    try:
        daemon.start()
        req_dir, names, devs = load_devices(server, 8)
        ids = [x.udid for x in devs]
        admin = Admin(server, pki)
        load = start_load(server, req_dir, names[:LOAD_DEVICES])
        rounds = 4
        try:
            for i in range(rounds):
                r = admin.push(ids)
                assert r.status_code == 200, r.text
                time.sleep(0.15)
            assert standin.wait(lambda s: len(s.requests) >= 4, 5)
            inflight = standin.active
            daemon.kill9()
            pending_at_kill = rc.xpending("mdm:push", "mdm-pushd")["pending"]
            time.sleep(0.3)
            standin.default = (200, None, 0.05)
            daemon.start()
            assert daemon.wait_log("MDM09125"), daemon.text()
            load.wait()
        finally:
            load.stop()

        def settled():
            if rc.xpending("mdm:push", "mdm-pushd")["pending"]:
                return False
            return all(rc.hget(faultload.base_of("mdm:", u) + ":rec",
                               "push_result") == b"ok" for u in ids)
        end = time.time() + 15
        while not settled() and time.time() < end:
            time.sleep(0.1)
        # every push request (stream entry) accounted for by a push event
        entries = collections.Counter(
            f[b"id"].decode() for _, f in rc.xrange("mdm:push"))
        answered = collections.Counter()
        for _, f in rc.xrange("mdm:events"):
            if f.get(b"kind") == b"push" and f.get(b"result") == b"ok":
                answered[f[b"id"].decode()] += int(f.get(b"requests", 1))
        lost = sum(1 for u in ids if answered[u] < entries[u])
        sent = {u: len(standin.for_token(x.token.hex()))
                for u, x in zip(ids, devs)}
        line = report(server, "pushd-kill", load, lost,
                      extra="push-requests=%d pending-at-kill=%d "
                      "in-flight-at-kill=%d apns-requests=%d" % (
                          sum(entries.values()), pending_at_kill, inflight,
                          sum(sent.values())))
        assert settled(), (line, daemon.text()[-2000:])
        assert all(n >= 1 for n in sent.values()), sent
        assert pending_at_kill > 0, line
        assert lost == 0, (entries, answered)
        assert load.ok > 0 and not load.other and load.unavailable == 0, \
            line
        assert load.sockerr == 0, (line, load.output)
    finally:
        daemon.stop()
        standin.stop()
    t = daemon.text()
    assert "AddressSanitizer" not in t and "runtime error:" not in t, t
