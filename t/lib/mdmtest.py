"""What the suites of the sidecar daemons (t/pushd, t/eventd) share: free
ports, waiting, a test CA, a private redis-server, a daemon process with
its log, and scraping a metrics_listen endpoint.

Their conftests import it; run.sh puts t/lib on PYTHONPATH.
"""

import datetime
import http.client
import os
import random
import re
import signal
import socket
import subprocess
import time

import pytest
import redis as redislib
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def build_dir():
    return os.environ.get("MDM_BUILD", os.path.join(TOP, "build"))


def build_bin(*path):
    return os.path.join(build_dir(), *path)


# ---------------------------------------------------------------- ports

_given = set()


def free_port():
    for _ in range(200):
        port = random.randrange(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        if port not in _given:
            _given.add(port)
            return port
    raise RuntimeError("no free port")


def wait_port(port, timeout=10.0, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d not listening" % port)


def wait_for(cond, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.03)
    return cond()


# ------------------------------------------------------------------ PKI

def make_ca(d, common_name):
    """A self-signed EC test CA valid for ten years, written to
    d/ca.pem: (key, certificate, file)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ca = (x509.CertificateBuilder().subject_name(name)
          .issuer_name(name).public_key(key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                         critical=True)
          .sign(key, hashes.SHA256()))
    path = os.path.join(d, "ca.pem")
    with open(path, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    return key, ca, path


# ---------------------------------------------------------------- Redis

def stop_proc(proc, timeout):
    """SIGTERM, then SIGKILL after timeout seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class RedisServer:
    def __init__(self, d, client_timeout=5):
        self.dir = d
        self.client_timeout = client_timeout
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", d, "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--logfile", os.path.join(d, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, 10, self.proc)
        self.addr = "127.0.0.1:%d" % self.port

    def client(self):
        return redislib.Redis(host="127.0.0.1", port=self.port,
                              socket_timeout=self.client_timeout,
                              decode_responses=True)

    def stop(self):
        stop_proc(self.proc, 10)


def redis_fixtures(client_timeout):
    """The session's redis_server and a flushed client rc, as fixtures
    for a conftest to bind."""

    @pytest.fixture(scope="session")
    def redis_server(tmp_path_factory):
        r = RedisServer(str(tmp_path_factory.mktemp("redis")),
                        client_timeout)
        yield r
        r.stop()

    @pytest.fixture
    def rc(redis_server):
        c = redis_server.client()
        c.flushall()
        return c

    return redis_server, rc


# --------------------------------------------------------------- daemon

class Daemon:
    """A daemon run as "BIN -c CONF -v" with its output in a log file;
    subclasses name the files and write the configuration."""

    def __init__(self, d, conf, log):
        self.dir = d
        self.conf = os.path.join(d, conf)
        self.log = os.path.join(d, log)
        self.proc = None
        self.logf = None

    def spawn(self, binary, env=None):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([binary, "-c", self.conf, "-v"],
                                     stdout=self.logf, stderr=self.logf,
                                     env=env)

    def text(self):
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_log(self, s, timeout=10.0, count=1):
        end = time.time() + timeout
        while time.time() < end:
            if self.text().count(s) >= count:
                return True
            if self.proc.poll() is not None:
                return self.text().count(s) >= count
            time.sleep(0.03)
        return False

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc is not None:
            stop_proc(self.proc, 15)
        if self.logf is not None:
            self.logf.close()
            self.logf = None
        return self.proc.returncode if self.proc else None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.logf.close()
        self.logf = None

    def stop_clean(self):
        """Stop; the daemon must never crash or trip a sanitizer."""
        self.stop()
        t = self.text()
        assert "AddressSanitizer" not in t and "runtime error:" not in t, t
        assert self.proc is None or self.proc.returncode in (0, -9), t


# -------------------------------------------------------------- metrics

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"')


def http_get(port, path="/metrics", method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, dict(r.getheaders()), body


def parse_metrics(text, prefix):
    """{(name, frozenset(labels)): value}, and the families' TYPE lines;
    every sample belongs to a family with # HELP and # TYPE, every family
    is named prefix..."""
    samples, types, helps = {}, {}, set()
    for ln in text.splitlines():
        if ln.startswith("# HELP "):
            helps.add(ln.split()[2])
        elif ln.startswith("# TYPE "):
            _, _, name, typ = ln.split()
            types[name] = typ
        else:
            m = SAMPLE.match(ln)
            assert m, ln
            name, labels, value = m.group(1), m.group(3), m.group(4)
            assert name in types and name in helps, ln
            lab = frozenset(LABEL.findall(labels or ""))
            assert (name, lab) not in samples, ln
            samples[(name, lab)] = float(value)
    for name, typ in types.items():
        assert typ in ("counter", "gauge"), name
        assert typ != "counter" or name.endswith("_total"), name
        assert name.startswith(prefix), name
    return samples, types


def scrape(port, prefix):
    st, headers, body = http_get(port)
    assert st == 200, body
    assert headers["Content-Type"] == "text/plain; version=0.0.4"
    assert int(headers["Content-Length"]) == len(body.encode())
    return parse_metrics(body, prefix)[0]


def val(s, name, **labels):
    return s.get((name, frozenset((k, str(v)) for k, v in labels.items())),
                 0.0)


def check_metrics_http(port, method="POST", junk=b"hello\r\n\r\n"):
    """What any metrics_listen does beyond GET /metrics: 404, 405, HEAD,
    400 for what is not HTTP, 431 for a head that never ends, idle
    clients that do not stop scrapes."""
    assert http_get(port, "/")[0] == 404
    assert http_get(port, "/metricsx")[0] == 404
    assert http_get(port, "/metrics/x")[0] == 404
    st, h, _ = http_get(port, "/metrics", method)
    assert st == 405 and "GET" in h["Allow"]
    st, h, body = http_get(port, "/metrics", "HEAD")
    assert st == 200 and body == "" and int(h["Content-Length"]) > 0
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.sendall(junk)
    assert s.recv(100).startswith(b"HTTP/1.1 400")
    s.close()
    # a request head that never ends is bounded
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.sendall(b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"a" * 5000)
    data = s.recv(100)
    assert data.startswith(b"HTTP/1.1 431"), data
    s.close()
    # clients that connect and say nothing do not stop scrapes, even more
    # of them than are served at once
    idle = [socket.create_connection(("127.0.0.1", port), 5)
            for _ in range(12)]
    time.sleep(0.2)
    for s in idle:
        s.close()
    assert wait_for(lambda: http_get(port)[0] == 200)


def check_metrics_listen_refused(run, log_id, port):
    """run(conf_line, check=True) runs the daemon (with -t when check) on
    a configuration holding conf_line: good metrics_listen values pass,
    bad ones are refused with log_id, a port in use at start."""
    for ok in ("metrics_listen 127.0.0.1:%d" % port,
               "metrics_listen [::1]:%d" % port, "metrics_listen off"):
        p = run(ok)
        assert p.returncode == 0, (ok, p.stderr)
    for bad in ("localhost:%d" % port, "metrics.example.com:%d" % port,
                "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                "127.0.0.1:99999", "127.0.0.1:x", "::1:%d" % port, "[::1]",
                "300.1.2.3:%d" % port, "1.2.3:80", ":%d" % port):
        p = run("metrics_listen " + bad)
        assert p.returncode == 1, (bad, p.stderr)
        assert log_id in p.stderr and "metrics_listen" in p.stderr, \
            (bad, p.stderr)
    # a port already taken: refused at start, naming the option
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        p = run("metrics_listen 127.0.0.1:%d" % s.getsockname()[1],
                check=False)
    finally:
        s.close()
    assert p.returncode == 1 and "metrics_listen" in p.stderr, p.stderr
    assert "in use" in p.stderr, p.stderr
