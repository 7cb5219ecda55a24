"""A webhook receiver for the mdm-eventd tests: python3's http.server on a
127.0.0.1 port, plain or TLS, that records every request (headers, raw
body, parsed JSON) and can be told to answer another status, to answer
late, or to go away (stop) and come back on the same port (start).

HTTP/1.0: each request has its own connection, so a stopped receiver is
really unreachable (no kept-alive connection survives it)."""

import http.server
import json
import ssl
import threading
import time


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        rcv = self.server.receiver
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        req = {"path": self.path, "time": time.time(), "body": body,
               "headers": {k.lower(): v for k, v in self.headers.items()},
               "header_list": list(self.headers.items())}
        try:
            req["json"] = json.loads(body)
        except ValueError:
            req["json"] = None
        with rcv.lock:
            rcv.requests.append(req)
            status = rcv.status
            if rcv.fail_next > 0:
                rcv.fail_next -= 1
                status = rcv.fail_status
            delay = rcv.delay
        if delay:
            time.sleep(delay)
        req["answered"] = status
        self.send_response(status)
        if rcv.retry_after is not None and status >= 300:
            self.send_header("Retry-After", str(rcv.retry_after))
        out = b'{"ok":true}' if status < 300 else b'{"error":"test"}'
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # a client killed mid-request (the SIGKILL test): not an error here
        pass


class Receiver:
    def __init__(self, port, cert=None, key=None):
        self.port = port
        self.cert, self.key = cert, key
        self.lock = threading.Lock()
        self.requests = []
        self.status = 200
        self.fail_next = 0
        self.fail_status = 500
        self.retry_after = None
        self.delay = 0
        self.httpd = None
        self.thread = None

    @property
    def url(self):
        return "%s://127.0.0.1:%d/hook" % (
            "https" if self.cert else "http", self.port)

    def start(self):
        self.httpd = _Server(("127.0.0.1", self.port), _Handler)
        self.httpd.receiver = self
        if self.cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert, self.key)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                                server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.httpd = None

    def events(self):
        """Every event of a request answered 2xx, in arrival order:
        (stream_id, event)."""
        out = []
        with self.lock:
            reqs = list(self.requests)
        for r in reqs:
            if r["json"] and r.get("answered", 999) < 300:
                for e in r["json"]["events"]:
                    out.append((e["stream_id"], e))
        return out

    def all_events(self):
        """Every event of every request, answered or not."""
        out = []
        with self.lock:
            reqs = list(self.requests)
        for r in reqs:
            if r["json"]:
                for e in r["json"]["events"]:
                    out.append((e["stream_id"], e))
        return out

    def wait(self, cond, timeout=15.0):
        end = time.time() + timeout
        while time.time() < end:
            if cond(self):
                return True
            time.sleep(0.03)
        return cond(self)
