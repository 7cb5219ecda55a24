"""Load and bookkeeping for the fault tests (t/integration/test_faults.py,
test_nodes.py): extra device identities, signed Idle requests for wrk,
wrk run in the background with its answers tallied by status
(wrk-status.lua), the one-line FAULT summary, and a consistency check of
an enrollment's stored queue.
"""

import base64
import datetime
import os
import plistlib
import re
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
WRK = "/usr/bin/wrk"
WRK_LUA = os.path.join(HERE, "wrk-status.lua")
CT_REPORT = "application/x-apple-aspen-mdm"


# ------------------------------------------------------------ identities

def _load(path, key=False):
    with open(path, "rb") as f:
        data = f.read()
    if key:
        return serialization.load_pem_private_key(data, None)
    return x509.load_pem_x509_certificate(data)


def issue_devices(pki_dir, n, prefix="fload"):
    """n device identities issued by the test PKI's intermediate (EC
    P-256, clientAuth, like mkpki.sh's "client" section) as
    pki_dir/<prefix>-<i>.pem and .key; kept once made. Returns their
    names (the `ident` of mdmdevice.Device)."""
    ca = _load(os.path.join(pki_dir, "int.pem"))
    ca_key = _load(os.path.join(pki_dir, "int.key"), key=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    names = []
    for i in range(n):
        name = "%s-%d" % (prefix, i)
        names.append(name)
        cpath = os.path.join(pki_dir, name + ".pem")
        if os.path.exists(cpath):
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                       "libmdm test"),
                    x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=False,
                                                     path_length=None),
                               critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False,
                    key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False,
                    decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        with open(os.path.join(pki_dir, name + ".key"), "wb") as f:
            f.write(key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        with open(cpath, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
    return names


def sign(body, cert_path, key_path):
    der = (pkcs7.PKCS7SignatureBuilder().set_data(body)
           .add_signer(_load(cert_path), _load(key_path, key=True),
                       hashes.SHA256())
           .sign(serialization.Encoding.DER,
                 [pkcs7.PKCS7Options.DetachedSignature,
                  pkcs7.PKCS7Options.Binary,
                  pkcs7.PKCS7Options.NoCapabilities]))
    return base64.b64encode(der).decode()


def write_idle_requests(out_dir, devices):
    """Signed Idle reports of devices [(udid, cert_path, key_path)] as
    out_dir/<i>.body and .sig; returns the names for wrk-status.lua."""
    os.makedirs(out_dir, exist_ok=True)
    names = []
    for i, (udid, cert, key) in enumerate(devices):
        body = plistlib.dumps({"UDID": udid, "Status": "Idle"})
        name = "idle%d" % i
        with open(os.path.join(out_dir, name + ".body"), "wb") as f:
            f.write(body)
        with open(os.path.join(out_dir, name + ".sig"), "w") as f:
            f.write(sign(body, cert, key))
        names.append(name)
    return names


# ------------------------------------------------------------------- wrk

class Wrk:
    """wrk in the background: PUT the named requests to url for secs
    seconds over conns keep-alive connections (one thread), tallying the
    answers by status."""

    def __init__(self, url, req_dir, names, secs, conns=4, timeout=5,
                 ctype=CT_REPORT):
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        self.argv = [WRK, "-t1", "-c%d" % conns, "-d%ds" % secs,
                     "--timeout", "%ds" % timeout, "-s", WRK_LUA, url,
                     "--", req_dir, ",".join(names), path, ctype]
        self.conns = conns
        self.proc = None
        self.statuses = {}
        self.errors = {}

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        return self

    def wait(self, timeout=60):
        out, _ = self.proc.communicate(timeout=timeout)
        self.output = out
        st = re.search(r"^WRK-STATUS(.*)$", out, re.M)
        er = re.search(r"^WRK-ERRORS(.*)$", out, re.M)
        assert st and er, "wrk said:\n" + out
        self.statuses = {int(k): int(v) for k, v in
                         re.findall(r"(\d+)=(\d+)", st.group(1))}
        self.errors = {k: int(v) for k, v in
                       re.findall(r"(\w+)=(\d+)", er.group(1))}
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # the tallies
    @property
    def ok(self):
        return sum(v for k, v in self.statuses.items() if 200 <= k < 300)

    @property
    def unavailable(self):
        return self.statuses.get(503, 0)

    @property
    def other(self):
        return {k: v for k, v in self.statuses.items()
                if not (200 <= k < 300 or k == 503)}

    @property
    def sockerr(self):
        """Requests that got no answer (connection closed, reset,
        timed out)."""
        return sum(self.errors.get(k, 0) for k in
                   ("connect", "read", "write", "timeout"))

    @property
    def requests(self):
        return sum(self.statuses.values()) + self.sockerr


def fault_line(server, fault, counts, lost, extra=""):
    """The one summary line of a fault test, printed (pytest -s shows
    it) and returned: FAULT <server> <fault>: requests=... lost=N.
    counts: a Wrk, or a dict with the same tallies."""
    if isinstance(counts, Wrk):
        counts = {"requests": counts.requests, "2xx": counts.ok,
                  "503": counts.unavailable,
                  "other": sum(counts.other.values()),
                  "sockerr": counts.sockerr}
    line = "FAULT %s %s: requests=%d 2xx=%d 503=%d other=%d sockerr=%d " \
           "lost=%d%s" % (server, fault, counts["requests"], counts["2xx"],
                          counts["503"], counts["other"], counts["sockerr"],
                          lost, (" " + extra) if extra else "")
    print("\n" + line, flush=True)
    log = os.environ.get("MDM_FAULT_LOG")
    if log:
        with open(log, "a") as f:
            f.write(line + "\n")
    return line


# ------------------------------------------------------- stored state

def base_of(prefix, eid):
    d, _, rest = eid.partition(":")
    return "%s{%s}%s" % (prefix, d, ":" + rest if rest else "")


def queue_state(rc, eid, prefix="mdm:"):
    """(queued uuids in order, problems) of one enrollment, read straight
    from Redis (core/lua/KEYS.md): no uuid twice in the queue, every
    queued uuid has its command body and no body is left without a queue
    entry, the NotNow set names queued commands only."""
    b = base_of(prefix, eid)
    q = [x.decode() for x in rc.lrange(b + ":q", 0, -1)]
    bodies = {x.decode() for x in rc.hkeys(b + ":cmd")}
    nn = {x.decode() for x in rc.smembers(b + ":nn")}
    problems = []
    if len(set(q)) != len(q):
        problems.append("duplicate uuids in the queue: %r" % q)
    if set(q) - bodies:
        problems.append("queued without a body: %r" % sorted(set(q) -
                                                              bodies))
    if bodies - set(q):
        problems.append("bodies not queued: %r" % sorted(bodies - set(q)))
    if nn - set(q):
        problems.append("NotNow set names unqueued: %r" % sorted(nn -
                                                                 set(q)))
    return q, problems
