"""ngx_mdm behind Redis AUTH, Sentinel and Cluster (README "Running several
nodes"): real redis-server / redis-sentinel processes on free 127.0.0.1
ports, started and stopped by PID here (own fixtures: this file does not
depend on t/lib/redistopo.py). nginx only: the Apache half has its own
file (test_redis_topology_apache.py)."""

import concurrent.futures
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import redis as redislib

from conftest import NginxServer, free_port, open_parents, wait_port
from mdmdevice import Admin, Device, command, new_udid, parse_command

PASSWORD = "s3cret-Topo-7f1d9a"
USER = "mdmapp"
USER_PASSWORD = "u-pw-Topo-42c0b1"


@pytest.fixture(autouse=True)
def nginx_only(server):
    if server.name != "nginx":
        pytest.skip("nginx side (the Apache side: "
                    "test_redis_topology_apache.py)")


# ------------------------------------------------------------ processes

class Proc:
    """A redis-server or redis-sentinel from a config file in its own dir
    (the password is in the file, never in argv)."""

    def __init__(self, d, conf, sentinel=False, port=None, unix=None,
                 pick=None):
        self.dir = d
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        self.unix = unix
        self.conf = os.path.join(d, "sentinel.conf" if sentinel else
                                 "redis.conf")
        # a port taken meanwhile by another process: try another one
        for attempt in range(4):
            self.port = port or (pick or free_port)()
            lines = ["port %d" % self.port, "bind 127.0.0.1",
                     "dir %s" % d, "daemonize no",
                     "logfile %s" % os.path.join(d, "log")]
            if not sentinel:
                lines += ["save \"\""]
            if unix:
                lines += ["unixsocket %s" % unix, "unixsocketperm 777"]
            with open(self.conf, "w") as f:
                f.write("\n".join(lines + conf) + "\n")
            os.chmod(self.conf, 0o600)
            argv = ["redis-sentinel" if sentinel else "redis-server",
                    self.conf]
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            try:
                wait_port(self.port, 10, self.proc)
                return
            except RuntimeError:
                self.kill9()
                if port or attempt == 3:
                    raise

    def client(self, password=None):
        return redislib.Redis(host="127.0.0.1", port=self.port,
                              password=password, socket_timeout=5,
                              decode_responses=True)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def kill9(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()


def cluster_port():
    """A free port whose cluster bus port (+10000) is free too and below
    the ephemeral range (outgoing connections cannot take it)."""
    while True:
        p = free_port()
        if p + 10000 >= 32768:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p + 10000))
            return p
        except OSError:
            continue
        finally:
            s.close()


class TopoNginx(NginxServer):
    """The suite's nginx, its "mdm_redis ADDR;" replaced by redis_conf."""

    def __init__(self, run, pki, redis, upstream, redis_conf, workers=2):
        self.redis_conf = redis_conf
        os.makedirs(run, exist_ok=True)
        open_parents(run, os.path.dirname(os.path.dirname(run)))
        super().__init__(run, pki, redis, upstream, workers=workers)

    def adjust(self, name, text, run):
        text = super().adjust(name, text, run)
        if name == "nginx.conf":
            old = "mdm_redis %s;" % self.redis_addr
            assert old in text, "nginx.conf has no %r" % old
            text = text.replace(old, self.redis_conf)
        return text


def password_file(d, pw, name="redis.pw"):
    p = os.path.join(str(d), name)
    with open(p, "w") as f:
        f.write(pw + "\n")
    os.chmod(p, 0o600)
    return p


def mdm_ids(srv, mark, mdm_id):
    return [l for l in srv.error_log_lines(mark) if mdm_id in l]


def enqueue_deliver(srv, pki, devices):
    """One enqueue to all devices (one plan over their slots), each device
    fetches it, acknowledges it, and the admin API reads the result."""
    admin = Admin(srv, pki)
    c = command("DeviceInformation", Queries=["UDID"])
    r = admin.enqueue([d.udid for d in devices], c, nopush=True)
    assert r.status_code == 200, (r.status_code, r.text)
    for d in devices:
        r = d.idle()
        assert r.status_code == 200, (r.status_code, r.text)
        got = parse_command(r)
        assert got and got["CommandUUID"] == c["CommandUUID"], got
        r = d.ack(c["CommandUUID"], QueryResponses={"UDID": d.udid})
        assert r.status_code == 200, (r.status_code, r.text)
        r = admin.result(d.udid, c["CommandUUID"])
        assert r.status_code == 200, (r.status_code, r.text)
        assert admin.queue(d.udid).json()["commands"] == []
    return c


# ----------------------------------------------------------------- AUTH

def test_auth_password_file_and_unix_socket(server, pki, redis, upstream,
                                            tmp_path):
    """ACL user + password from a file over TCP; requirepass over a unix
    socket; a wrong password: 503 + Retry-After and one MDM14001 line;
    the password never in argv (ps) nor in the logs."""
    sock = os.path.join(str(tmp_path), "r.sock")
    rd = Proc(str(tmp_path / "redis"), [
        "requirepass %s" % PASSWORD,
        "user %s on >%s ~* &* +@all" % (USER, USER_PASSWORD),
        "appendonly no"], unix=sock)
    good_user = password_file(tmp_path, USER_PASSWORD, "user.pw")
    good = password_file(tmp_path, PASSWORD, "good.pw")
    bad = password_file(tmp_path, "not-the-password", "bad.pw")
    servers = {
        "user": TopoNginx(str(tmp_path / "n-user"), pki, redis, upstream,
                          "mdm_redis %s;\n    mdm_redis_user %s;\n"
                          "    mdm_redis_password_file %s;" % (
                              rd.addr, USER, good_user)),
        "unix": TopoNginx(str(tmp_path / "n-unix"), pki, redis, upstream,
                          "mdm_redis unix:%s;\n"
                          "    mdm_redis_password_file %s;" % (sock, good)),
        "bad": TopoNginx(str(tmp_path / "n-bad"), pki, redis, upstream,
                         "mdm_redis %s;\n    mdm_redis_password_file %s;"
                         % (rd.addr, bad), workers=1),
    }
    try:
        for s in servers.values():
            s.start()
        for name in ("user", "unix"):
            s = servers[name]
            d = Device(s, pki).enroll()
            enqueue_deliver(s, pki, [d])
            assert rd.client(PASSWORD).exists("mdm:{%s}:rec" % d.udid)
            rd.client(PASSWORD).flushall()  # frees the device identity
        s = servers["bad"]
        mark = s.log_mark()
        for i in range(4):
            t = time.time()
            r = Admin(s, pki).queue("AUTH-TEST-0001")
            assert r.status_code == 503, (r.status_code, r.text)
            assert r.headers.get("Retry-After", "").isdigit()
            assert time.time() - t < s.redis_timeout + 1
            time.sleep(0.15 * i)
        lines = mdm_ids(s, mark, "MDM14001")
        assert len(lines) == 1, lines
        assert "WRONGPASS" in lines[0] or "invalid" in lines[0], lines
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True,
                            text=True).stdout
        for pw in (PASSWORD, USER_PASSWORD, "not-the-password"):
            assert pw not in ps
            for srv in servers.values():
                assert not any(pw in l for l in srv.error_log_lines())
    finally:
        for s in servers.values():
            s.stop()
        rd.stop()
    for s in servers.values():
        assert not s.bad_lines(), s.bad_lines()


def test_config_errors(server, pki, redis, upstream, tmp_path):
    """nginx -t names the directive at fault."""
    empty = password_file(tmp_path, "", "empty.pw")
    good = password_file(tmp_path, PASSWORD, "good.pw")
    loose = password_file(tmp_path, PASSWORD, "loose.pw")
    os.chmod(loose, 0o644)
    r = "127.0.0.1:%d" % redis.port
    cases = [
        ("mdm_redis %s;\n    mdm_redis_cluster 127.0.0.1:1;" % r,
         '"mdm_redis_cluster" and "mdm_redis" are mutually exclusive'),
        ("mdm_redis_sentinel m 127.0.0.1:1;\n    mdm_redis %s;" % r,
         '"mdm_redis" and "mdm_redis_sentinel" are mutually exclusive'),
        ("mdm_redis %s;\n    mdm_redis_password_file %s;" % (
            r, os.path.join(str(tmp_path), "missing.pw")),
         '"mdm_redis_password_file": cannot open'),
        ("mdm_redis %s;\n    mdm_redis_password_file %s;" % (r, empty),
         '"mdm_redis_password_file": "%s" is empty' % empty),
        ("mdm_redis %s;\n    mdm_redis_user u;" % r,
         '"mdm_redis_user" needs "mdm_redis_password_file"'),
        ("mdm_redis_sentinel m redis.example:26379;",
         '"mdm_redis_sentinel": "redis.example" is not an IP address'),
        ("mdm_redis_sentinel 127.0.0.1:26379 127.0.0.1:26380;",
         '"mdm_redis_sentinel": the first argument is the master'),
        ("mdm_redis_sentinel m;", 'invalid number of arguments in '
         '"mdm_redis_sentinel"'),
        ("mdm_redis_cluster 127.0.0.1:0;",
         '"mdm_redis_cluster": invalid port'),
        ("mdm_redis %s;\n    mdm_redis_wait 0 100;" % r,
         '"mdm_redis_wait": expected N'),
        ("mdm_redis_wait 1 100;", '"mdm_redis_wait" needs "mdm_redis"'),
        ("", 'MDM handlers need "mdm_redis"'),
    ]
    for i, (conf, want) in enumerate(cases):
        s = TopoNginx(str(tmp_path / ("t%d" % i)), pki, redis, upstream,
                      conf)
        t = s.test_config()
        assert t.returncode != 0 and want in t.stderr, (conf, t.stderr)
    s = TopoNginx(str(tmp_path / "ok"), pki, redis, upstream,
                  "mdm_redis_cluster 127.0.0.1:7000 [::1]:7001;\n"
                  "    mdm_redis_password_file %s;" % loose)
    t = s.test_config()
    assert t.returncode == 0, t.stderr
    assert "MDM14002" in t.stderr and "can be read by group" in t.stderr
    s = TopoNginx(str(tmp_path / "ok2"), pki, redis, upstream,
                  "mdm_redis_sentinel mymaster 127.0.0.1:26379 "
                  "unix:/run/s.sock;\n    mdm_redis_user u;\n"
                  "    mdm_redis_password_file %s;\n"
                  "    mdm_redis_wait 1 200;" % good)
    t = s.test_config()
    assert t.returncode == 0, t.stderr


# ------------------------------------------------------------- Sentinel

def wait_until(fn, timeout, what):
    end = time.time() + timeout
    while True:
        try:
            v = fn()
            if v:
                return v
        except (redislib.exceptions.RedisError, OSError):
            pass
        if time.time() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


def queued_uuids(admin, udid):
    r = admin.queue(udid)
    assert r.status_code == 200, (r.status_code, r.text)
    out = set()
    for c in r.json()["commands"]:
        out.add(c["uuid"] if isinstance(c, dict) else c)
    return out


def test_sentinel_failover_under_load(server, pki, redis, upstream,
                                      tmp_path):
    """master + replica + 3 sentinels (quorum 2); the master is SIGKILLed
    under load: only 200 and 503 during the window, then 200 from the
    promoted replica; every enqueue answered 200 (WAIT 1 after writes,
    appendonly yes) is still queued after the failover."""
    base = ["requirepass %s" % PASSWORD, "masterauth %s" % PASSWORD,
            "appendonly yes", "appendfsync everysec"]
    master = Proc(str(tmp_path / "master"), base)
    replica = Proc(str(tmp_path / "replica"),
                   base + ["replicaof 127.0.0.1 %d" % master.port])
    sentinels = [Proc(str(tmp_path / ("s%d" % i)), [
        "sentinel monitor mm 127.0.0.1 %d 2" % master.port,
        "sentinel down-after-milliseconds mm 1000",
        "sentinel failover-timeout mm 4000",
        "sentinel auth-pass mm %s" % PASSWORD], sentinel=True)
        for i in range(3)]
    srv = None
    procs = [master, replica] + sentinels
    try:
        wait_until(lambda: replica.client(PASSWORD).info("replication")
                   ["master_link_status"] == "up", 10, "replication")
        for s in sentinels:
            wait_until(lambda: len(s.client().execute_command(
                "SENTINEL", "REPLICAS", "mm")) == 1 and
                s.client().execute_command("SENTINEL", "CKQUORUM", "mm"),
                15, "sentinel %s ready" % s.addr)
        pw = password_file(tmp_path, PASSWORD)
        # the first sentinel listed is down: the next one answers
        dead = "127.0.0.1:%d" % free_port()
        srv = TopoNginx(str(tmp_path / "nginx"), pki, redis, upstream,
                        "mdm_redis_sentinel mm %s %s;\n"
                        "    mdm_redis_password_file %s;\n"
                        "    mdm_redis_wait 1 200;" % (
                            dead, " ".join(s.addr for s in sentinels), pw))
        srv.start()
        mark = srv.log_mark()
        devices = [Device(srv, pki, ident=i) for i in ("dev1", "dev2")]
        for d in devices:
            r, _ = wait_until(lambda: (lambda r: (r, 0) if
                                       r.status_code == 200 else None)(
                d.authenticate()), 5, "first 200")
            assert d.token_update().status_code == 200
        admin = Admin(srv, pki)
        acked = {d.udid: set() for d in devices}
        statuses = []
        stop = threading.Event()
        lock = threading.Lock()

        def load(d):
            a = Admin(srv, pki)
            while not stop.is_set():
                c = command("ProfileList")
                try:
                    r = a.enqueue(d.udid, c, nopush=True)
                    st = r.status_code
                except Exception as e:  # noqa: B902 (any client error)
                    st = repr(e)
                r2 = d.idle() if st == 200 else None
                with lock:
                    statuses.append((time.time(), st))
                    if st == 200:
                        acked[d.udid].add(c["CommandUUID"])
                    if r2 is not None:
                        statuses.append((time.time(), r2.status_code))
                    if r2 is not None and r2.status_code == 200:
                        got = parse_command(r2)
                        if got:
                            # leave it queued: NotNow keeps it
                            d.notnow(got["CommandUUID"])
                time.sleep(0.01)

        ex = concurrent.futures.ThreadPoolExecutor(4)
        futs = [ex.submit(load, d) for d in devices * 2]
        try:
            time.sleep(1.0)
            killed = time.time()
            master.kill9()
            new = wait_until(lambda: sentinels[0].client().execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mm")[1] ==
                str(replica.port), 20, "failover")
            assert new
            promoted = time.time()
            # and the server finds the new master
            wait_until(lambda: any(st == 200 for t, st in statuses
                                   if t > promoted + 0.2), 15,
                       "200 after the failover")
            time.sleep(max(1.0, promoted + 7.5 - time.time()))
        finally:
            stop.set()
            ex.shutdown(wait=True)
        for f in futs:
            f.result(30)
        bad = [(round(t - killed, 2), st) for t, st in statuses
               if st not in (200, 503)]
        assert not bad, bad
        window = [st for t, st in statuses if t > killed]
        assert 503 in window or 200 in window
        # a worker tries again within the back-off (at most 5 s)
        after = [st for t, st in statuses if t > promoted + 5.5]
        assert after and all(st == 200 for st in after), after[:20]
        # nothing answered 200 was lost
        for d in devices:
            have = queued_uuids(admin, d.udid)
            lost = acked[d.udid] - have
            assert not lost, (len(lost), len(acked[d.udid]))
        assert mdm_ids(srv, mark, "MDM14005"), "no new master logged"
        # WAIT is in use: the promoted master has no replica left
        assert mdm_ids(srv, mark, "MDM14010"), "no WAIT shortfall logged"
        n503 = sum(1 for t, st in statuses if st == 503)
        print("sentinel failover: %d requests, %d x 503, %d acked "
              "enqueues, window %.1fs" % (
                  len(statuses), n503, sum(map(len, acked.values())),
                  promoted - killed))
    finally:
        if srv:
            srv.stop()
        for p in procs:
            p.stop()
    bad = srv.bad_lines() if srv else []
    assert not bad, bad


# -------------------------------------------------------------- Cluster

def cluster_slots(node):
    """slot ranges -> port of their master."""
    out = []
    for lo, hi, master, *rest in node.client(PASSWORD).execute_command(
            "CLUSTER", "SLOTS"):
        out.append((int(lo), int(hi), int(master[1])))
    return out


def owner_port(node, udid):
    slot = node.client(PASSWORD).execute_command("CLUSTER", "KEYSLOT",
                                         "{%s}" % udid)
    for lo, hi, port in cluster_slots(node):
        if lo <= slot <= hi:
            return slot, port
    raise AssertionError("slot %d has no owner" % slot)


def test_cluster(server, pki, redis, upstream, tmp_path):
    """3 masters behind AUTH: devices on different masters (one admin enqueue spans
    them), enqueue/deliver/results; then one device's slot moves to
    another master: ASK while it migrates, MOVED once it has moved."""
    nodes = [Proc(str(tmp_path / ("c%d" % i)), [
        "cluster-enabled yes", "cluster-config-file nodes.conf",
        "cluster-node-timeout 2000", "appendonly no",
        "requirepass %s" % PASSWORD, "masterauth %s" % PASSWORD],
        pick=cluster_port)
        for i in range(3)]
    srv = None
    try:
        subprocess.run(["redis-cli", "--cluster", "create"] +
                       [n.addr for n in nodes] +
                       ["--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=30,
                       env=dict(os.environ, REDISCLI_AUTH=PASSWORD))
        for n in nodes:
            wait_until(lambda: n.client(PASSWORD).execute_command(
                "CLUSTER", "INFO").startswith("cluster_state:ok") and
                len(cluster_slots(n)) == 3, 15, "cluster ok")
        ports = {n.port: n for n in nodes}
        # one device per master
        want = {}
        while len(want) < 3:
            u = new_udid()
            slot, port = owner_port(nodes[0], u)
            want.setdefault(port, (u, slot))
        dead = "127.0.0.1:%d" % free_port()
        srv = TopoNginx(str(tmp_path / "nginx"), pki, redis, upstream,
                        "mdm_redis_cluster %s %s;\n"
                        "    mdm_redis_password_file %s;" % (
                            dead, nodes[1].addr,
                            password_file(tmp_path, PASSWORD)))
        srv.start()
        mark = srv.log_mark()
        devices = []
        for ident, (port, (u, slot)) in zip(("dev1", "dev2", "devec"),
                                            sorted(want.items())):
            d = Device(srv, pki, udid=u, ident=ident)
            r, _ = wait_until(lambda: (lambda r: (r, 0) if
                                       r.status_code == 200 else None)(
                d.authenticate()), 5, "first 200")
            assert d.token_update().status_code == 200
            assert ports[port].client(PASSWORD).exists("mdm:{%s}:rec" % u)
            devices.append((d, port, slot))
        enqueue_deliver(srv, pki, [d for d, _, _ in devices])

        # move the first device's slot to the next master
        d, src_port, slot = devices[0]
        src = ports[src_port]
        dst = ports[devices[1][1]]
        sid = src.client(PASSWORD).execute_command("CLUSTER", "MYID")
        did = dst.client(PASSWORD).execute_command("CLUSTER", "MYID")
        dst.client(PASSWORD).execute_command("CLUSTER", "SETSLOT", slot,
                                     "IMPORTING", sid)
        src.client(PASSWORD).execute_command("CLUSTER", "SETSLOT", slot,
                                     "MIGRATING", did)
        keys = src.client(PASSWORD).execute_command("CLUSTER", "GETKEYSINSLOT",
                                            slot, 1000)
        assert keys
        src.client(PASSWORD).execute_command("MIGRATE", "127.0.0.1", dst.port, "",
                                     0, 5000, "AUTH", PASSWORD, "KEYS",
                                     *keys)
        # migrating: the source answers ASK; single-key commands follow
        # it (ASKING), a script whose keys are partly missing gets
        # TRYAGAIN from the importing node: 503, the client comes back
        admin = Admin(srv, pki)
        for _ in range(4):  # both workers
            r = admin.queue(d.udid)
            assert r.status_code == 200, (r.status_code, r.text)
            assert r.json()["commands"] == []
        r = admin.enqueue(d.udid, command("ProfileList"), nopush=True)
        assert r.status_code in (200, 503), (r.status_code, r.text)
        c1 = command("ProfileList")
        for n in nodes:
            n.client(PASSWORD).execute_command("CLUSTER", "SETSLOT", slot, "NODE",
                                       did)
        # moved: the source answers MOVED, the map is refreshed
        dst.client(PASSWORD).delete("mdm:{%s}:q" % d.udid)
        c2 = command("SecurityInfo")
        for c in (c1, c2):
            r = admin.enqueue(d.udid, c, nopush=True)
            assert r.status_code == 200, (r.status_code, r.text)
        for c in (c1, c2):
            r = d.idle()
            assert r.status_code == 200, (r.status_code, r.text)
            assert parse_command(r)["CommandUUID"] == c["CommandUUID"]
            assert d.ack(c["CommandUUID"]).status_code == 200
        assert dst.client(PASSWORD).llen("mdm:{%s}:q" % d.udid) == 0
        assert src.client(PASSWORD).execute_command("CLUSTER", "COUNTKEYSINSLOT",
                                            slot) == 0
        assert mdm_ids(srv, mark, "MDM14009"), "no MOVED logged"
        # and all devices still work, across both workers
        enqueue_deliver(srv, pki, [dd for dd, _, _ in devices])
    finally:
        if srv:
            srv.stop()
        for n in nodes:
            n.stop()
    bad = srv.bad_lines() if srv else []
    assert not bad, bad


def test_sentinel_names_a_replica(server, pki, redis, upstream, tmp_path):
    """The master the sentinel names has become a replica (roles swapped
    by hand, the sentinel not told yet): writes get READONLY (MDM14006),
    the worker asks again, ROLE says slave (MDM14004): 503 + Retry-After,
    never 401; once the roles are back, 200 again."""
    base = ["requirepass %s" % PASSWORD, "masterauth %s" % PASSWORD,
            "appendonly no"]
    a = Proc(str(tmp_path / "a"), base)
    b = Proc(str(tmp_path / "b"), base + ["replicaof 127.0.0.1 %d" % a.port])
    s = Proc(str(tmp_path / "s"), [
        "sentinel monitor mm 127.0.0.1 %d 1" % a.port,
        "sentinel down-after-milliseconds mm 30000",
        "sentinel auth-pass mm %s" % PASSWORD], sentinel=True)
    srv = None
    try:
        wait_until(lambda: b.client(PASSWORD).info("replication")
                   ["master_link_status"] == "up", 10, "replication")
        srv = TopoNginx(str(tmp_path / "nginx"), pki, redis, upstream,
                        "mdm_redis_sentinel mm %s;\n"
                        "    mdm_redis_password_file %s;" % (
                            s.addr, password_file(tmp_path, PASSWORD)),
                        workers=1)
        srv.start()
        d = Device(srv, pki)
        wait_until(lambda: d.authenticate().status_code == 200, 5,
                   "first 200")
        assert d.token_update().status_code == 200
        mark = srv.log_mark()
        b.client(PASSWORD).execute_command("REPLICAOF", "NO", "ONE")
        a.client(PASSWORD).execute_command("REPLICAOF", "127.0.0.1",
                                           str(b.port))
        got = []
        for _ in range(8):
            r = d.token_update()
            got.append(r.status_code)
            if r.status_code == 503:
                assert r.headers.get("Retry-After", "").isdigit()
            time.sleep(0.1)
        assert set(got) <= {200, 503} and 503 in got, got
        wait_until(lambda: mdm_ids(srv, mark, "MDM14004"), 5, "MDM14004")
        assert mdm_ids(srv, mark, "MDM14006") or \
            mdm_ids(srv, mark, "MDM04004"), srv.error_log_lines(mark)
        a.client(PASSWORD).execute_command("REPLICAOF", "NO", "ONE")
        b.client(PASSWORD).execute_command("REPLICAOF", "127.0.0.1",
                                           str(a.port))
        # back within the back-off (at most 5 s)
        wait_until(lambda: d.token_update().status_code == 200, 8,
                   "200 again")
        assert d.idle().status_code == 200
    finally:
        if srv:
            srv.stop()
        for p in (s, b, a):
            p.stop()
    bad = srv.bad_lines() if srv else []
    assert not bad, bad
