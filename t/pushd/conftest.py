"""Fixtures of the mdm-pushd suite: a test PKI (CA, stand-in server
certificate, MDM push certificates with Subject UID topics), a private
redis-server, the APNs stand-in, and mdm-pushd itself.

Everything listens on free 127.0.0.1 ports and is stopped by PID.
"""

import datetime
import os
import subprocess
import sys
import uuid

import pytest
import redis as redislib
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# the shared helpers, also when another suite loads this file
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from apns_standin import Standin  # noqa: E402
from mdmtest import (TOP, Daemon, RedisServer, build_bin,  # noqa: E402,F401
                     free_port, make_ca, redis_fixtures, wait_for)

PREFIX = "mdm:"


def pushd_bin():
    return build_bin("pushd", "mdm-pushd")


def mdmctl_bin():
    return build_bin("tools", "mdmctl")


# ----------------------------------------------------------------- PKI

class Pki:
    """Test CA, stand-in server certificate, push certificates."""

    def __init__(self, d):
        self.dir = d
        self.ca_key, self.ca, self.ca_file = make_ca(d, "mdm-pushd test CA")
        self.server_cert, self.server_key = self._issue(
            "server", x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                    "localhost")]),
            server=True)

    def _issue(self, name, subject, server=False, days=365, start_days=-1,
               rsa_key=True):
        now = datetime.datetime.now(datetime.timezone.utc)
        key = (rsa.generate_private_key(public_exponent=65537, key_size=2048)
               if rsa_key else ec.generate_private_key(ec.SECP256R1()))
        b = (x509.CertificateBuilder().subject_name(subject)
             .issuer_name(self.ca.subject).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now + datetime.timedelta(days=start_days))
             .not_valid_after(now + datetime.timedelta(days=days)))
        if server:
            import ipaddress
            b = b.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            b = b.add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            b = b.add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        cert = b.sign(self.ca_key, hashes.SHA256())
        cpath = os.path.join(self.dir, name + ".pem")
        kpath = os.path.join(self.dir, name + ".key")
        with open(cpath, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(kpath, "wb") as f:
            f.write(key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption()))
        self.last = (cert, key)
        return cpath, kpath

    def push_cert(self, name, topic=None, days=365, start_days=-1,
                  combined=False):
        """An MDM push certificate like Apple's: Subject UID=<topic>,
        CN=APSP:<uuid>, C=US; clientAuth. Returns (topic, cert, key);
        with combined the key is appended to the certificate file."""
        u = str(uuid.uuid4())
        if topic is None:
            topic = "com.apple.mgmt.External." + u
        subject = x509.Name([
            x509.NameAttribute(NameOID.USER_ID, topic),
            x509.NameAttribute(NameOID.COMMON_NAME, "APSP:" + u),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US")])
        c, k = self._issue(name, subject, days=days, start_days=start_days)
        if combined:
            with open(k, "rb") as f:
                kb = f.read()
            with open(c, "ab") as f:
                f.write(kb)
            return topic, c, None
        return topic, c, k

    def p12(self, name, topic=None, password=b"s3cret-pass"):
        topic, c, k = self.push_cert(name, topic)
        cert, key = self.last
        data = pkcs12.serialize_key_and_certificates(
            name.encode(), key, cert, None,
            serialization.BestAvailableEncryption(password))
        p = os.path.join(self.dir, name + ".p12")
        with open(p, "wb") as f:
            f.write(data)
        pf = os.path.join(self.dir, name + ".pass")
        with open(pf, "wb") as f:
            f.write(password + b"\n")
        return topic, p, pf


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return Pki(str(tmp_path_factory.mktemp("pki")))


# --------------------------------------------------------------- Redis

redis_server, rc = redis_fixtures(client_timeout=5)


# ------------------------------------------------------------- stand-in

@pytest.fixture
def standin(pki):
    s = Standin(pki.server_cert, pki.server_key, pki.ca_file, free_port())
    s.start()
    yield s
    s.stop()


# --------------------------------------------------------------- daemon

class Pushd(Daemon):
    def __init__(self, d, redis_server, standin, pki, certs, **opts):
        super().__init__(d, "pushd.conf", "pushd.log")
        self.opts = {
            "redis": redis_server.addr,
            "prefix": PREFIX,
            "consumer": "test-1",
            "endpoint": "https://127.0.0.1:%d" % standin.port,
            "ca_file": pki.ca_file,
            "retry_base_ms": "50",
            "retry_max_ms": "400",
            "claim_idle_ms": "60000",
            "status_interval_ms": "100",
            "drain_ms": "5000",
        }
        self.opts.update({k: str(v) for k, v in opts.items()})
        self.certs = certs
        self.write_conf()

    def write_conf(self):
        with open(self.conf, "w") as f:
            for k, v in self.opts.items():
                f.write("%s %s\n" % (k, v))
            for c in self.certs:
                f.write("cert %s\n" % " ".join(c))

    def start(self, wait=True):
        self.spawn(pushd_bin())
        if wait:
            assert self.wait_log("MDM09123"), self.text()
        return self


@pytest.fixture
def topic_cert(pki):
    return pki.push_cert("push-main")


@pytest.fixture
def make_pushd(tmp_path, redis_server, standin, pki, topic_cert):
    made = []

    def make(certs=None, name="d", **opts):
        d = tmp_path / name
        d.mkdir(exist_ok=True)
        if certs is None:
            _, c, k = topic_cert
            certs = [[c, "key", k]]
        p = Pushd(str(d), redis_server, standin, pki, certs, **opts)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop_clean()


# -------------------------------------------------------------- helpers

def rec_key(eid):
    d, _, rest = eid.partition(":")
    return "%s{%s}%s:rec" % (PREFIX, d, ":" + rest if rest else "")


def enroll(rc, eid, topic, token=None, magic=None):
    """An enrollment record as TokenUpdate leaves it (KEYS.md)."""
    token = token or os.urandom(32).hex()
    magic = magic or str(uuid.uuid4()).upper()
    rc.hset(rec_key(eid), mapping={
        "type": "Device", "topic": topic, "token": token, "magic": magic,
        "enabled": "1", "first": "1", "last": "1"})
    return token, magic


def push(rc, eid):
    """A push request exactly as the core's admin "push" writes it."""
    return rc.xadd(PREFIX + "push", {"id": eid}, maxlen=100000,
                   approximate=True)


def mdmctl(redis_server, *args):
    return subprocess.run([mdmctl_bin(), "--redis", redis_server.addr,
                           "--prefix", PREFIX] + list(args),
                          capture_output=True, text=True, timeout=20)


def pending(rc, group="mdm-pushd"):
    try:
        return rc.xpending(PREFIX + "push", group)["pending"]
    except redislib.exceptions.ResponseError:
        return None
