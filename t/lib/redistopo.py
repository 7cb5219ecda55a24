"""Redis topologies for tests, on loopback only (README "Running several
nodes"): a Redis behind a password and an ACL user, a master + replica +
3 sentinels, a 3-master Cluster. Debian's redis-server, redis-sentinel
and redis-cli; free 127.0.0.1 ports (never 6379/26379); every process is
stopped by PID.
"""

import os
import random
import signal
import socket
import subprocess
import time

import redis as redislib

_given = set()


def free_port(bus=False):
    """A free 127.0.0.1 port in 20000-21999 (and port + 10000 for a
    Cluster bus when bus is set)."""
    for _ in range(400):
        port = random.randrange(20000, 22000)
        if port in _given:
            continue
        ok = True
        for p in ([port, port + 10000] if bus else [port]):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            _given.add(port)
            return port
    raise RuntimeError("no free port")


def wait_ping(client, timeout=10.0, proc=None):
    end = time.time() + timeout
    while True:
        try:
            if client.ping():
                return
        except (redislib.exceptions.ConnectionError,
                redislib.exceptions.BusyLoadingError):
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("redis exited with %s" % proc.returncode)
        if time.time() > end:
            raise RuntimeError("redis not ready")
        time.sleep(0.05)


def write_secret(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, mode)
    return path


class Node:
    """One redis-server (or redis-sentinel) from a config file in d."""

    def __init__(self, d, port=None, lines=(), sentinel=False,
                 password=None, bus=False):
        self.dir = d
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        self.port = port or free_port(bus=bus)
        self.socket = os.path.join(d, "redis.sock")
        self.password = password
        self.sentinel = sentinel
        self.conf = os.path.join(d, "redis.conf")
        base = ["port %d" % self.port, "bind 127.0.0.1",
                "dir %s" % d, "daemonize no",
                "logfile %s" % os.path.join(d, "redis.log")]
        if not sentinel:
            base += ["unixsocket %s" % self.socket, "unixsocketperm 777",
                     "save \"\""]
        with open(self.conf, "w") as f:
            f.write("\n".join(base + list(lines)) + "\n")
        self.proc = None

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        binary = "redis-sentinel" if self.sentinel else "redis-server"
        self.proc = subprocess.Popen([binary, self.conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_ping(self.client(), 10, self.proc)
        return self

    def client(self, **kw):
        return redislib.Redis(host="127.0.0.1", port=self.port,
                              password=self.password, socket_timeout=5,
                              **kw)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if not self.running:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""


class AuthRedis:
    """A redis-server with `requirepass` (the default user's password) and
    an ACL user `user` with its own password."""

    def __init__(self, d, password="itest-default-pw-4711",
                 user="mdm", user_password="itest-user-pw-0815"):
        self.password = password
        self.user = user
        self.user_password = user_password
        self.node = Node(d, lines=["requirepass %s" % password,
                                   "appendonly no"], password=password)

    def start(self):
        self.node.start()
        self.node.client().execute_command(
            "ACL", "SETUSER", self.user, "on", ">" + self.user_password,
            "~*", "&*", "+@all")
        return self

    def stop(self):
        self.node.stop()

    @property
    def port(self):
        return self.node.port

    @property
    def socket(self):
        return self.node.socket

    def client(self):
        return self.node.client()


class SentinelSet:
    """A master, one replica and 3 sentinels (quorum 2, down after 1 s)."""

    def __init__(self, d, name="mdmtest", password=None, aof=True):
        self.name = name
        self.password = password
        auth = []
        if password:
            auth = ["requirepass %s" % password, "masterauth %s" % password]
        durable = (["appendonly yes", "appendfsync everysec"] if aof
                   else ["appendonly no"])
        self.master = Node(os.path.join(d, "m"), lines=auth + durable,
                           password=password)
        self.replica = Node(os.path.join(d, "r"),
                            lines=auth + durable +
                            ["replicaof 127.0.0.1 %d" % self.master.port],
                            password=password)
        self.sentinels = []
        for i in range(3):
            lines = ["sentinel monitor %s 127.0.0.1 %d 2" %
                     (name, self.master.port),
                     "sentinel down-after-milliseconds %s 1000" % name,
                     "sentinel failover-timeout %s 4000" % name,
                     "sentinel parallel-syncs %s 1" % name]
            if password:
                lines.append("sentinel auth-pass %s %s" % (name, password))
            self.sentinels.append(Node(os.path.join(d, "s%d" % i),
                                       lines=lines, sentinel=True))

    @property
    def sentinel_addrs(self):
        return [s.addr for s in self.sentinels]

    def start(self):
        self.master.start()
        self.replica.start()
        end = time.time() + 10
        while self.replica.client().info("replication").get(
                "master_link_status") != "up":
            if time.time() > end:
                raise RuntimeError("replica not in sync")
            time.sleep(0.05)
        for s in self.sentinels:
            s.start()
        # every sentinel sees the replica and the other sentinels
        end = time.time() + 15
        while True:
            ok = True
            for s in self.sentinels:
                m = s.client().execute_command("SENTINEL", "MASTER",
                                               self.name)
                m = dict(zip(m[::2], m[1::2]))
                if int(m.get(b"num-other-sentinels", 0)) < 2 or \
                        int(m.get(b"num-slaves", 0)) < 1:
                    ok = False
            if ok:
                return self
            if time.time() > end:
                raise RuntimeError("sentinels did not discover each other")
            time.sleep(0.1)

    def master_port(self):
        for s in self.sentinels:
            try:
                a = s.client().execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
                if a:
                    return int(a[1])
            except redislib.exceptions.ConnectionError:
                continue
        return None

    def node_on(self, port):
        return self.master if self.master.port == port else self.replica

    def wait_failover(self, old_port, timeout=20.0):
        """Until the sentinels name another master and it says master."""
        end = time.time() + timeout
        while time.time() < end:
            p = self.master_port()
            if p and p != old_port:
                try:
                    role = self.node_on(p).client().execute_command("ROLE")
                    if role[0] == b"master":
                        return p
                except redislib.exceptions.ConnectionError:
                    pass
            time.sleep(0.1)
        raise RuntimeError("no failover within %ss" % timeout)

    def stop(self):
        for n in self.sentinels + [self.replica, self.master]:
            n.stop()


class Cluster:
    """n masters (no replicas), made with redis-cli --cluster create."""

    def __init__(self, d, n=3):
        self.nodes = [
            Node(os.path.join(d, "c%d" % i), bus=True,
                 lines=["cluster-enabled yes",
                        "cluster-config-file nodes.conf",
                        "cluster-node-timeout 2000", "appendonly no"])
            for i in range(n)]

    @property
    def addrs(self):
        return [n.addr for n in self.nodes]

    def start(self):
        for n in self.nodes:
            n.start()
        subprocess.run(["redis-cli", "--cluster", "create"] + self.addrs +
                       ["--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        end = time.time() + 20
        while True:
            states = [n.client().execute_command("CLUSTER", "INFO")
                      for n in self.nodes]
            if all(b"cluster_state:ok" in s for s in states):
                return self
            if time.time() > end:
                raise RuntimeError("cluster not ok")
            time.sleep(0.1)

    def slot(self, key):
        return int(self.nodes[0].client().execute_command(
            "CLUSTER", "KEYSLOT", key))

    def owner(self, slot):
        """The Node serving slot."""
        for lo, hi, master, *_ in self.nodes[0].client().execute_command(
                "CLUSTER", "SLOTS"):
            if lo <= slot <= hi:
                port = int(master[1])
                return [n for n in self.nodes if n.port == port][0]
        return None

    def node_id(self, node):
        return node.client().execute_command("CLUSTER", "MYID").decode()

    def move_slot(self, slot, to):
        """Move one slot (and its keys) to node `to`, the way
        redis-cli --cluster reshard does it."""
        if self.owner(slot) is to:
            return
        self.start_migration(slot, to)
        self.finish_migration(slot, to)

    def start_migration(self, slot, to):
        """The slot half-moved: MIGRATING on its owner, IMPORTING on `to`,
        its keys moved; the owner answers ASK for them until
        finish_migration()."""
        src = self.owner(slot)
        sid, did = self.node_id(src), self.node_id(to)
        to.client().execute_command("CLUSTER", "SETSLOT", slot,
                                    "IMPORTING", sid)
        src.client().execute_command("CLUSTER", "SETSLOT", slot,
                                     "MIGRATING", did)
        while True:
            keys = src.client().execute_command(
                "CLUSTER", "GETKEYSINSLOT", slot, 100)
            if not keys:
                break
            src.client().execute_command(
                "MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS",
                *keys)

    def finish_migration(self, slot, to):
        did = self.node_id(to)
        for n in self.nodes:
            n.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE",
                                       did)
        end = time.time() + 10
        while self.owner(slot) is not to and time.time() < end:
            time.sleep(0.05)

    def stop(self):
        for n in self.nodes:
            n.stop()
