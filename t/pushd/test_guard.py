"""The topic guard of mdm-pushd: a certificate file recorded in Redis as
serving one topic is refused at the next start when it carries another
(MDM09114), however the file changed while the daemon was stopped."""

import os
import signal

from conftest import PREFIX, enroll, push, rec_key, wait_for
from test_pushd import outcome, topic_status

GUARD = PREFIX + "pushd-topics"


def swap(pki, name, cert, key, topic=None, days=365):
    """Put a new certificate (and key) of topic (None: a new topic) in
    place of cert and key; returns its topic."""
    t, c, k = pki.push_cert(name, topic=topic, days=days)
    os.replace(c, cert)
    os.replace(k, key)
    return t


def test_swapped_certificate_refused_across_restart(rc, standin, pki,
                                                    make_pushd,
                                                    redis_server):
    topic, cert, key = pki.push_cert("guard-a")
    enroll(rc, "DEV-G", topic)
    d = make_pushd(certs=[[cert, "key", key]]).start()
    assert d.wait_log("MDM09113")
    push(rc, "DEV-G")
    assert outcome(rc, "DEV-G", "ok")
    assert rc.hget(GUARD, cert) == topic
    g = rc.hgetall(PREFIX + "pushd-topic:" + topic)
    assert g["cert_file"] == cert and len(g["spki_sha256"]) == 64
    assert d.stop() == 0
    # while it is stopped, the file becomes a certificate of another topic
    other = swap(pki, "guard-b", cert, key)
    rc.hdel(rec_key("DEV-G"), "push_result")
    n = len(standin.requests)
    d.start()
    assert d.wait_log("MDM09114")
    t = d.text()
    assert "REFUSED push certificate %s" % cert in t
    assert other in t and topic in t and "HDEL " + GUARD in t
    # the guard keeps the recorded topic; the status says refused
    assert rc.hget(GUARD, cert) == topic
    _, s = wait_for(lambda: topic_status(redis_server, other)[1] and
                    topic_status(redis_server, other)[1].get("guard") ==
                    "refused" and topic_status(redis_server, other))
    assert s["state"] == "refused" and s["guard_topic"] == topic
    assert "topic guard" in s["refused"]
    # the devices of the recorded topic are not pushed with it
    push(rc, "DEV-G")
    r = outcome(rc, "DEV-G", "failed")
    assert r["push_reason"] == "no-cert-for-topic"
    enroll(rc, "DEV-U", other)
    push(rc, "DEV-U")
    assert outcome(rc, "DEV-U", "failed")["push_reason"] == "cert-refused"
    assert len(standin.requests) == n
    # SIGHUP with another certificate of the wrong topic: still refused
    swap(pki, "guard-c", cert, key)
    d.signal(signal.SIGHUP)
    assert d.wait_log("MDM09104")
    # the renewed certificate of the recorded topic put back: in use
    swap(pki, "guard-a2", cert, key, topic=topic, days=400)
    d.signal(signal.SIGHUP)
    assert d.wait_log("MDM09105")
    rc.hdel(rec_key("DEV-G"), "push_result")
    push(rc, "DEV-G")
    assert outcome(rc, "DEV-G", "ok")
    assert standin.requests[-1]["uid"] == topic
    _, s = wait_for(lambda: topic_status(redis_server, topic)[1] and
                    topic_status(redis_server, topic)[1].get("guard") ==
                    "ok" and topic_status(redis_server, topic))
    assert s["state"] == "ok"


def test_renewed_certificate_accepted_across_restart(rc, standin, pki,
                                                     make_pushd):
    topic, cert, key = pki.push_cert("renew-a")
    enroll(rc, "DEV-R", topic)
    d = make_pushd(certs=[[cert, "key", key]]).start()
    push(rc, "DEV-R")
    assert outcome(rc, "DEV-R", "ok")
    first = standin.requests[-1]["serial"]
    spki = rc.hget(PREFIX + "pushd-topic:" + topic, "spki_sha256")
    assert d.stop() == 0
    swap(pki, "renew-b", cert, key, topic=topic, days=400)
    rc.hdel(rec_key("DEV-R"), "push_result")
    d.start()
    push(rc, "DEV-R")
    assert outcome(rc, "DEV-R", "ok")
    assert standin.requests[-1]["uid"] == topic
    assert standin.requests[-1]["serial"] != first
    t = d.text()
    assert "MDM09114" not in t
    # recorded once (first start), the record now names the new key
    assert t.count("MDM09113") == 1
    assert wait_for(lambda: rc.hget(PREFIX + "pushd-topic:" + topic,
                                    "spki_sha256") not in (None, spki))
    assert rc.hget(GUARD, cert) == topic


def test_no_guard_accepts_and_records(rc, standin, pki, make_pushd):
    topic, cert, key = pki.push_cert("flush-a")
    d = make_pushd(certs=[[cert, "key", key]]).start()
    assert wait_for(lambda: rc.hget(GUARD, cert) == topic)
    assert d.stop() == 0
    other = swap(pki, "flush-b", cert, key)
    rc.flushall()
    enroll(rc, "DEV-F", other)
    d.start()
    push(rc, "DEV-F")
    assert outcome(rc, "DEV-F", "ok")
    assert standin.requests[-1]["uid"] == other
    assert "MDM09114" not in d.text()
    assert d.text().count("MDM09113") == 2
    assert rc.hget(GUARD, cert) == other
