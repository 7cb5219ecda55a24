"""mdm-pushd and mdmctl over Redis topologies (README "Running several
nodes"): Sentinel with AUTH, a master killed under them, and mdmctl on a
3-master Cluster. Real redis-server/redis-sentinel on loopback
(t/lib/redistopo.py)."""

import os
import plistlib
import subprocess
import time
import uuid

import pytest
import redis as redislib
from redis.cluster import ClusterNode, RedisCluster

import redistopo
from conftest import PREFIX, enroll, mdmctl_bin, pushd_bin, rec_key, wait_for


def ctl(topo_args, *args):
    return subprocess.run([mdmctl_bin()] + topo_args + ["--prefix", PREFIX] +
                          list(args), capture_output=True, text=True,
                          timeout=30)


def ps_args():
    return subprocess.run(["ps", "-eo", "args"], capture_output=True,
                          text=True).stdout


def sentinel_args(ss, pw):
    return ["--redis-sentinel", ",".join([ss.name] + ss.sentinel_addrs),
            "--redis-password-file", pw]


def test_pushd_and_mdmctl_sentinel_failover(tmp_path, standin, make_pushd,
                                            topic_cert):
    ss = redistopo.SentinelSet(str(tmp_path / "sentinel"),
                               password="itest-pushd-pw-42").start()
    try:
        pw = redistopo.write_secret(str(tmp_path / "pw"), ss.password)
        topic = topic_cert[0]
        d = make_pushd(redis_sentinel="%s %s" % (
            ss.name, " ".join(ss.sentinel_addrs)), redis_password_file=pw)
        del d.opts["redis"]
        d.write_conf()
        d.start()
        assert d.wait_log("MDM14005"), d.text()
        assert ss.password not in ps_args()
        master = ss.master.client(decode_responses=True)
        udid = str(uuid.uuid4()).upper()
        enroll(master, udid, topic)
        p = ctl(sentinel_args(ss, pw), "push", udid)
        assert p.returncode == 0, p.stderr
        assert standin.wait(lambda s: len(s.requests) == 1)

        old = ss.master.port
        ss.master.kill9()
        new = ss.wait_failover(old)
        nm = ss.node_on(new).client(decode_responses=True)
        udid2 = str(uuid.uuid4()).upper()
        enroll(nm, udid2, topic)
        # mdmctl finds the new master through the sentinels
        p = wait_for(lambda: (lambda r: r if r.returncode == 0 else None)(
            ctl(sentinel_args(ss, pw), "push", udid2)), 15)
        assert p, "mdmctl push after the failover failed"
        # and the daemon reconnects to it and sends the push
        assert standin.wait(lambda s: len(s.requests) == 2, timeout=20), \
            d.text()
        rec = wait_for(lambda: nm.hgetall(rec_key(udid2)).get(
            "push_result"), 10)
        assert rec == "ok"
        assert d.wait_log("MDM14005", count=2), d.text()
        assert ss.password not in d.text()
    finally:
        ss.stop()


def test_pushd_auth_refused(tmp_path, make_pushd):
    ar = redistopo.AuthRedis(str(tmp_path / "auth")).start()
    try:
        bad = redistopo.write_secret(str(tmp_path / "bad"), "wrong-pw")
        d = make_pushd(redis="127.0.0.1:%d" % ar.port, redis_user=ar.user,
                       redis_password_file=bad)
        d.start(wait=False)
        assert d.wait_log("MDM14001"), d.text()
        assert "wrong-pw" not in d.text()
        good = redistopo.write_secret(str(tmp_path / "good"),
                                      ar.user_password)
        p = ctl(["--redis", "127.0.0.1:%d" % ar.port, "--redis-user",
                 ar.user, "--redis-password-file", good], "push", "X1")
        assert p.returncode == 0, p.stderr
        p = ctl(["--redis", "127.0.0.1:%d" % ar.port, "--redis-user",
                 ar.user, "--redis-password-file", bad], "push", "X1")
        assert p.returncode == 2 and "MDM14001" in p.stderr, p.stderr
    finally:
        ar.stop()


@pytest.mark.parametrize("lines,want", [
    (["redis_sentinel m 127.0.0.1:1"],
     "redis_sentinel: cannot be used with redis"),
    (["redis_password_file /nonexistent"], "redis_password_file: cannot open"),
    (["redis_cluster 127.0.0.1:1"], "redis_cluster: cannot be used with"),
    (["redis_cluster localhost:1"], "redis_cluster: cannot be used with"),
    (["#"], "redis_cluster: \"localhost\" is not an IP"),
    (["redis_user"], "redis_user: expected one value"),
])
def test_pushd_config_errors(tmp_path, make_pushd, lines, want):
    d = make_pushd()
    if lines == ["#"]:  # no redis line: the Cluster option alone
        del d.opts["redis"]
        d.write_conf()
        lines = ["redis_cluster 127.0.0.1:1 localhost:2"]
    with open(d.conf, "a") as f:
        f.write("\n".join(lines) + "\n")
    t = subprocess.run([pushd_bin(), "-c", d.conf, "-t"],
                       capture_output=True, text=True, timeout=20)
    open(d.log, "a").close()  # never started: an empty log
    assert t.returncode != 0
    assert want in t.stderr + t.stdout, t.stderr


def test_mdmctl_cluster(tmp_path):
    cl = redistopo.Cluster(str(tmp_path / "cluster")).start()
    try:
        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port)
                                         for n in cl.nodes],
                          decode_responses=True)
        ids = []
        owners = set()
        while len(owners) < 3:
            u = str(uuid.uuid4()).upper()
            o = cl.owner(cl.slot(u)).port
            if o not in owners:
                owners.add(o)
                ids.append(u)
                enroll(rc, u, "com.apple.mgmt.External.x")
        args = ["--redis-cluster", ",".join(cl.addrs[:1])]
        cmd = tmp_path / "cmd.plist"
        cuuid = str(uuid.uuid4()).upper()
        with open(cmd, "wb") as f:
            plistlib.dump({"CommandUUID": cuuid, "Command": {
                "RequestType": "DeviceInformation", "Queries": ["UDID"]}}, f)
        p = ctl(args, "enqueue", ",".join(ids), str(cmd))
        assert p.returncode == 0, p.stdout + p.stderr
        for u in ids:
            q = ctl(args, "queue", u)
            assert q.returncode == 0, q.stderr
            assert cuuid in q.stdout
            assert rc.lrange("%s{%s}:q" % (PREFIX, u), 0, -1) == [cuuid]
        # the push requests went to the stream's node
        assert rc.xlen(PREFIX + "push") == 3
        # a slot moved: MOVED is followed
        slot = cl.slot(ids[0])
        cl.move_slot(slot, [n for n in cl.nodes
                            if n is not cl.owner(slot)][0])
        q = ctl(args, "queue", ids[0])
        assert q.returncode == 0 and cuuid in q.stdout, q.stderr
        p = ctl(args, "push", "status")
        assert p.returncode == 0, p.stderr
    finally:
        cl.stop()


def test_pushd_cluster(tmp_path, standin, make_pushd, topic_cert):
    """mdm-pushd on a 3-master Cluster: the stream read on its master,
    each record's lookup and outcome on the record's master."""
    cl = redistopo.Cluster(str(tmp_path / "cluster")).start()
    try:
        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port)
                                         for n in cl.nodes],
                          decode_responses=True)
        topic = topic_cert[0]
        d = make_pushd(redis_cluster=" ".join(cl.addrs[1:]))
        del d.opts["redis"]
        d.write_conf()
        d.start()
        ids, owners = [], set()
        while len(owners) < 3:
            u = str(uuid.uuid4()).upper()
            o = cl.owner(cl.slot(u)).port
            if o not in owners:
                owners.add(o)
                ids.append(u)
                enroll(rc, u, topic)
        p = ctl(["--redis-cluster", cl.addrs[0]], "push", ",".join(ids))
        assert p.returncode == 0, p.stdout + p.stderr
        assert standin.wait(lambda s: len(s.requests) == 3), d.text()
        for u in ids:
            assert wait_for(lambda: rc.hget(rec_key(u), "push_result") ==
                            "ok", 10), (u, rc.hgetall(rec_key(u)), d.text())
        # the outcomes' events reached the events stream
        assert wait_for(lambda: rc.xlen(PREFIX + "events") >= 3, 10)
        # a record's slot moves: its next outcome follows MOVED
        slot = cl.slot(ids[0])
        cl.move_slot(slot, [n for n in cl.nodes
                            if n is not cl.owner(slot)][0])
        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port)
                                         for n in cl.nodes],
                          decode_responses=True)
        rc.hdel(rec_key(ids[0]), "push_result")
        p = ctl(["--redis-cluster", cl.addrs[0]], "push", ids[0])
        assert p.returncode == 0, p.stderr
        assert standin.wait(lambda s: len(s.requests) == 4), d.text()
        assert wait_for(lambda: rc.hget(rec_key(ids[0]), "push_result") ==
                        "ok", 10), d.text()
        assert "MDM09121" not in d.text(), d.text()
        # the daemon's link had the old map: it met MOVED and followed it
        assert "MDM14009" in d.text(), d.text()
    finally:
        cl.stop()
