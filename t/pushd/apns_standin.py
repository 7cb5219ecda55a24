"""A stand-in for APNs: HTTP/2 over TLS (python3-h2), client certificate
required, every request recorded, answers taken from a script.

In the tests it runs in a thread of the pytest process (Standin); for the
benchmark it runs as a process (python3 apns_standin.py --port ...) that
answers 200 to everything and records nothing.
"""

import argparse
import asyncio
import json
import ssl
import threading
import time
import uuid

import h2.config
import h2.connection
import h2.events
import h2.settings


def peer_uid(sslobj):
    """The UID (0.9.2342.19200300.100.1.1) of the client certificate."""
    cert = sslobj.getpeercert() or {}
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "userId":
                return v
    return None


def peer_serial(sslobj):
    cert = sslobj.getpeercert() or {}
    return cert.get("serialNumber")


class _Proto(asyncio.Protocol):
    def __init__(self, standin):
        self.s = standin
        self.streams = {}
        self.uid = None
        self.serial = None

    def connection_made(self, transport):
        self.t = transport
        sslobj = transport.get_extra_info("ssl_object")
        if sslobj is not None:
            self.uid = peer_uid(sslobj)
            self.serial = peer_serial(sslobj)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False,
                                      header_encoding="utf-8"))
        if self.s.max_streams is not None:
            self.conn.local_settings = h2.settings.Settings(
                client=False, initial_values={
                    h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS:
                        self.s.max_streams})
        self.conn.initiate_connection()
        self.t.write(self.conn.data_to_send())
        self.s.connections += 1

    def data_received(self, data):
        try:
            events = self.conn.receive_data(data)
        except Exception:
            self.t.close()
            return
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                self.streams[ev.stream_id] = {"headers": ev.headers,
                                              "body": b""}
                with self.s.lock:
                    self.s.active += 1
                    self.s.max_active = max(self.s.max_active,
                                            self.s.active)
            elif isinstance(ev, h2.events.DataReceived):
                st = self.streams.get(ev.stream_id)
                if st is not None:
                    st["body"] += ev.data
                self.conn.acknowledge_received_data(
                    ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self._request(ev.stream_id)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.t.close()
        self._flush()

    def _flush(self):
        data = self.conn.data_to_send()
        if data:
            self.t.write(data)

    def _request(self, sid):
        st = self.streams.pop(sid, None)
        if st is None:
            return
        if not self.s.record:
            self._answer(sid, 200, None)
            return
        headers = {}
        for k, v in st["headers"]:
            headers.setdefault(k, v)
        path = headers.get(":path", "")
        token = path.rsplit("/", 1)[-1]
        status, reason, delay = self.s.next_answer(token)
        rec = {"path": path, "method": headers.get(":method"),
               "headers": headers, "all_headers": list(st["headers"]),
               "body": st["body"], "token": token, "uid": self.uid,
               "serial": self.serial, "time": time.time(),
               "status": status}
        with self.s.lock:
            self.s.requests.append(rec)
        if delay:
            asyncio.get_event_loop().call_later(
                delay, self._answer, sid, status, reason)
        else:
            self._answer(sid, status, reason)

    def _answer(self, sid, status, reason):
        with self.s.lock:
            self.s.active -= 1
        if self.t.is_closing():
            return
        if status == "goaway-refuse":
            # not processed: GOAWAY below this stream, then close
            self.conn.close_connection(error_code=0, last_stream_id=0)
            self._flush()
            self.t.close()
            return
        if status == "reset":
            self.conn.reset_stream(sid, error_code=2)
            self._flush()
            return
        if status == "goaway":
            self.conn.close_connection(error_code=0)
            self._flush()
            self.t.close()
            return
        apns_id = str(uuid.uuid4()).upper()
        hdrs = [(":status", str(status)), ("apns-id", apns_id)]
        try:
            if reason is None:
                self.conn.send_headers(sid, hdrs, end_stream=True)
            else:
                body = {"reason": reason}
                if status == 410:
                    body["timestamp"] = int(time.time() * 1000)
                data = json.dumps(body).encode()
                self.conn.send_headers(
                    sid, hdrs + [("content-type", "application/json")])
                self.conn.send_data(sid, data, end_stream=True)
        except Exception:
            return
        if self.s.record:
            with self.s.lock:
                self.s.answered.append((sid, status, apns_id))
        self._flush()

    def connection_lost(self, exc):
        self.s.connections -= 1


class Standin:
    """script: token -> list of answers, each a status or (status, reason)
    or (status, reason, delay); popped in order, then `default`."""

    def __init__(self, cert, key, ca, port, record=True, client_cert=True,
                 max_streams=None, alpn=("h2",)):
        """max_streams: SETTINGS_MAX_CONCURRENT_STREAMS it announces (and
        enforces: more streams close the connection); alpn: the protocols
        it offers in the TLS handshake."""
        self.client_cert = client_cert
        self.max_streams = max_streams
        self.alpn = list(alpn)
        self.active = 0      # requests received, not answered yet
        self.max_active = 0
        self.cert, self.key, self.ca, self.port = cert, key, ca, port
        self.record = record
        self.lock = threading.RLock()
        self.requests = []
        self.answered = []
        self.script = {}
        self.default = (200, None, 0)
        self.connections = 0
        self.loop = None

    def next_answer(self, token):
        with self.lock:
            q = self.script.get(token)
            a = q.pop(0) if q else self.default
        if not isinstance(a, tuple):
            a = (a,)
        a = a + (None, 0)[len(a) - 1:]
        return a[0], a[1], a[2]

    def ssl_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.load_verify_locations(self.ca)
        # h2load (the benchmark's ceiling) cannot present a certificate
        ctx.verify_mode = (ssl.CERT_REQUIRED if self.client_cert
                           else ssl.CERT_NONE)
        ctx.set_alpn_protocols(self.alpn)
        return ctx

    async def _serve(self, ready):
        self.server = await asyncio.get_event_loop().create_server(
            lambda: _Proto(self), "127.0.0.1", self.port,
            ssl=self.ssl_context(), backlog=512)
        ready.set()

    def start(self):
        ready = threading.Event()

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.loop.create_task(self._serve(ready))
            self.loop.run_forever()
            self.server.close()
            self.loop.run_until_complete(self.server.wait_closed())
            self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("stand-in did not start")

    def stop(self):
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    def for_token(self, token):
        with self.lock:
            return [r for r in self.requests if r["token"] == token]

    def wait(self, cond, timeout=10.0):
        end = time.time() + timeout
        while time.time() < end:
            with self.lock:
                if cond(self):
                    return True
            time.sleep(0.02)
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--no-client-cert", action="store_true")
    a = ap.parse_args()
    s = Standin(a.cert, a.key, a.ca, a.port, record=False,
                client_cert=not a.no_client_cert)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(s._serve(threading.Event()))
    print("ready", flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
