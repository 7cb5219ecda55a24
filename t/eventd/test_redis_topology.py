"""mdm-eventd over Redis topologies (README "Running several nodes"): a
3-master Cluster (the stream read on its master, the status hashes on
theirs) and Sentinel with AUTH across a failover. Real redis-server and
redis-sentinel on loopback (t/lib/redistopo.py)."""

import redistopo
from conftest import PREFIX, checkin
from redis.cluster import ClusterNode, RedisCluster

UDID = "0000FE00-ABCDEF0123456789"


def test_eventd_cluster(tmp_path, receiver, make_eventd):
    cl = redistopo.Cluster(str(tmp_path / "cluster")).start()
    try:
        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port)
                                         for n in cl.nodes],
                          decode_responses=True)
        d = make_eventd([("hook", receiver.url, {})],
                        redis_cluster=" ".join(cl.addrs))
        del d.opts["redis"]
        d.write_conf()
        d.start(wait=False)
        assert d.wait_log("MDM12123"), d.text()
        sids = [checkin(rc, UDID, "Authenticate"),
                checkin(rc, UDID, "TokenUpdate")]
        assert receiver.wait(lambda r: len(r.events()) == 2), d.text()
        assert [s for s, _ in receiver.events()] == sids
        # the status hash lives in its own slot, maybe on another master
        key = PREFIX + "eventd:hook"
        assert cl.owner(cl.slot(key)) is not None
        ok = receiver.wait(lambda r: rc.hget(key, "delivered") == "2",
                           timeout=10)
        assert ok, (rc.hgetall(key), d.text())
        assert rc.sismember(PREFIX + "eventd", "hook")
        assert "MDM12121" not in d.text(), d.text()
    finally:
        cl.stop()


def test_eventd_sentinel_failover(tmp_path, receiver, make_eventd):
    ss = redistopo.SentinelSet(str(tmp_path / "sentinel"),
                               password="itest-eventd-pw-7").start()
    try:
        pw = redistopo.write_secret(str(tmp_path / "pw"), ss.password)
        d = make_eventd([("hook", receiver.url, {})],
                        redis_sentinel="%s %s" % (
                            ss.name, " ".join(ss.sentinel_addrs)),
                        redis_password_file=pw)
        del d.opts["redis"]
        d.write_conf()
        d.start(wait=False)
        assert d.wait_log("MDM12123"), d.text()
        checkin(ss.master.client(decode_responses=True), UDID)
        assert receiver.wait(lambda r: len(r.events()) == 1), d.text()
        old = ss.master.port
        ss.master.kill9()
        new = ss.wait_failover(old)
        nm = ss.node_on(new).client(decode_responses=True)
        checkin(nm, UDID, "TokenUpdate")
        assert receiver.wait(lambda r: len(r.events()) == 2, timeout=20), \
            d.text()
        assert ss.password not in d.text()
    finally:
        ss.stop()
