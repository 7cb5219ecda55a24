"""Pushes end to end, against both servers: a device checks in through the
web server, the admin enqueues through the web server's admin API, and
mdm-pushd (reading the push stream the module wrote) delivers the push to
the python3-h2 APNs stand-in of t/pushd; a 410 marks the token dead until
the device's next TokenUpdate."""

import importlib.util
import os
import sys
import time

import pytest

from conftest import TOPICS, build_dir
from mdmdevice import Admin, Device, command

PUSHD_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "pushd")
sys.path.insert(0, PUSHD_DIR)
# t/pushd/conftest.py under another name (this suite has its own conftest)
_spec = importlib.util.spec_from_file_location(
    "pushd_fixtures", os.path.join(PUSHD_DIR, "conftest.py"))
pushd_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pushd_fixtures)

PUSHD = os.path.join(build_dir(), "pushd", "mdm-pushd")
pytestmark = pytest.mark.skipif(not os.path.exists(PUSHD),
                                reason="mdm-pushd is not built")


class RedisAddr:
    def __init__(self, redis):
        self.addr = "127.0.0.1:%d" % redis.port


@pytest.fixture
def apns(tmp_path, redis):
    """The stand-in, a push certificate for the servers' first topic and
    a running mdm-pushd; yields (standin, daemon)."""
    d = str(tmp_path / "push")
    os.makedirs(d)
    ppki = pushd_fixtures.Pki(d)
    topic, cert, key = ppki.push_cert("push", topic=TOPICS[0])
    standin = pushd_fixtures.Standin(ppki.server_cert, ppki.server_key,
                                     ppki.ca_file,
                                     pushd_fixtures.free_port())
    standin.start()
    daemon = pushd_fixtures.Pushd(d, RedisAddr(redis), standin, ppki,
                                  [[cert, "key", key]])
    daemon.start()
    yield standin, daemon
    daemon.stop()
    standin.stop()
    t = daemon.text()
    assert "AddressSanitizer" not in t and "runtime error:" not in t, t


def record(server, pki, udid):
    return Admin(server, pki).enrollment(udid).json()["record"]


def wait_for(cond, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_enqueue_pushes(server, pki, redis, apns):
    standin, daemon = apns
    d = Device(server, pki).enroll()
    token = d.token.hex()
    r = Admin(server, pki).enqueue(d.udid, command("DeviceInformation"))
    assert r.status_code == 200 and r.json()["pushed"] is True, r.text
    assert standin.wait(lambda s: s.for_token(token)), daemon.text()
    p = standin.for_token(token)[0]
    assert p["method"] == "POST"
    assert p["path"] == "/3/device/" + token
    assert p["headers"]["apns-topic"] == TOPICS[0]
    assert p["headers"]["apns-push-type"] == "mdm"
    assert p["body"] == ('{"mdm":"%s"}' % d.magic).encode()
    assert wait_for(lambda: record(server, pki, d.udid).get("push_result")
                    == "ok")
    # the push request was acknowledged: nothing pending
    assert wait_for(lambda: redis.client().xpending(
        "mdm:push", "mdm-pushd")["pending"] == 0)
    # nopush queues without a push
    n = len(standin.for_token(token))
    assert Admin(server, pki).enqueue(d.udid, command("ProfileList"),
                                      nopush=True).status_code == 200
    time.sleep(0.5)
    assert len(standin.for_token(token)) == n


def test_unregistered_token(server, pki, redis, apns):
    standin, daemon = apns
    d = Device(server, pki).enroll()
    token = d.token.hex()
    standin.script[token] = [(410, "Unregistered")]
    admin = Admin(server, pki)
    assert admin.push(d.udid).status_code == 200
    assert wait_for(lambda: record(server, pki, d.udid).get("push_dead")), \
        daemon.text()
    # dead: later pushes are not sent
    assert admin.push(d.udid).status_code == 200
    assert wait_for(lambda: record(server, pki, d.udid).get("push_result")
                    == "skipped")
    assert len(standin.for_token(token)) == 1
    # the device's next TokenUpdate (through the web server) revives it
    assert d.token_update().status_code == 200
    assert "push_dead" not in record(server, pki, d.udid)
    assert admin.push(d.udid).status_code == 200
    assert standin.wait(lambda s: len(s.for_token(token)) == 2), \
        daemon.text()
