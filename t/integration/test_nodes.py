"""Several web nodes on one Redis: two nginx and one Apache, all with the
MDM module, share the session's redis-server. One device talks to them in
turn and the admin API of every node is used: the nodes hold no state of
their own, so commands are delivered exactly once and in order whichever
node queued them or serves the device, and every node answers the same.

The session's server is one of the three nodes (the other two are
started for the test), so the test runs once per `server` param with the
same topology: nginx, nginx, Apache.
"""

import faultload
from mdmdevice import Admin, Device, command, parse_command


def three_nodes(server, extra_node):
    if server.name == "nginx":
        return [server, extra_node("nginx"), extra_node("apache")]
    return [extra_node("nginx"), extra_node("nginx"), server]


def test_nodes_share_one_redis(server, pki, redis, extra_node):
    nodes = three_nodes(server, extra_node)
    admins = [Admin(n, pki) for n in nodes]
    d = Device(server, pki)
    turn = [0]

    def on_next(fn, *a, **kw):
        """fn on the next node in turn (round-robin over the three)."""
        node = nodes[turn[0] % len(nodes)]
        turn[0] += 1
        d.base_url = node.base_url
        r = fn(*a, **kw)
        assert r.status_code == 200, (node.name, node.port, r.status_code,
                                      r.text[:300])
        return r

    on_next(d.authenticate)
    on_next(d.token_update)

    # N commands queued through the admin API of each node in turn
    n = 12
    queued = []
    for i in range(n):
        c = command("DeviceInformation", Queries=["UDID", "Seq%d" % i])
        r = admins[i % 3].enqueue(d.udid, c, nopush=True)
        assert r.status_code == 200, (i, r.status_code, r.text)
        queued.append(c["CommandUUID"])
    # the same queue, in order, from every node
    for a in admins:
        got = [x["uuid"] for x in a.queue(d.udid).json()["commands"]]
        assert got == queued, (a.server.name, a.server.port)

    # the device drains it, each request to the next node: Idle, then
    # Acknowledged (whose answer is the next command), more queued midway
    delivered = []
    cmd = parse_command(on_next(d.idle))
    more = []
    while cmd is not None:
        uuid = cmd["CommandUUID"]
        delivered.append(uuid)
        if len(delivered) == n // 2:
            for i in range(3):
                c = command("ProfileList")
                assert admins[(i + 1) % 3].enqueue(
                    d.udid, c, nopush=True).status_code == 200
                more.append(c["CommandUUID"])
        cmd = parse_command(on_next(d.ack, uuid, QueryResponses={
            "UDID": d.udid}))
    # exactly once, in the order queued
    assert delivered == queued + more
    assert len(set(delivered)) == len(delivered)
    # an Idle on every node: nothing left
    for _ in nodes:
        assert on_next(d.idle).content == b""

    # results readable from the admin API of any node, the same
    for uuid in delivered:
        res = [a.result(d.udid, uuid) for a in admins]
        assert all(r.status_code == 200 for r in res), \
            [(r.status_code, r.text) for r in res]
        assert res[0].json() == res[1].json() == res[2].json()
        assert res[0].json()["status"] == "Acknowledged"
    # the enrollment and its queue look the same everywhere
    recs = [a.enrollment(d.udid).json() for a in admins]
    assert recs[0] == recs[1] == recs[2]
    assert recs[0]["record"]["enabled"] == "1"
    for a in admins:
        assert a.queue(d.udid).json()["commands"] == []
    q, problems = faultload.queue_state(redis.client(), d.udid)
    assert q == [] and not problems, problems
    # every node served its share of the device's requests
    for node in nodes:
        served = [l for l in node.access_log_lines()
                  if "id=" + d.udid in l and "/mdm/" in l]
        assert len(served) >= turn[0] // 3 - 1, (node.name, len(served))
