#!/usr/bin/python3
"""The demo's scripted device: talks to nginx with ngx_mdm over HTTPS,
signing every message with Mdm-Signature, and prints each exchange.

usage: demo-device.py PKI_DIR BASE_URL TOPIC UDID enroll|poll|renew|checkout
       [IDENT]

IDENT names the identity PKI_DIR/IDENT.pem + IDENT.key (default dev1).
"""
import hashlib
import os
import plistlib
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "t", "integration"))
from mdmdevice import Device  # noqa: E402  (the test suite's simulator)


class Pki:
    def __init__(self, d):
        self.dir = d
        self.root = os.path.join(d, "root.pem")

    def cert(self, name):
        return os.path.join(self.dir, name + ".pem")

    def key(self, name):
        return os.path.join(self.dir, name + ".key")


class Server:
    def __init__(self, base, topic):
        self.base_url = base
        self.proxied_url = base
        self.topic = topic


def show(what, r):
    extra = ""
    if r.content:
        cmd = plistlib.loads(r.content)
        extra = "  <- command %s (%s)" % (cmd["CommandUUID"],
                                         cmd["Command"]["RequestType"])
    print("device -> %-34s HTTP %d%s" % (what, r.status_code, extra))
    return r


def renew(dev, pki, udid):
    """Identity renewal: install the SCEP payload of the InstallProfile the
    sweep queued (scepclient), then check in with the new certificate."""
    r = show("PUT /mdm/connect Idle", dev.idle())
    cmd = plistlib.loads(r.content)
    prof = plistlib.loads(cmd["Command"]["Payload"])
    c = [p for p in prof["PayloadContent"]
         if p["PayloadType"] == "com.apple.security.scep"][0]["PayloadContent"]
    cn = dict(rdn[0] for rdn in c["Subject"])["CN"]
    print("   renewal profile: SCEP Subject CN %s, one-time Challenge %s..."
          % (cn, c["Challenge"][:8]))
    with open(os.path.join(pki, "scep-ca.pem"), "rb") as f:
        der = subprocess.run(["openssl", "x509", "-outform", "DER"], input=f.read(),
                             capture_output=True, check=True).stdout
    d = os.path.join(pki, "renew")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    p = subprocess.run(["scepclient", "-server-url", c["URL"], "-challenge",
                        c["Challenge"], "-private-key", d + "/key.pem",
                        "-certificate", d + "/cert.pem", "-cn", cn,
                        "-organization", "Demo", "-ca-fingerprint",
                        hashlib.sha256(der).hexdigest(), "-keySize", "2048"],
                       capture_output=True, text=True, cwd=d)
    print("   scepclient: exit %d, new certificate %s" % (
        p.returncode, "issued" if p.returncode == 0 else p.stderr[-200:]))
    shutil.copy(d + "/cert.pem", os.path.join(pki, "renewed.pem"))
    shutil.copy(d + "/key.pem", os.path.join(pki, "renewed.key"))
    show("PUT /mdm/connect Acknowledged", dev.ack(cmd["CommandUUID"]))
    new = Device(dev.server, dev.pki, udid=udid, ident="renewed")
    print("   with the new certificate:")
    show("PUT /mdm/connect Idle", new.idle())
    print("   with the old certificate:")
    show("PUT /mdm/connect Idle", dev.idle())


def main():
    pki, base, topic, udid, step = sys.argv[1:6]
    ident = sys.argv[6] if len(sys.argv) > 6 else "dev1"
    dev = Device(Server(base, topic), Pki(pki), udid=udid, ident=ident)
    if step == "enroll":
        show("PUT /mdm/checkin Authenticate", dev.authenticate())
        show("PUT /mdm/checkin TokenUpdate", dev.token_update())
    elif step == "poll":
        r = show("PUT /mdm/connect Idle", dev.idle())
        while r.status_code == 200 and r.content:
            uuid = plistlib.loads(r.content)["CommandUUID"]
            r = show("PUT /mdm/connect Acknowledged", dev.ack(
                uuid, QueryResponses={"OSVersion": "14.5",
                                      "SerialNumber": "C02DEMO0001"}))
    elif step == "renew":
        renew(dev, pki, udid)
    elif step == "checkout":
        show("PUT /mdm/checkin CheckOut", dev.checkout())
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
