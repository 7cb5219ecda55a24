"""Apache (mod_mdm) over Redis topologies (README "Running several
nodes"): AUTH with a password file (ACL user and default user), a unix
socket, Sentinel failover under load, a 3-master Cluster with a slot
moved under it. Real redis-server/redis-sentinel processes on loopback
(t/lib/redistopo.py). The nginx half is test_redis_topology_nginx.py.
"""

import os
import re
import subprocess
import sys
import threading
import time

import pytest

from conftest import ApacheServer, open_parents
from mdmdevice import Admin, Device, command, new_udid, parse_command

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "lib"))
import redistopo  # noqa: E402


@pytest.fixture
def apache(server):
    if server.name != "apache":
        pytest.skip("Apache half (nginx: test_redis_topology_nginx.py)")
    return server


class TopoApache(ApacheServer):
    """The example Apache configuration with its MDMRedis line replaced."""
    redis_lines = ""

    def adjust(self, name, text, run):
        if name == "httpd.conf":
            text = re.sub(r"^MDMRedis .*$", lambda m: self.redis_lines,
                          text, count=1, flags=re.M)
        return text


def topo_server(tmp_path, name, pki, redis, upstream, lines, workers=2):
    run = str(tmp_path / name)
    os.makedirs(run, exist_ok=True)
    open_parents(run, os.path.dirname(os.path.dirname(run)))

    class S(TopoApache):
        redis_lines = lines
    return S(run, pki, redis, upstream, workers=workers)


def topo_dir(tmp_path, name):
    d = str(tmp_path / name)
    os.makedirs(d, exist_ok=True)
    open_parents(d, os.path.dirname(os.path.dirname(d)))
    return d


def ps_args():
    return subprocess.run(["ps", "-eo", "args"], capture_output=True,
                          text=True).stdout


def delivers(srv, pki, ident="dev1", udid=None):
    """Enroll, enqueue, fetch, acknowledge, read the result: True when
    every step answered as it should."""
    d = Device(srv, pki, ident=ident, udid=udid).enroll()
    a = Admin(srv, pki)
    c = command("DeviceInformation", Queries=["UDID"])
    assert a.enqueue(d.udid, c, nopush=True).status_code == 200
    r = d.idle()
    assert r.status_code == 200, (r.status_code, r.text)
    assert parse_command(r)["CommandUUID"] == c["CommandUUID"]
    r = d.ack(c["CommandUUID"], QueryResponses={"UDID": d.udid})
    assert r.status_code == 200, (r.status_code, r.text)
    r = a.result(d.udid, c["CommandUUID"])
    assert r.status_code == 200, (r.status_code, r.text)
    return d


# ------------------------------------------------------------------ AUTH

def test_auth_password_file(apache, pki, redis, upstream, tmp_path):
    """ACL user + password from a file works; the password is nowhere in
    ps; a wrong password gives 503 + MDM14001, never 401."""
    ar = redistopo.AuthRedis(topo_dir(tmp_path, "authredis")).start()
    try:
        pw = redistopo.write_secret(str(tmp_path / "pw"), ar.user_password)
        srv = topo_server(tmp_path, "ok", pki, redis, upstream,
                          "MDMRedis 127.0.0.1:%d\nMDMRedisUser %s\n"
                          "MDMRedisPasswordFile %s" % (ar.port, ar.user, pw))
        srv.start()
        try:
            d = delivers(srv, pki)
            assert ar.client().exists("mdm:{%s}:rec" % d.udid)
            assert ar.user_password not in ps_args()
            assert ar.user_password not in "\n".join(srv.error_log_lines())
            # the ACL user did the writes
            log = ar.client().execute_command("ACL", "LOG")
            assert not log, log
        finally:
            srv.stop()
        assert not srv.bad_lines(), srv.bad_lines()

        bad = redistopo.write_secret(str(tmp_path / "badpw"), "not-the-pw")
        srv = topo_server(tmp_path, "bad", pki, redis, upstream,
                          "MDMRedis 127.0.0.1:%d\nMDMRedisUser %s\n"
                          "MDMRedisPasswordFile %s" % (ar.port, ar.user, bad))
        srv.start()
        try:
            mark = srv.log_mark()
            r = Device(srv, pki).authenticate()
            assert r.status_code == 503, (r.status_code, r.text)
            assert r.headers.get("Retry-After")
            lines = srv.wait_log_id("MDM14001", mark)
            assert len(lines) == 1, lines
            assert "not-the-pw" not in "\n".join(srv.error_log_lines())
            # in back-off: 503 at once, no new AUTH line
            r = Device(srv, pki).authenticate()
            assert r.status_code == 503
        finally:
            srv.stop()
    finally:
        ar.stop()


def test_auth_default_user_unix_socket(apache, pki, redis, upstream,
                                       tmp_path):
    """requirepass (AUTH password, no user) over a unix socket."""
    ar = redistopo.AuthRedis(topo_dir(tmp_path, "authredis")).start()
    try:
        pw = redistopo.write_secret(str(tmp_path / "pw"), ar.password)
        srv = topo_server(tmp_path, "unix", pki, redis, upstream,
                          "MDMRedis unix:%s\nMDMRedisPasswordFile %s" % (
                              ar.socket, pw))
        srv.start()
        try:
            d = delivers(srv, pki)
            assert ar.client().exists("mdm:{%s}:rec" % d.udid)
        finally:
            srv.stop()
        assert not srv.bad_lines(), srv.bad_lines()
    finally:
        ar.stop()


CONFIG_CASES = {
    # lines replacing MDMRedis: (expected error text, directive named)
    "two-topologies": ("MDMRedis 127.0.0.1:1\nMDMRedisSentinel m "
                       "127.0.0.1:2", "MDMRedisSentinel: cannot be used "
                       "with MDMRedis"),
    "missing-pw-file": ("MDMRedis 127.0.0.1:1\nMDMRedisPasswordFile "
                        "/nonexistent/pw", "MDMRedisPasswordFile: cannot "
                        "open"),
    "empty-pw-file": ("MDMRedis 127.0.0.1:1\nMDMRedisPasswordFile {EMPTY}",
                      "MDMRedisPasswordFile: \"{EMPTY}\" is empty"),
    "sentinel-no-addr": ("MDMRedisSentinel mymaster",
                         "MDMRedisSentinel: expected MASTER ADDR"),
    "sentinel-hostname": ("MDMRedisSentinel m localhost:26380",
                          "MDMRedisSentinel: \"localhost\" is not an IP"),
    "cluster-unix": ("MDMRedisCluster unix:/tmp/x.sock",
                     "MDMRedisCluster: a Cluster node needs IP:PORT"),
    "wait-bad": ("MDMRedis 127.0.0.1:1\nMDMRedisWait x 10",
                 "MDMRedisWait: expected REPLICAS"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_config_errors(case, apache, pki, redis, upstream, tmp_path):
    empty = str(tmp_path / "empty")
    open(empty, "w").close()
    lines, want = CONFIG_CASES[case]
    lines, want = lines.replace("{EMPTY}", empty), want.replace("{EMPTY}",
                                                                empty)
    srv = topo_server(tmp_path, case, pki, redis, upstream, lines)
    t = srv.test_config()
    assert t.returncode != 0, t.stderr
    assert want in t.stderr + t.stdout, t.stderr


def test_config_loose_password_file(apache, pki, redis, upstream, tmp_path):
    pw = redistopo.write_secret(str(tmp_path / "pw"), "x", mode=0o644)
    srv = topo_server(tmp_path, "loose", pki, redis, upstream,
                      "MDMRedis 127.0.0.1:%d\nMDMRedisPasswordFile %s" % (
                          redis.port, pw))
    t = srv.test_config()
    assert t.returncode == 0, t.stderr
    assert "MDM14002" in t.stderr + t.stdout, t.stderr


def test_wait_without_replicas(apache, pki, redis, upstream, tmp_path):
    """MDMRedisWait on a master without replicas: the writes are answered
    (they happened on the master), MDM14010 is logged once per process,
    not per write."""
    srv = topo_server(tmp_path, "w", pki, redis, upstream,
                      "MDMRedis 127.0.0.1:%d\nMDMRedisWait 1 50" % redis.port)
    srv.start()
    try:
        mark = srv.log_mark()
        delivers(srv, pki)
        lines = srv.wait_log_id("MDM14010", mark)
        # once per child process (the example runs 2), not per write
        assert 1 <= len(lines) <= srv.workers, lines
    finally:
        srv.stop()
    assert not srv.bad_lines(), srv.bad_lines()


# -------------------------------------------------------------- Sentinel

def test_sentinel_failover_under_load(apache, pki, redis, upstream,
                                      tmp_path):
    """Kill -9 the master under load: only 200 or 503 (+ Retry-After)
    meanwhile, never 401; requests succeed after the failover; commands
    enqueued (WAIT 1) before the kill are still delivered."""
    ss = redistopo.SentinelSet(topo_dir(tmp_path, "sentinel"),
                               password="itest-sentinel-pw").start()
    try:
        pw = redistopo.write_secret(str(tmp_path / "pw"), ss.password)
        srv = topo_server(tmp_path, "s", pki, redis, upstream,
                          "MDMRedisSentinel %s %s\nMDMRedisPasswordFile %s\n"
                          "MDMRedisWait 1 500" % (
                              ss.name, " ".join(ss.sentinel_addrs), pw))
        srv.start()
        try:
            mark = srv.log_mark()
            d = Device(srv, pki).enroll()
            srv.wait_log_id("MDM14005", mark)
            a = Admin(srv, pki)
            cmds = [command("DeviceInformation", Queries=["UDID"])
                    for _ in range(5)]
            for c in cmds:
                assert a.enqueue(d.udid, c, nopush=True).status_code == 200
            # load: a second device checks in over and over
            d2 = Device(srv, pki, ident="dev2").enroll()
            statuses = []
            stop = threading.Event()

            def load():
                while not stop.is_set():
                    try:
                        r = d2.idle()
                        statuses.append((time.time(), r.status_code,
                                         r.headers.get("Retry-After")))
                    except Exception as e:  # noqa: BLE001
                        statuses.append((time.time(), repr(e), None))
                    time.sleep(0.02)

            threads = [threading.Thread(target=load) for _ in range(2)]
            for t in threads:
                t.start()
            time.sleep(0.5)
            old = ss.master.port
            t_kill = time.time()
            ss.master.kill9()
            new = ss.wait_failover(old)
            t_failover = time.time()
            # requests succeed again soon after the failover
            end = time.time() + 10
            while time.time() < end:
                if any(s == 200 and t > t_failover + 0.2
                       for t, s, _ in statuses[-10:]):
                    break
                time.sleep(0.1)
            stop.set()
            for t in threads:
                t.join()
            codes = {s for _, s, _ in statuses}
            assert codes <= {200, 503}, codes
            assert all(ra for _, s, ra in statuses if s == 503)
            after = [s for t, s, _ in statuses if t > t_failover + 1.0]
            assert after and after[-1] == 200, statuses[-20:]
            n503 = sum(1 for _, s, _ in statuses if s == 503)
            print("failover: %d requests, %d x 503, master %d -> %d in "
                  "%.1fs" % (len(statuses), n503, old, new,
                             t_failover - t_kill))
            # the queue survived: every command comes, in order
            for c in cmds:
                r = d.idle()
                assert r.status_code == 200, (r.status_code, r.text)
                assert parse_command(r)["CommandUUID"] == c["CommandUUID"]
                assert d.ack(c["CommandUUID"]).status_code == 200
            assert d.idle().content == b""
            srv.wait_log_id("MDM14005", mark)
            lines = srv.error_log_lines(mark)
            assert any("MDM14005" in l and str(new) in l for l in lines)
        finally:
            srv.stop()
        assert not srv.bad_lines(), srv.bad_lines()
    finally:
        ss.stop()


# --------------------------------------------------------------- Cluster

def udid_on(cluster, node, taken):
    """A new UDID whose slot the given node serves."""
    while True:
        u = new_udid()
        if u not in taken and cluster.owner(cluster.slot(u)) is node:
            taken.add(u)
            return u


def test_cluster(apache, pki, redis, upstream, tmp_path):
    """Devices on all 3 masters; then a device's slot moves: ASK while it
    migrates, MOVED once it has."""
    cl = redistopo.Cluster(topo_dir(tmp_path, "cluster")).start()
    try:
        # one child: its (reused) link has the old map when the slot
        # moves, so MOVED is met and logged
        srv = topo_server(tmp_path, "c", pki, redis, upstream,
                          "MDMRedisCluster %s" % " ".join(cl.addrs[:2]),
                          workers=1)
        srv.start()
        try:
            taken = set()
            devs = []
            for node, ident in zip(cl.nodes, ("dev1", "dev2", "devec")):
                u = udid_on(cl, node, taken)
                devs.append(delivers(srv, pki, ident=ident, udid=u))
                assert node.client().exists("mdm:{%s}:rec" % u)
            d = devs[0]
            slot = cl.slot(d.udid)
            # half-moved: its keys on the next master, the owner answers
            # ASK: single-key reads follow it; a script over keys of which
            # some have moved gets TRYAGAIN from Redis: 503 + Retry-After
            mark = srv.log_mark()
            cl.start_migration(slot, cl.nodes[1])
            a = Admin(srv, pki)
            r = a.enrollment(d.udid)
            assert r.status_code == 200, (r.status_code, r.text)
            r = d.idle()
            assert r.status_code in (200, 503), (r.status_code, r.text)
            if r.status_code == 503:
                assert r.headers.get("Retry-After")
            assert not srv.bad_lines(mark)
            # then moved for good: MOVED
            mark = srv.log_mark()
            cl.finish_migration(slot, cl.nodes[1])
            assert cl.nodes[1].client().exists("mdm:{%s}:rec" % d.udid)
            a = Admin(srv, pki)
            c = command("DeviceInformation", Queries=["UDID"])
            assert a.enqueue(d.udid, c, nopush=True).status_code == 200
            r = d.idle()
            assert r.status_code == 200, (r.status_code, r.text)
            assert parse_command(r)["CommandUUID"] == c["CommandUUID"]
            assert d.ack(c["CommandUUID"]).status_code == 200
            srv.wait_log_id("MDM14009", mark)
            # the others still work
            for x in devs[1:]:
                assert x.idle().status_code == 200
        finally:
            srv.stop()
        assert not srv.bad_lines(), srv.bad_lines()
    finally:
        cl.stop()
