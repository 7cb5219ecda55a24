#!/usr/bin/python3
"""Write signed device requests for wrk: body and Mdm-Signature files.

usage: mkrequests.py PKI_DIR OUT_DIR UDID TOPIC
"""
import base64
import plistlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

pki, out, udid, topic = sys.argv[1:5]
cert = x509.load_pem_x509_certificate(open(pki + "/dev1.pem", "rb").read())
key = serialization.load_pem_private_key(
    open(pki + "/dev1.key", "rb").read(), None)


def write(name, msg):
    body = plistlib.dumps(msg)
    der = pkcs7.PKCS7SignatureBuilder().set_data(body).add_signer(
        cert, key, hashes.SHA256()).sign(serialization.Encoding.DER, [
            pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary,
            pkcs7.PKCS7Options.NoCapabilities])
    open(f"{out}/{name}.body", "wb").write(body)
    open(f"{out}/{name}.sig", "w").write(base64.b64encode(der).decode())


write("authenticate", {"MessageType": "Authenticate", "UDID": udid,
                       "Topic": topic, "SerialNumber": "C02BENCH0001"})
write("tokenupdate", {"MessageType": "TokenUpdate", "UDID": udid,
                      "Topic": topic, "Token": bytes(range(32)),
                      "PushMagic": "5F1A6B3C-0000-4000-8000-BENCH0000001"})
write("idle", {"UDID": udid, "Status": "Idle"})
write("ack", {"UDID": udid, "Status": "Acknowledged",
              "CommandUUID": "BENCH-ACK-0001"})
