"""Fixtures of the integration suite: the test PKI, a private redis-server,
a recording upstream, and the web server with the MDM module: nginx
(ngx_mdm) and Apache httpd (mod_mdm), two params of the `server` fixture
with the same interface. The Apache half is skipped while
$MDM_BUILD/mod_mdm/mod_mdm.so is not built.

Everything listens on free 127.0.0.1 ports and is stopped by PID.
"""

import http.server
import os
import random
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest
import redis as redislib

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

NGINX = "/usr/sbin/nginx"
APACHE = "/usr/sbin/apache2"
MKPKI = os.path.join(TOP, "t", "pki", "mkpki.sh")
SAMPLES = os.path.join(TOP, "t", "samples")
CONF_NGINX = os.path.join(TOP, "conf", "nginx")
CONF_APACHE = os.path.join(TOP, "conf", "apache")

# Ours plus the topics of the real sample messages.
TOPICS = [
    "com.apple.mgmt.External.mdm-integration-test",
    "com.apple.mgmt.XServer.1c111c11-1c11-1c11-1c11-1c111c111c11",
    "com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9",
    "com.apple.mgmt.commandment.dev",
]
ADMIN_KEY = "itest-admin-key-6f1c2a"
ADMIN_USER, ADMIN_PASSWORD = "admin", "itest-pw-91d3"
REDIS_TIMEOUT = 2.0          # mdm_redis_timeout in conf/nginx/nginx.conf
REDIS_CONNECT_TIMEOUT = 1.0  # mdm_redis_connect_timeout
# (MDMRedisTimeout 2000 and MDMRedisConnectTimeout 1000 in
# conf/apache/httpd.conf)

# alerts, leaks, a worker that died, sanitizer reports (workers' stderr
# goes to the error log). nginx writes "[crit]", Apache "[core:crit]",
# "[mdm:emerg]" or "[:alert]"; a dead Apache child is "AH00052: child pid
# N exit signal Segmentation fault (11)".
BAD_LOG = re.compile(r"\[(?:[\w-]*:)?(alert|emerg|crit)\]|open socket|"
                     r"leaked|exited on signal|exited with code [1-9]|"
                     r"exit signal|Segmentation fault|"
                     r"ERROR: AddressSanitizer|runtime error:")
# errors too, for the reload and stop tests
UNEXPECTED = re.compile(r"\[(?:[\w-]*:)?(error|crit|alert|emerg)\]")
# in the server's stderr (ASan/UBSan builds, LD_PRELOADed sanitizers)
SANITIZER = re.compile(r"ERROR: AddressSanitizer|runtime error:")
MDM_ID = re.compile(r"MDM\d{5}")


def build_dir():
    return os.environ.get("MDM_BUILD", os.path.join(TOP, "build"))


def module_path():
    return os.path.join(build_dir(), "ngx_mdm", "ngx_http_mdm_module.so")


def apache_module_path():
    return os.path.join(build_dir(), "mod_mdm", "mod_mdm.so")


def nginx_env(var="MDM_NGINX_PRELOAD"):
    """The environment of nginx processes. MDM_NGINX_PRELOAD (e.g. the
    libasan.so of a sanitizer build of the module) becomes their
    LD_PRELOAD, and only theirs (MDM_APACHE_PRELOAD for apache2)."""
    env = dict(os.environ)
    pre = os.environ.get(var)
    if pre:
        env["LD_PRELOAD"] = pre
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    return env


def free_port():
    """A free 127.0.0.1 port below the ephemeral range (outgoing
    connections of other processes cannot take it between this check and
    the server's bind), never a well-known one."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        if port not in _given_ports:
            _given_ports.add(port)
            return port
    raise RuntimeError("no free port")


_given_ports = set()


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
    raise RuntimeError("port %d not listening after %ss" % (port, timeout))


def open_tree(path):
    """chmod 0755 a directory tree we created (workers run as nobody)."""
    for root, dirs, files in os.walk(path):
        os.chmod(root, 0o755)
        for f in files:
            p = os.path.join(root, f)
            os.chmod(p, os.stat(p).st_mode | 0o044)


def open_parents(path, stop):
    """Make every directory from stop down to path traversable."""
    path = os.path.abspath(path)
    stop = os.path.abspath(stop)
    while True:
        st = os.stat(path)
        if st.st_uid == os.getuid():
            os.chmod(path, stat.S_IMODE(st.st_mode) | 0o755)
        if path == stop or path == "/":
            break
        path = os.path.dirname(path)


# ----------------------------------------------------------------- PKI

class Pki:
    def __init__(self, d):
        self.dir = d
        self.root = os.path.join(d, "root.pem")
        self.cafile = os.path.join(d, "cafile.pem")

    def cert(self, name):
        return os.path.join(self.dir, name + ".pem")

    def key(self, name):
        return os.path.join(self.dir, name + ".key")


@pytest.fixture(scope="session")
def basetemp(tmp_path_factory):
    bt = tmp_path_factory.getbasetemp()
    # the basetemp and pytest-of-<user> are 0700: nobody must traverse
    open_parents(str(bt), str(bt.parent))
    return bt


@pytest.fixture(scope="session")
def pki(tmp_path_factory, basetemp):
    d = str(tmp_path_factory.mktemp("pki"))
    subprocess.run(["sh", MKPKI, d], check=True, capture_output=True)
    open_tree(d)
    return Pki(d)


# --------------------------------------------------------------- Redis

class RedisServer:
    def __init__(self, d):
        self.dir = d
        self.port = free_port()
        self.socket = os.path.join(d, "redis.sock")
        os.chmod(d, 0o755)  # nginx workers (nobody) use the socket
        self.proc = None
        self.aof = False
        self.stopped = False

    def start(self, aof=None, wipe=True):
        if aof is not None:
            self.aof = aof
        if wipe:
            for f in os.listdir(self.dir):
                p = os.path.join(self.dir, f)
                if os.path.isdir(p):
                    subprocess.run(["rm", "-rf", p], check=True)
                elif f not in ("redis.log", "redis.sock"):
                    os.unlink(p)
        args = ["redis-server", "--port", str(self.port),
                "--unixsocket", self.socket, "--unixsocketperm", "777",
                "--bind", "127.0.0.1", "--dir", self.dir, "--save", "",
                "--daemonize", "no", "--enable-debug-command", "local",
                "--logfile",
                os.path.join(self.dir, "redis.log")]
        if self.aof:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.stopped = False
        wait_port(self.port, 10, self.proc)
        c = self.client()
        end = time.time() + 10
        while True:
            try:
                if c.ping():
                    break
            except redislib.exceptions.BusyLoadingError:
                pass
            if time.time() > end:
                raise RuntimeError("redis not ready")
            time.sleep(0.05)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self):
        return redislib.Redis(host="127.0.0.1", port=self.port,
                              socket_timeout=5)

    def kill9(self):
        self.cont()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def restart(self, aof=None):
        """Start again on the same port and dir, keeping the data files."""
        if self.running:
            self.stop()
        self.start(aof=aof, wipe=False)

    def sigstop(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.stopped = True

    def cont(self):
        if self.running and self.stopped:
            self.proc.send_signal(signal.SIGCONT)
        self.stopped = False

    def stop(self):
        if not self.running:
            return
        self.cont()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="session")
def redis(tmp_path_factory):
    r = RedisServer(str(tmp_path_factory.mktemp("redis")))
    r.start()
    yield r
    r.stop()


# ------------------------------------------------------------ upstream

class Upstream:
    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with outer.lock:
                    outer.requests.append({
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in
                                    self.headers.items()},
                        "raw_headers": list(self.headers.items()),
                        "body": body,
                    })
                out = b"upstream-ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_PUT = do_POST = do_DELETE = _any

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def clear(self):
        with self.lock:
            self.requests.clear()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def upstream():
    u = Upstream()
    yield u
    u.stop()


# -------------------------------------------------------------- server

class ServerBase:
    """What the tests rely on; one subclass per web server."""
    name = None
    topic = TOPICS[0]
    topics = TOPICS
    admin_key = ADMIN_KEY
    admin_auth = (ADMIN_USER, ADMIN_PASSWORD)
    redis_timeout = REDIS_TIMEOUT

    base_url = proxied_url = verify_url = None
    checked = 0  # error log lines already checked by no_alerts
    # what the error log says on a clean stop
    stopped_re = re.compile(r"exit")
    conf_src = None    # the templates
    main_conf = None   # the file the server is started with

    def values(self, run):
        return {
            "MODULE": self.module,
            "WORKERS": str(self.workers),
            "RUN": run,
            "REDIS": self.redis_addr,
            "CONF": os.path.join(run, "conf"),
            "CONF_RUN": run,
            "PKI": self.pki.dir,
            "PORT": str(self.port),
            "PROXIED_PORT": str(self.proxied_port),
            "SCEP_PORT": str(self.scep_port),
            "PROFILE_TOPIC": TOPICS[0],
            "VERIFY_PORT": str(self.verify_port),
            "UPSTREAM_PORT": str(self.upstream.port),
            "TOPIC": " ".join(TOPICS),
            "ADMIN_KEY": ADMIN_KEY,
        }

    run_dirs = ("conf", "logs", "tmp")

    def render(self, run, edit=None):
        """Render every template of conf_src into run/conf; edit(name,
        text) may change a rendered file. Returns the path of main_conf
        there."""
        vals = self.values(run)
        for d in self.run_dirs:
            os.makedirs(os.path.join(run, d), exist_ok=True)
        for name in sorted(os.listdir(self.conf_src)):
            if not name.endswith(".conf"):
                continue
            with open(os.path.join(self.conf_src, name)) as f:
                text = f.read()
            for k, v in vals.items():
                text = text.replace("${%s}" % k, v)
            code = re.sub(r"#.*", "", text)
            left = re.findall(r"\$\{[A-Z_]+\}", code)
            assert not left, "unfilled placeholders in %s: %s" % (name, left)
            text = self.adjust(name, text, run)
            if edit:
                text = edit(name, text)
            with open(os.path.join(run, "conf", name), "w") as f:
                f.write(text)
        pw = subprocess.run(["openssl", "passwd", "-apr1", ADMIN_PASSWORD],
                            check=True, capture_output=True,
                            text=True).stdout.strip()
        with open(os.path.join(run, "htpasswd"), "w") as f:
            f.write("%s:%s\n" % (ADMIN_USER, pw))
        open_tree(run)
        return os.path.join(run, "conf", self.main_conf)

    def adjust(self, name, text, run):
        """A test-only change of a rendered template."""
        return text

    def reload(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def error_log_lines(self, since=0):
        raise NotImplementedError

    # helpers over error_log_lines
    def log_mark(self):
        return len(self.error_log_lines())

    def mdm_ids(self, since=0):
        out = []
        for line in self.error_log_lines(since):
            out += MDM_ID.findall(line)
        return out

    def wait_log_id(self, mdm_id, since, timeout=2.0):
        """Assert that a line with mdm_id was logged after mark since."""
        end = time.time() + timeout
        while True:
            lines = [l for l in self.error_log_lines(since) if mdm_id in l]
            if lines:
                return lines
            if time.time() > end:
                raise AssertionError(
                    "no %s in the error log; new lines:\n%s" % (
                        mdm_id, "\n".join(self.error_log_lines(since))))
            time.sleep(0.05)

    def bad_lines(self, since=0):
        return [l for l in self.error_log_lines(since) if BAD_LOG.search(l)]


class LocalServer(ServerBase):
    """A server run from rendered templates in a private run dir, its
    error log in run/logs/error.log and its stderr in run/logs/stderr.log.
    """

    def __init__(self, run, pki, redis, upstream, workers=2,
                 redis_addr=None):
        self.run = run
        self.redis_addr = redis_addr or "127.0.0.1:%d" % redis.port
        self.pki = pki
        self.redis = redis
        self.upstream = upstream
        self.workers = workers
        self.port = free_port()
        self.proxied_port = free_port()
        self.verify_port = free_port()
        self.scep_port = free_port()
        self.scep_url = "http://127.0.0.1:%d/scep" % self.scep_port
        self.base_url = "https://localhost:%d" % self.port
        self.proxied_url = "http://127.0.0.1:%d" % self.proxied_port
        self.verify_url = "https://localhost:%d" % self.verify_port
        self.proc = None
        self.out = None
        self.error_log = os.path.join(run, "logs", "error.log")
        self.access_log = os.path.join(run, "logs", "access.log")
        self.default_access_log = os.path.join(run, "logs",
                                               "default-access.log")
        self.conf = self.render(run)

    def worker_pids(self):
        out = subprocess.run(["ps", "-o", "pid=", "--ppid",
                              str(self.proc.pid)], capture_output=True,
                             text=True).stdout
        return sorted(int(x) for x in out.split())

    def wait_ports(self):
        for p in (self.port, self.proxied_port, self.verify_port,
                  self.scep_port):
            wait_port(p, 10, self.proc)

    def error_log_lines(self, since=0):
        try:
            with open(self.error_log, errors="replace") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        return lines[since:]

    def bad_lines(self, since=0):
        bad = super().bad_lines(since)
        if since:
            return bad
        try:
            with open(os.path.join(self.run, "logs", "stderr.log"),
                      errors="replace") as f:
                bad += [l for l in f.read().splitlines()
                        if SANITIZER.search(l)]
        except FileNotFoundError:
            pass
        return bad

    def access_log_lines(self):
        try:
            with open(self.access_log, errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []


class NginxServer(LocalServer):
    name = "nginx"
    conf_src = CONF_NGINX
    main_conf = "nginx.conf"

    @property
    def module(self):
        return module_path()

    def adjust(self, name, text, run):
        if name == "nginx.conf":
            text = self.contain_logs(text, run)
        return text

    @staticmethod
    def contain_logs(text, run):
        """The example's proxied server block has no access_log, and
        Debian's nginx is built with --http-log-path=/var/log/nginx/
        access.log: it would log there. Give the http block a default
        access log inside the run dir (server blocks with their own
        access_log are unaffected)."""
        anchor = "include %s/log-format.conf;" % os.path.join(run, "conf")
        assert anchor in text, "nginx.conf no longer includes log-format"
        return text.replace(anchor, anchor + "\n    access_log %s mdm;" %
                            os.path.join(run, "logs", "default-access.log"),
                            1)

    def test_config(self, run=None, conf=None):
        run = run or self.run
        conf = conf or self.conf
        return subprocess.run([NGINX, "-t", "-p", run, "-c", conf],
                              capture_output=True, text=True, timeout=30,
                              env=nginx_env())

    def start(self):
        t = self.test_config()
        assert t.returncode == 0, "nginx -t failed:\n" + t.stderr
        self.out = open(os.path.join(self.run, "logs", "stderr.log"), "ab")
        self.proc = subprocess.Popen([NGINX, "-p", self.run, "-c", self.conf],
                                     stdout=self.out, stderr=self.out,
                                     env=nginx_env())
        self.wait_ports()

    @property
    def master_pid(self):
        with open(os.path.join(self.run, "nginx.pid")) as f:
            return int(f.read().strip())

    def reload(self, timeout=15):
        """SIGHUP the master; return once the old workers are gone and the
        new ones serve."""
        old = set(self.worker_pids())
        mark = self.log_mark()
        os.kill(self.master_pid, signal.SIGHUP)
        end = time.time() + timeout
        while time.time() < end:
            lines = self.error_log_lines(mark)
            cur = set(self.worker_pids())
            if any("reconfiguring" in l for l in lines) and \
                    not (cur & old) and len(cur) >= self.workers:
                return
            time.sleep(0.05)
        raise AssertionError("reload did not complete: %s" %
                             "\n".join(self.error_log_lines(mark)))

    def stop(self, timeout=20):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.master_pid, signal.SIGQUIT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("nginx did not stop on SIGQUIT in %ss" %
                                 timeout)
        finally:
            self.out.close()


class ApacheServer(LocalServer):
    """apache2 (event MPM) with mod_mdm, from conf/apache/*.conf: run in
    the foreground (-DFOREGROUND) as the parent of its children; stopped
    with SIGTERM, reloaded with SIGUSR1 (graceful)."""
    name = "apache"
    conf_src = CONF_APACHE
    main_conf = "httpd.conf"
    run_dirs = ("conf", "logs", "run", "htdocs")
    stopped_re = re.compile(r"caught SIGTERM, shutting down")

    @property
    def module(self):
        return apache_module_path()

    @staticmethod
    def defines():
        # User nobody / Group nogroup when started as root
        return ["-DRUN_AS_ROOT"] if os.getuid() == 0 else []

    def argv(self, run, conf, *extra):
        # always -d and -f: without -f apache2 reads /etc/apache2
        return [APACHE, "-d", run, "-f", conf] + self.defines() + list(extra)

    def test_config(self, run=None, conf=None):
        run = run or self.run
        conf = conf or self.conf
        return subprocess.run(self.argv(run, conf, "-t"),
                              capture_output=True, text=True, timeout=30,
                              env=nginx_env("MDM_APACHE_PRELOAD"))

    def start(self):
        t = self.test_config()
        assert t.returncode == 0, "apache2 -t failed:\n" + t.stderr
        self.out = open(os.path.join(self.run, "logs", "stderr.log"), "ab")
        self.proc = subprocess.Popen(
            self.argv(self.run, self.conf, "-DFOREGROUND"),
            stdout=self.out, stderr=self.out,
            env=nginx_env("MDM_APACHE_PRELOAD"))
        self.wait_ports()
        # serving once the children are up
        end = time.time() + 10
        while not self.worker_pids() or not os.path.exists(self.pid_file):
            if time.time() > end or self.proc.poll() is not None:
                raise RuntimeError("apache2 did not start: %s" %
                                   "\n".join(self.error_log_lines()))
            time.sleep(0.05)

    @property
    def pid_file(self):
        return os.path.join(self.run, "run", "httpd.pid")

    @property
    def master_pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return self.proc.pid

    def reload(self, timeout=15):
        """SIGUSR1 (graceful restart); return once the new generation
        serves and the old children are gone."""
        old = set(self.worker_pids())
        mark = self.log_mark()
        os.kill(self.master_pid, signal.SIGUSR1)
        end = time.time() + timeout
        while time.time() < end:
            lines = self.error_log_lines(mark)
            cur = set(self.worker_pids())
            if any("resuming normal operations" in l for l in lines) and \
                    not (cur & old) and cur:
                return
            time.sleep(0.05)
        raise AssertionError("graceful restart did not complete: %s" %
                             "\n".join(self.error_log_lines(mark)))

    def stop(self, timeout=20):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.master_pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("apache2 did not stop on SIGTERM in %ss" %
                                 timeout)
        finally:
            self.out.close()


SERVERS = {"nginx": NginxServer, "apache": ApacheServer}


def make_server(kind, run, pki, redis, upstream, **kw):
    if kind == "nginx" and not os.path.exists(module_path()):
        pytest.fail("module not built: %s (set MDM_BUILD)" % module_path())
    if kind == "apache" and not os.path.exists(apache_module_path()):
        pytest.skip("mod_mdm not built: no %s (the Apache half runs once "
                    "it is)" % apache_module_path())
    os.makedirs(run, exist_ok=True)
    open_parents(run, os.path.dirname(os.path.dirname(run)))
    return SERVERS[kind](run, pki, redis, upstream, **kw)


# MDM_SERVERS=nginx (or apache) runs one half only
SERVER_PARAMS = os.environ.get("MDM_SERVERS", "nginx,apache").split(",")


@pytest.fixture(scope="session", params=SERVER_PARAMS)
def server(request, tmp_path_factory, pki, redis, upstream, basetemp):
    run = str(tmp_path_factory.mktemp(request.param + "-run"))
    srv = make_server(request.param, run, pki, redis, upstream)
    srv.start()
    yield srv
    srv.stop()
    # what the tests logged was checked test by test (no_alerts); here:
    # the shutdown, and the master's stderr
    bad = srv.bad_lines(srv.checked) + [
        l for l in srv.bad_lines() if l not in srv.error_log_lines()]
    if bad:
        pytest.fail("%s error log has alerts:\n%s" % (srv.name,
                                                      "\n".join(bad)))


@pytest.fixture(autouse=True)
def clean(request, redis, upstream):
    """Flush Redis between tests (a test may have killed or stopped it)."""
    redis.cont()
    if not redis.running or redis.aof:
        redis.stop()
        redis.start(aof=False)
    redis.client().flushall()
    upstream.clear()
    yield


@pytest.fixture(autouse=True)
def no_alerts(server):
    """Attribute alerts, worker deaths and sanitizer reports to the test
    during which they were logged."""
    mark = server.log_mark()
    yield
    bad = server.bad_lines(mark)
    server.checked = server.log_mark()
    if bad:
        pytest.fail("%s error log during this test:\n%s" % (
            server.name, "\n".join(bad)))


@pytest.fixture
def admin(server, pki):
    from mdmdevice import Admin
    return Admin(server, pki)


@pytest.fixture
def device(server, pki):
    from mdmdevice import Device

    def make(**kw):
        return Device(server, pki, **kw)
    return make


# ------------------------------------------- several nodes, fault tests
# (test_nodes.py, test_faults.py: t/lib/faultload.py, wrk-status.lua)

sys.path.insert(0, os.path.join(TOP, "t", "lib"))


@pytest.fixture
def extra_node(tmp_path, pki, redis, upstream):
    """extra_node(kind, workers=2): another nginx or Apache started from
    the same templates on the session Redis, stopped at the end of the
    test; an alert in its error log fails the test (allow: lines that
    match it are expected)."""
    made = []

    def make(kind, workers=2, allow=None):
        run = str(tmp_path / ("%s-node%d" % (kind, len(made))))
        srv = make_server(kind, run, pki, redis, upstream, workers=workers)
        srv.start()
        made.append((srv, allow))
        return srv

    yield make
    bad = []
    for srv, allow in made:
        srv.stop()
        bad += ["%s: %s" % (srv.run, l) for l in srv.bad_lines()
                if not (allow and allow.search(l))]
    assert not bad, "\n".join(bad)


@pytest.fixture
def load_devices(pki, tmp_path):
    """load_devices(server, n): n devices with identities of their own,
    enrolled through server, and their signed Idle reports written for
    wrk; returns (request dir, names, [Device])."""
    import faultload
    from mdmdevice import Device

    def make(server, n):
        devs = []
        for ident in faultload.issue_devices(pki.dir, n):
            devs.append(Device(server, pki, ident=ident).enroll())
        req_dir = str(tmp_path / "wrk-requests")
        names = faultload.write_idle_requests(
            req_dir, [(d.udid, d.cert_path, d.key_path) for d in devs])
        return req_dir, names, devs
    return make
