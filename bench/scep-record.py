#!/usr/bin/python3
"""A recording HTTP proxy for the SCEP benchmark.

usage: scep-record.py LISTEN_PORT TARGET_PORT OUT_FILE [TIMEOUT]

Listens on 127.0.0.1:LISTEN_PORT and forwards every request to
http://127.0.0.1:TARGET_PORT (same method, path, query, body and
Content-Type); answers with the target's status, Content-Type and body.
The body of the first POST ...?operation=PKIOperation is written to
OUT_FILE (the DER pkiMessage, encrypted to that server's CA) and its
answer to OUT_FILE.rep; the proxy then exits. It also exits after TIMEOUT
seconds (30 by default) without recording anything, with status 1.
"""
import http.server
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    listen, target, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    deadline = time.time() + (float(sys.argv[4]) if len(sys.argv) == 5
                              else 30.0)
    state = {"done": False}

    class Proxy(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def forward(self, body):
            req = urllib.request.Request(
                "http://127.0.0.1:%d%s" % (target, self.path), data=body,
                method=self.command)
            if "Content-Type" in self.headers:
                req.add_header("Content-Type", self.headers["Content-Type"])
            try:
                with urllib.request.urlopen(req, timeout=20) as resp:
                    status, ctype = resp.status, resp.headers.get(
                        "Content-Type")
                    data = resp.read()
            except urllib.error.HTTPError as e:
                status, ctype, data = e.code, e.headers.get(
                    "Content-Type"), e.read()
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return status, data

        def do_GET(self):
            self.forward(None)

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            status, data = self.forward(body)
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            if q.get("operation") == ["PKIOperation"] and not state["done"]:
                with open(out, "wb") as f:
                    f.write(body)
                with open(out + ".rep", "wb") as f:
                    f.write(data)
                state["done"] = True

    srv = http.server.HTTPServer(("127.0.0.1", listen), Proxy)
    srv.timeout = 0.5
    while not state["done"] and time.time() < deadline:
        srv.handle_request()
    srv.server_close()
    sys.exit(0 if state["done"] else 1)


if __name__ == "__main__":
    main()
