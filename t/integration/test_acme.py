"""ACME with device attestation, against both servers: Debian's
python3-acme drives RFC 8555 (directory, nonces, account, order,
authorization, finalize, certificate) against `mdm_acme` /
`SetHandler mdm-acme`; the device-attest-01 answer is an "apple"
attestation object built here (python3-cbor2) with a test PKI standing in
for Apple's Enterprise Attestation root (python3-cryptography). The
certificate comes from the built-in SCEP CA. Refusals (bad nonce, bad
signature, wrong root, wrong freshness code, identifier mismatch, key
mismatch) answer a problem document, log one MDM15nnn line and store
nothing."""

import base64
import datetime
import hashlib
import json
import os
import plistlib
import subprocess

import cbor2
import josepy as jose
import OpenSSL
import pytest
import requests
from acme import challenges, client, errors, messages
from mdmdevice import new_session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

import conftest

OID_NONCE = x509.ObjectIdentifier("1.2.840.113635.100.8.11.1")
OID_SERIAL = x509.ObjectIdentifier("1.2.840.113635.100.8.9.1")
OID_UDID = x509.ObjectIdentifier("1.2.840.113635.100.8.9.2")
OID_PERMANENT_ID = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.3")
SERIAL = "C02TESTSERIAL"
UDID = "00008030-0011223344556677"
PREFIX = "mdm:{acme}:"


@challenges.ChallengeResponse.register
class DeviceAttest01Response(challenges.ChallengeResponse):
    """The device-attest-01 answer: {"attObj": base64url(CBOR)}."""
    typ = "device-attest-01"
    attObj: str = jose.field("attObj")


# ------------------------------------------------------------ test PKI

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, key, issuer, issuer_key, ca, exts=()):
    now = datetime.datetime.utcnow()
    b = (x509.CertificateBuilder().subject_name(_name(subject))
         .issuer_name(_name(issuer)).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=2)))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None),
                            critical=True)
        b = b.add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False,
            key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    for oid, value in exts:
        b = b.add_extension(x509.UnrecognizedExtension(oid, value),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


class AttestPki:
    """A root and an intermediate standing in for Apple's Enterprise
    Attestation CAs."""

    def __init__(self, name):
        self.name = name
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = _cert(name + " Root", self.root_key, name + " Root",
                          self.root_key, True)
        self.int_key = ec.generate_private_key(ec.SECP384R1())
        self.inter = _cert(name + " Sub", self.int_key, name + " Root",
                           self.root_key, True)

    def att_obj(self, device_key, token, serial=SERIAL, udid=UDID,
                nonce=None):
        if nonce is None:
            nonce = hashlib.sha256(token.encode()).digest()
        exts = [(OID_NONCE, nonce), (OID_SERIAL, serial.encode()),
                (OID_UDID, udid.encode())]
        leaf = _cert("attestation", device_key, self.name + " Sub",
                     self.int_key, False, exts)
        der = serialization.Encoding.DER
        return cbor2.dumps({
            "fmt": "apple",
            "attStmt": {"x5c": [leaf.public_bytes(der),
                                self.inter.public_bytes(der)]},
            "authData": os.urandom(37)})


def verify_issued(leaf, ca):
    pub = ca.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        pub.verify(leaf.signature, leaf.tbs_certificate_bytes,
                   ec.ECDSA(leaf.signature_hash_algorithm))
    else:
        pub.verify(leaf.signature, leaf.tbs_certificate_bytes,
                   padding.PKCS1v15(), leaf.signature_hash_algorithm)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# ------------------------------------------------------------- servers

@pytest.fixture(scope="session")
def apple():
    return AttestPki("Test Enterprise Attestation")


@pytest.fixture(scope="session")
def acme_server(server, tmp_path_factory, pki, redis, upstream, apple):
    """The example configuration plus an ACME location on the SCEP
    server (which has the CA): http://127.0.0.1:SCEP_PORT/acme."""
    run = str(tmp_path_factory.mktemp(server.name + "-acme-run"))
    root_file = os.path.join(run, "attest-root.pem")
    os.makedirs(run, exist_ok=True)
    with open(root_file, "wb") as f:
        f.write(apple.root.public_bytes(serialization.Encoding.PEM))
    conftest.open_parents(run, os.path.dirname(os.path.dirname(run)))
    base = type(server)

    class AcmeServer(base):
        def adjust(self, name, text, run):
            text = super().adjust(name, text, run)
            url = "http://127.0.0.1:%d/acme" % self.scep_port
            if self.name == "nginx" and name == "mdm-enroll.conf":
                anchor = "    location = /scep {"
                assert anchor in text
                text = text.replace(anchor, (
                    "    location /acme/ {\n"
                    "        mdm_acme;\n"
                    "        mdm_acme_url %s;\n"
                    "        mdm_acme_attest_ca %s;\n"
                    "    }\n" % (url, root_file)) + anchor, 1)
            # the enrollment profile carries the ACME payload instead
            prof = ("https://localhost:%d/acme/directory" % self.port,
                    SERIAL)
            if self.name == "nginx" and name == "mdm-server.conf":
                anchor = "        mdm_profile;\n"
                assert anchor in text
                text = text.replace(anchor, anchor + (
                    "        mdm_profile_acme_url %s;\n"
                    "        mdm_profile_acme_client_identifier %s;\n"
                    % prof), 1)
            if self.name == "apache" and name == "mdm-vhost.conf":
                anchor = "        SetHandler mdm-profile\n"
                assert anchor in text
                text = text.replace(anchor, anchor + (
                    "        MDMProfileACMEURL %s\n"
                    "        MDMProfileACMEClientIdentifier %s\n" % prof),
                    1)
            if self.name == "apache" and name == "mdm-enroll.conf":
                anchor = '    <LocationMatch "^/scep$">'
                assert anchor in text
                text = text.replace(anchor, (
                    "    <Location /acme>\n"
                    "        SetHandler mdm-acme\n"
                    "        MDMACMEURL %s\n"
                    "        MDMACMEAttestCA %s\n"
                    "        Require all granted\n"
                    "    </Location>\n" % (url, root_file)) + anchor, 1)
            return text

    srv = AcmeServer(run, pki, redis, upstream)
    srv.start()
    srv.acme_url = "http://127.0.0.1:%d/acme" % srv.scep_port
    yield srv
    srv.stop()
    bad = srv.bad_lines()
    assert not bad, "%s (ACME) error log has alerts:\n%s" % (
        srv.name, "\n".join(bad))


def acme_client(srv, key=None, alg=None):
    if key is None:
        key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
        alg = jose.ES256
    net = client.ClientNetwork(key, alg=alg or jose.RS256,
                               user_agent="libmdm-test")
    directory = client.ClientV2.get_directory(srv.acme_url + "/directory",
                                              net)
    c = client.ClientV2(directory, net)
    c.regr = c.new_account(messages.NewRegistration.from_data(
        email="admin@example.com", terms_of_service_agreed=True))
    net.account = c.regr
    return c


def new_order(c, ident=SERIAL):
    order = messages.NewOrder(identifiers=[messages.Identifier(
        typ=messages.IdentifierType("permanent-identifier"), value=ident)])
    resp = c._post(c.directory["newOrder"], order)
    body = messages.Order.from_json(resp.json())
    authzs = [c._authzr_from_response(c._post_as_get(u), uri=u)
              for u in body.authorizations]
    return resp, body, authzs


def device_csr(device_key):
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([
               x509.NameAttribute(NameOID.ORGANIZATION_NAME, "libmdm test"),
               x509.NameAttribute(NameOID.COMMON_NAME, "ACME device")]))
           .sign(device_key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


def acme_state(redis):
    """Every ACME key but the nonces, with its content."""
    r = redis.client()
    out = {}
    for k in r.scan_iter(PREFIX + "*"):
        k = k.decode()
        if k.startswith(PREFIX + "nonce:"):
            continue
        out[k] = r.hgetall(k)
    return out


def raw_post(c, url, obj, nonce=None, tamper=None):
    """A JWS POST outside the client's nonce handling and retries."""
    net = c.net
    if nonce is None:
        nonce = net._get_nonce(url, c.directory["newNonce"])
    data = net._wrap_in_jws(obj, nonce, url)
    if tamper:
        data = tamper(data)
    return requests.post(url, data=data,
                         headers={"Content-Type": "application/jose+json"},
                         timeout=10)


def challenge_of(authzr):
    [challb] = authzr.body.challenges
    assert challb.chall.jobj["type"] == "device-attest-01"
    return challb, challb.chall.jobj["token"]


def assert_problem(resp, status, typ, mdm_id, srv, mark):
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith(
        "application/problem+json")
    doc = resp.json()
    assert doc["type"] == "urn:ietf:params:acme:error:" + typ, doc
    lines = srv.wait_log_id(mdm_id, mark)
    assert len(lines) == 1, lines


# --------------------------------------------------------------- tests

def test_directory_and_nonce(acme_server):
    d = requests.get(acme_server.acme_url + "/directory", timeout=5)
    assert d.status_code == 200
    j = d.json()
    assert j["newNonce"] == acme_server.acme_url + "/new-nonce"
    assert j["newOrder"] == acme_server.acme_url + "/new-order"
    h = requests.head(j["newNonce"], timeout=5)
    assert h.status_code == 200
    assert len(h.headers["Replay-Nonce"]) >= 22
    assert h.headers["Cache-Control"] == "no-store"
    g = requests.get(j["newNonce"], timeout=5)
    assert g.status_code == 204
    assert g.headers["Replay-Nonce"] != h.headers["Replay-Nonce"]


@pytest.mark.parametrize("keytype", ["ec", "rsa"])
def test_device_attest_flow(acme_server, apple, pki, redis, keytype):
    if keytype == "rsa":
        c = acme_client(acme_server, jose.JWKRSA(
            key=rsa.generate_private_key(65537, 2048)), jose.RS256)
    else:
        c = acme_client(acme_server)
    assert c.regr.uri.startswith(acme_server.acme_url + "/acct/")
    resp, order, [authzr] = new_order(c)
    assert resp.status_code == 201
    assert order.status == messages.STATUS_PENDING
    challb, token = challenge_of(authzr)

    device_key = ec.generate_private_key(ec.SECP256R1())
    att = apple.att_obj(device_key, token)
    r = c.answer_challenge(challb, DeviceAttest01Response(attObj=b64url(att)))
    assert r.body.status == messages.STATUS_VALID
    authzr, _ = c.poll(authzr)
    assert authzr.body.status == messages.STATUS_VALID

    orderr = messages.OrderResource(body=order, uri=resp.headers["Location"],
                                    authorizations=[authzr],
                                    csr_pem=device_csr(device_key))
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=10)
    done = c.finalize_order(orderr, deadline)
    assert done.body.status == messages.STATUS_VALID
    pems = done.fullchain_pem.split("-----END CERTIFICATE-----")
    chain = [x509.load_pem_x509_certificate(
        (p + "-----END CERTIFICATE-----\n").encode())
        for p in pems if "BEGIN CERTIFICATE" in p]
    assert len(chain) >= 2
    leaf = chain[0]
    with open(os.path.join(pki.dir, "scep-ca.pem"), "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    assert leaf.issuer == ca.subject
    verify_issued(leaf, ca)
    assert leaf.public_key().public_numbers() == \
        device_key.public_key().public_numbers()
    san = leaf.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    others = [n for n in san if isinstance(n, x509.OtherName)]
    assert others and others[0].type_id == OID_PERMANENT_ID
    assert SERIAL.encode() in others[0].value
    assert leaf.subject.get_attributes_for_oid(
        NameOID.COMMON_NAME)[0].value == "ACME device"
    state = acme_state(redis)
    orders = [v for k, v in state.items() if ":order:" in k]
    assert orders and orders[0][b"status"] == b"valid"


def test_udid_identifier(acme_server, apple):
    c = acme_client(acme_server)
    resp, order, [authzr] = new_order(c, UDID)
    challb, token = challenge_of(authzr)
    key = ec.generate_private_key(ec.SECP256R1())
    r = c.answer_challenge(challb, DeviceAttest01Response(
        attObj=b64url(apple.att_obj(key, token))))
    assert r.body.status == messages.STATUS_VALID


def test_bad_nonce(acme_server, redis):
    c = acme_client(acme_server)
    before = acme_state(redis)
    mark = acme_server.log_mark()
    order = messages.NewOrder(identifiers=[messages.Identifier(
        typ=messages.IdentifierType("permanent-identifier"), value=SERIAL)])
    resp = raw_post(c, c.directory["newOrder"], order,
                    nonce=os.urandom(16))
    assert_problem(resp, 400, "badNonce", "MDM15040", acme_server, mark)
    assert "Replay-Nonce" in resp.headers
    assert acme_state(redis) == before


def test_bad_signature(acme_server, redis):
    c = acme_client(acme_server)
    before = acme_state(redis)
    mark = acme_server.log_mark()
    order = messages.NewOrder(identifiers=[messages.Identifier(
        typ=messages.IdentifierType("permanent-identifier"), value=SERIAL)])

    def tamper(data):
        j = json.loads(data)
        sig = bytearray(base64.urlsafe_b64decode(j["signature"] + "=="))
        sig[5] ^= 1
        j["signature"] = b64url(bytes(sig))
        return json.dumps(j)

    resp = raw_post(c, c.directory["newOrder"], order, tamper=tamper)
    assert_problem(resp, 400, "malformed", "MDM15006", acme_server, mark)
    assert acme_state(redis) == before


def test_not_jose(acme_server, redis):
    mark = acme_server.log_mark()
    resp = requests.post(acme_server.acme_url + "/new-order", data="{}",
                         headers={"Content-Type": "application/json"},
                         timeout=5)
    assert_problem(resp, 415, "malformed", "MDM15003", acme_server, mark)
    mark = acme_server.log_mark()
    resp = requests.post(acme_server.acme_url + "/new-order", data="{x",
                         headers={"Content-Type": "application/jose+json"},
                         timeout=5)
    assert_problem(resp, 400, "malformed", "MDM15004", acme_server, mark)
    assert acme_state(redis) == {}


def _refused_challenge(acme_server, redis, apple, make_att, status, typ,
                       mdm_id, ident=SERIAL):
    c = acme_client(acme_server)
    resp, order, [authzr] = new_order(c, ident)
    challb, token = challenge_of(authzr)
    before = acme_state(redis)
    mark = acme_server.log_mark()
    key = ec.generate_private_key(ec.SECP256R1())
    r = raw_post(c, challb.uri, DeviceAttest01Response(
        attObj=b64url(make_att(key, token))))
    assert_problem(r, status, typ, mdm_id, acme_server, mark)
    assert acme_state(redis) == before
    authzr, _ = c.poll(authzr)
    assert authzr.body.status == messages.STATUS_PENDING


def test_wrong_root(acme_server, redis, apple):
    other = AttestPki("Stranger")
    _refused_challenge(acme_server, redis, apple, other.att_obj, 400,
                       "badAttestationStatement", "MDM15021")


def test_wrong_attestation_nonce(acme_server, redis, apple):
    _refused_challenge(
        acme_server, redis, apple,
        lambda key, token: apple.att_obj(
            key, token, nonce=hashlib.sha256(b"another token").digest()),
        400, "badAttestationStatement", "MDM15022")


def test_identifier_mismatch(acme_server, redis, apple):
    _refused_challenge(acme_server, redis, apple, apple.att_obj, 400,
                       "badAttestationStatement", "MDM15023",
                       ident="C02SOMEONEELSE")


def test_malformed_attestation(acme_server, redis, apple):
    _refused_challenge(acme_server, redis, apple,
                       lambda key, token: b"\xa1\x63fmt\x65apple\x00",
                       400, "badAttestationStatement", "MDM15020")


def test_csr_key_must_be_attested(acme_server, redis, apple):
    c = acme_client(acme_server)
    resp, order, [authzr] = new_order(c)
    challb, token = challenge_of(authzr)
    key = ec.generate_private_key(ec.SECP256R1())
    c.answer_challenge(challb, DeviceAttest01Response(
        attObj=b64url(apple.att_obj(key, token))))
    before = acme_state(redis)
    mark = acme_server.log_mark()
    other = ec.generate_private_key(ec.SECP256R1())
    csr = OpenSSL.crypto.load_certificate_request(
        OpenSSL.crypto.FILETYPE_PEM, device_csr(other))
    r = raw_post(c, order.finalize, messages.CertificateRequest(
        csr=jose.ComparableX509(csr)))
    assert_problem(r, 400, "badCSR", "MDM15031", acme_server, mark)
    assert acme_state(redis) == before


def test_other_account_cannot_read(acme_server, redis, apple):
    c1 = acme_client(acme_server)
    resp, order, [authzr] = new_order(c1)
    c2 = acme_client(acme_server)
    mark = acme_server.log_mark()
    with pytest.raises(messages.Error) as e:
        c2._post_as_get(authzr.uri)
    assert e.value.typ == "urn:ietf:params:acme:error:unauthorized"
    acme_server.wait_log_id("MDM15044", mark)


def test_unknown_account(acme_server, redis):
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(key, alg=jose.ES256, user_agent="t")
    directory = client.ClientV2.get_directory(
        acme_server.acme_url + "/directory", net)
    c = client.ClientV2(directory, net)
    mark = acme_server.log_mark()
    with pytest.raises((messages.Error, errors.Error)) as e:
        c.new_account(messages.NewRegistration(only_return_existing=True))
    assert "accountDoesNotExist" in str(e.value)
    acme_server.wait_log_id("MDM15041", mark)
    assert acme_state(redis) == {}


def test_profile_has_acme_payload(acme_server, pki, tmp_path):
    r = new_session(pki).get(acme_server.base_url + "/mdm/enroll",
                             auth=acme_server.admin_auth, timeout=10)
    assert r.status_code == 200, r.text
    signed, out = str(tmp_path / "p.der"), str(tmp_path / "p.plist")
    with open(signed, "wb") as f:
        f.write(r.content)
    subprocess.run(["openssl", "cms", "-verify", "-inform", "DER", "-in",
                    signed, "-CAfile", pki.root, "-out", out],
                   check=True, capture_output=True)
    with open(out, "rb") as f:
        profile = plistlib.load(f)
    pl = {p["PayloadType"]: p for p in profile["PayloadContent"]}
    assert "com.apple.security.scep" not in pl
    acme = pl["com.apple.security.acme"]
    assert acme["DirectoryURL"] == \
        "https://localhost:%d/acme/directory" % acme_server.port
    assert acme["ClientIdentifier"] == SERIAL
    assert acme["KeyType"] == "ECSECPrimeRandom"
    assert acme["KeySize"] == 384
    assert acme["HardwareBound"] is True and acme["Attest"] is True
    assert acme["Subject"] == [[["O", "libmdm test"]],
                               [["CN", "MDM Identity"]]]
    assert acme["ExtendedKeyUsage"] == ["1.3.6.1.5.5.7.3.2"]
    assert pl["com.apple.mdm"]["IdentityCertificateUUID"] == \
        acme["PayloadUUID"]


# ------------------------------------------------------ configuration

# case: (nginx old, nginx new, apache old, apache new, directives named)
BROKEN = {
    "no-url": ("        mdm_acme_url ", "        # ",
               "        MDMACMEURL ", "        # ",
               ("mdm_acme", "MDMACMEURL")),
    "bad-url": ("        mdm_acme_url http://", "        mdm_acme_url ftp://",
                "        MDMACMEURL http://", "        MDMACMEURL ftp://",
                ("mdm_acme_url", "MDMACMEURL")),
    "no-root-file": ("attest-root.pem;", "no-such-root.pem;",
                     "attest-root.pem\n", "no-such-root.pem\n",
                     ("mdm_acme_attest_ca", "MDMACMEAttestCA")),
    "bad-ttl": ("        mdm_acme;\n", "        mdm_acme;\n"
                "        mdm_acme_order_ttl 5;\n",
                "        SetHandler mdm-acme\n", "        SetHandler mdm-acme\n"
                "        MDMACMEOrderTTL 5\n",
                ("mdm_acme_order_ttl", "MDMACMEOrderTTL")),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_config(acme_server, tmp_path, case):
    n_old, n_new, a_old, a_new, named = BROKEN[case]
    old, new = (n_old, n_new) if acme_server.name == "nginx" else (a_old,
                                                                    a_new)

    def edit(name, text):
        if name == "mdm-enroll.conf":
            assert old in text, "%r not in %s" % (old, name)
            text = text.replace(old, new, 1)
        return text

    run = str(tmp_path / "run")
    os.makedirs(run)
    conftest.open_parents(run, str(tmp_path.parent))
    conf = acme_server.render(run, edit)
    t = acme_server.test_config(run, conf)
    assert t.returncode != 0, t.stderr
    want = named[0] if acme_server.name == "nginx" else named[1]
    assert want in t.stderr, t.stderr
