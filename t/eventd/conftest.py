"""Fixtures of the mdm-eventd suite: a private redis-server, webhook
receivers (plain and TLS, with a test CA made with python3-cryptography),
and mdm-eventd itself.

Everything listens on free 127.0.0.1 ports and is stopped by PID.
"""

import datetime
import hashlib
import hmac
import ipaddress
import os
import sys
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# the shared helpers, also when another suite loads this file
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from mdmtest import (TOP, Daemon, build_bin, free_port,  # noqa: E402,F401
                     make_ca, redis_fixtures, wait_for)
from receiver import Receiver  # noqa: E402

PREFIX = "mdm:"
SECRET = b"test-secret-0123456789abcdef"


def eventd_bin():
    return build_bin("eventd", "mdm-eventd")


# ----------------------------------------------------------------- PKI

class Pki:
    """A test CA and a server certificate for 127.0.0.1 / localhost."""

    def __init__(self, d):
        now = datetime.datetime.now(datetime.timezone.utc)
        self.ca_key, self.ca, self.ca_file = make_ca(d, "mdm-eventd test CA")
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(
                    NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(self.ca.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                    critical=False)
                .add_extension(x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(self.ca_key, hashes.SHA256()))
        self.server_cert = os.path.join(d, "server.pem")
        self.server_key = os.path.join(d, "server.key")
        with open(self.server_cert, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(self.server_key, "wb") as f:
            f.write(key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return Pki(str(tmp_path_factory.mktemp("pki")))


# --------------------------------------------------------------- Redis

redis_server, rc = redis_fixtures(client_timeout=10)


# ------------------------------------------------------------ receivers

@pytest.fixture
def make_receiver(pki):
    made = []

    def make(tls=False, start=True):
        r = Receiver(free_port(), pki.server_cert if tls else None,
                     pki.server_key if tls else None)
        made.append(r)
        if start:
            r.start()
        return r

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def receiver(make_receiver):
    return make_receiver()


# --------------------------------------------------------------- daemon

def secret_file(d, secret=SECRET, mode=0o600, name="secret"):
    p = os.path.join(d, name)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, secret + b"\n")
    os.close(fd)
    os.chmod(p, mode)
    return p


class Eventd(Daemon):
    def __init__(self, d, redis_server, endpoints, **opts):
        super().__init__(d, "eventd.conf", "eventd.log")
        self.secret = secret_file(d)
        self.opts = {
            "redis": redis_server.addr,
            "prefix": PREFIX,
            "consumer": "test-1",
            "retry_base_ms": "50",
            "retry_max_ms": "400",
            "status_interval_ms": "100",
            "drain_ms": "5000",
        }
        self.opts.update({k: str(v) for k, v in opts.items()})
        self.endpoints = endpoints
        self.write_conf()

    def write_conf(self):
        with open(self.conf, "w") as f:
            for k, v in self.opts.items():
                f.write("%s %s\n" % (k, v))
            for name, url, extra in self.endpoints:
                line = "endpoint %s %s" % (name, url)
                if "secret" not in extra:
                    line += " secret " + self.secret
                for k, v in extra.items():
                    line += " %s %s" % (k, v)
                f.write(line + "\n")

    def start(self, wait=True, env=None):
        self.spawn(eventd_bin(), env)
        if wait:
            assert self.wait_log("Redis %s" % self.opts["redis"]), \
                self.text()
        return self

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


@pytest.fixture
def make_eventd(tmp_path, redis_server):
    made = []

    def make(endpoints, name="d", **opts):
        d = tmp_path / name
        d.mkdir(exist_ok=True)
        e = Eventd(str(d), redis_server, endpoints, **opts)
        made.append(e)
        return e

    yield make
    for e in made:
        e.stop_clean()


# -------------------------------------------------------------- helpers

def xadd(rc, fields):
    """An event as the web servers and mdm-pushd write it (capped)."""
    return rc.xadd(PREFIX + "events", fields, maxlen=100000,
                   approximate=True)


def checkin(rc, eid, mtype="Authenticate", cert="ab" * 32):
    f = {"kind": "checkin", "id": eid, "type": mtype}
    if mtype == "DeclarativeManagement":
        f["endpoint"] = "status"
    f["cert"] = cert
    return xadd(rc, f)


def report(rc, eid, uuid, status="Acknowledged",
           request_type="DeviceInformation"):
    return xadd(rc, {"kind": "report", "id": eid, "status": status,
                     "uuid": uuid, "request_type": request_type,
                     "cert": "cd" * 32})


def push_event(rc, eid, result="ok"):
    return xadd(rc, {"kind": "push", "id": eid, "result": result,
                     "http": "200", "reason": "", "topic":
                     "com.apple.mgmt.External.test", "attempts": "1",
                     "requests": "1", "apns_id": "A-1"})


def verify(req, secret=SECRET, window=300):
    """What a receiver does: HMAC-SHA256(secret, ts "." raw body), compared
    in constant time, and the timestamp within the replay window."""
    ts = req["headers"]["x-mdm-timestamp"]
    sig = req["headers"]["x-mdm-signature"]
    mac = hmac.new(secret, ts.encode() + b"." + req["body"],
                   hashlib.sha256).hexdigest()
    return (hmac.compare_digest(sig, "sha256=" + mac) and
            abs(time.time() - int(ts)) <= window)


def sid_key(s):
    ms, _, seq = s.partition("-")
    return (int(ms), int(seq or 0))
