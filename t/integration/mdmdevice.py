"""A scripted Apple MDM device and an admin API client for the integration
tests.

A Device builds check-in and command-report plists with plistlib, proves
its identity the way the test asks (Mdm-Signature, TLS client certificate,
the Client-Cert header of a trusted proxy, or nothing), sends them with
requests and parses the plist answers.
"""

import base64
import functools
import hashlib
import json
import plistlib
import urllib.parse
import uuid as uuidlib

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

CT_CHECKIN = "application/x-apple-aspen-mdm-checkin"
CT_REPORT = "application/x-apple-aspen-mdm"
SHARED_IPAD_USER = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"
TIMEOUT = 15


def new_udid():
    return str(uuidlib.uuid4()).upper()


@functools.lru_cache(maxsize=None)
def load_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


@functools.lru_cache(maxsize=None)
def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def cert_der(path):
    return load_cert(path).public_bytes(serialization.Encoding.DER)


def rfc9440(path):
    """Client-Cert header value: a structured-field byte sequence."""
    return ":" + base64.b64encode(cert_der(path)).decode() + ":"


def cert_sha256(path):
    return hashlib.sha256(cert_der(path)).hexdigest()


def sign(body, cert_path, key_path):
    """Mdm-Signature: base64 of a detached DER CMS SignedData over body."""
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(body)
        .add_signer(load_cert(cert_path), load_key(key_path), hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [
                pkcs7.PKCS7Options.DetachedSignature,
                pkcs7.PKCS7Options.Binary,
                pkcs7.PKCS7Options.NoCapabilities,
            ],
        )
    )
    return base64.b64encode(der).decode()


def new_session(pki):
    """A requests session that trusts the test root only. trust_env off:
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE in the environment would silently
    override session.verify, and no proxy from the environment applies."""
    s = requests.Session()
    s.trust_env = False
    s.verify = pki.root
    return s


def parse_command(resp):
    """The command plist of a 200 answer, or None for an empty body."""
    if not resp.content:
        return None
    return plistlib.loads(resp.content)


class Device:
    """One enrollment channel of a simulated device.

    identity: "signature" (Mdm-Signature, no TLS cert), "tls" (client
    certificate only), "both", "header" (Client-Cert header, RFC 9440, to
    the proxied server), "pem-header" (URL-escaped PEM), "none".
    endpoint: "split" (/mdm/checkin + /mdm/connect) or "combined" (/mdm).
    """

    def __init__(self, server, pki, udid=None, ident="dev1",
                 identity="signature", endpoint="split", topic=None,
                 user_id=None, user_short_name=None, user_long_name=None,
                 base_url=None):
        self.server = server
        self.pki = pki
        self.udid = udid or new_udid()
        self.ident = ident
        self.identity = identity
        self.endpoint = endpoint
        self.topic = topic or server.topic
        self.user_id = user_id
        self.user_short_name = user_short_name
        self.user_long_name = user_long_name
        if base_url is None:
            base_url = (server.proxied_url
                        if identity in ("header", "pem-header")
                        else server.base_url)
        self.base_url = base_url
        if base_url.startswith("http://"):
            self.endpoint = "combined"
        self.session = new_session(pki)
        if identity in ("tls", "both"):
            self.session.cert = (pki.cert(ident), pki.key(ident))
        self.token = uuidlib.uuid4().bytes + uuidlib.uuid4().bytes
        self.magic = str(uuidlib.uuid4()).upper()

    # -- identity -----------------------------------------------------
    @property
    def cert_path(self):
        return self.pki.cert(self.ident)

    @property
    def key_path(self):
        return self.pki.key(self.ident)

    @property
    def enrollment_id(self):
        if self.user_id == SHARED_IPAD_USER:
            return "%s:%s" % (self.udid, self.user_short_name)
        if self.user_id:
            return "%s:%s" % (self.udid, self.user_id)
        return self.udid

    def user(self, user_id, short=None, long=None):
        """A user channel of this device (same certificate, same UDID)."""
        d = Device(self.server, self.pki, udid=self.udid, ident=self.ident,
                   identity=self.identity, endpoint=self.endpoint,
                   topic=self.topic, user_id=user_id, user_short_name=short,
                   user_long_name=long, base_url=self.base_url)
        return d

    def identity_headers(self, body):
        h = {}
        if self.identity in ("signature", "both"):
            h["Mdm-Signature"] = sign(body, self.cert_path, self.key_path)
        elif self.identity == "header":
            h["Client-Cert"] = rfc9440(self.cert_path)
        elif self.identity == "pem-header":
            with open(self.cert_path) as f:
                pem = f.read()
            h["Client-Cert"] = urllib.parse.quote(pem, safe="")
        return h

    # -- transport ----------------------------------------------------
    def url(self, kind):
        if self.endpoint == "combined":
            return self.base_url + "/mdm"
        return self.base_url + ("/mdm/checkin" if kind == "checkin"
                                else "/mdm/connect")

    def send_raw(self, kind, body, headers=None, method="PUT", url=None,
                 identity=True):
        h = {"Content-Type": CT_CHECKIN if kind == "checkin" else CT_REPORT}
        if identity:
            h.update(self.identity_headers(body))
        if headers:
            h.update(headers)
        return self.session.request(method, url or self.url(kind), data=body,
                                    headers=h, timeout=TIMEOUT)

    def send(self, kind, msg, **kw):
        return self.send_raw(kind, plistlib.dumps(msg), **kw)

    # -- messages -----------------------------------------------------
    def _ids(self, msg):
        msg["UDID"] = self.udid
        if self.user_id:
            msg["UserID"] = self.user_id
        if self.user_short_name:
            msg["UserShortName"] = self.user_short_name
        if self.user_long_name:
            msg["UserLongName"] = self.user_long_name
        return msg

    def authenticate_msg(self):
        return {
            "MessageType": "Authenticate",
            "Topic": self.topic,
            "UDID": self.udid,
            "BuildVersion": "21A329",
            "OSVersion": "17.0",
            "ProductName": "iPhone15,2",
            "SerialNumber": "F00TEST" + self.udid[:5],
            "DeviceName": "test phone",
            "Model": "MQ0T3",
            "ModelName": "iPhone",
        }

    def token_update_msg(self):
        m = {
            "MessageType": "TokenUpdate",
            "Topic": self.topic,
            "Token": self.token,
            "PushMagic": self.magic,
            "AwaitingConfiguration": False,
        }
        if not self.user_id:
            m["UnlockToken"] = b"unlock-" + self.token[:8]
        return self._ids(m)

    def authenticate(self):
        return self.send("checkin", self.authenticate_msg())

    def token_update(self):
        return self.send("checkin", self.token_update_msg())

    def checkout(self):
        return self.send("checkin", self._ids(
            {"MessageType": "CheckOut", "Topic": self.topic}))

    def enroll(self):
        """Authenticate (device channel only) and TokenUpdate; asserts 200."""
        if not self.user_id:
            r = self.authenticate()
            assert r.status_code == 200, (r.status_code, r.text)
        r = self.token_update()
        assert r.status_code == 200, (r.status_code, r.text)
        return self

    def report(self, status, uuid=None, **extra):
        m = self._ids({"Status": status})
        if uuid:
            m["CommandUUID"] = uuid
        m.update(extra)
        return self.send("report", m)

    def idle(self):
        return self.report("Idle")

    def ack(self, uuid, **extra):
        return self.report("Acknowledged", uuid, **extra)

    def notnow(self, uuid):
        return self.report("NotNow", uuid)

    def error(self, uuid, chain=None):
        chain = chain or [{
            "ErrorCode": 12021,
            "ErrorDomain": "MCMDMErrorDomain",
            "LocalizedDescription": "test failure",
            "USEnglishDescription": "test failure",
        }]
        return self.report("Error", uuid, ErrorChain=chain)


class Admin:
    """The admin API under /mdm/admin/ (basic auth + X-API-Key)."""

    def __init__(self, server, pki, auth=True, key=True):
        self.server = server
        self.base = server.base_url + "/mdm/admin"
        self.s = new_session(pki)
        if auth:
            self.s.auth = server.admin_auth
        if key is True:
            self.s.headers["X-API-Key"] = server.admin_key
        elif key:
            self.s.headers["X-API-Key"] = key

    def req(self, method, path, **kw):
        kw.setdefault("timeout", TIMEOUT)
        return self.s.request(method, self.base + path, **kw)

    def enqueue(self, ids, command, nopush=False, raw=None, ctype=None):
        if isinstance(ids, (list, tuple)):
            ids = ",".join(ids)
        path = "/enqueue/" + ids + ("?nopush=1" if nopush else "")
        if raw is not None:
            body = raw
        else:
            body = json.dumps(command).encode()
            ctype = ctype or "application/json"
        h = {"Content-Type": ctype} if ctype else {}
        return self.req("POST", path, data=body, headers=h)

    def push(self, ids):
        if isinstance(ids, (list, tuple)):
            ids = ",".join(ids)
        return self.req("POST", "/push/" + ids)

    def enrollment(self, eid):
        return self.req("GET", "/enrollments/" + eid)

    def queue(self, eid):
        return self.req("GET", "/queue/" + eid)

    def delete(self, eid, uuid=None):
        return self.req("DELETE", "/queue/" + eid + ("/" + uuid if uuid else ""))

    def result(self, eid, uuid):
        return self.req("GET", "/results/%s/%s" % (eid, uuid))

    def revoke(self, eid, sha256=None):
        return self.req("POST", "/revoke/" + eid +
                        ("/" + sha256 if sha256 else ""))


def command(request_type, uuid=None, **fields):
    """An enqueue envelope."""
    c = {"RequestType": request_type}
    c.update(fields)
    return {"CommandUUID": uuid or str(uuidlib.uuid4()).upper(), "Command": c}
