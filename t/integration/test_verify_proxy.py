"""mdm_verify: identity checked in nginx, verified identity passed to an
ordinary proxy_pass upstream, forgeries refused with 400."""

import plistlib

import pytest
import requests

from mdmdevice import (CT_CHECKIN, CT_REPORT, Device, cert_sha256, rfc9440,
                       sign)


def proxy_device(server, pki, **kw):
    return Device(server, pki, base_url=server.verify_url, **kw)


def only_request(upstream):
    assert len(upstream.requests) == 1, upstream.requests
    return upstream.requests[0]


@pytest.mark.parametrize("kind", ["checkin", "report"])
def test_signed_request_reaches_upstream(kind, server, pki, upstream):
    d = proxy_device(server, pki)
    if kind == "checkin":
        body = plistlib.dumps(d.authenticate_msg())
    else:
        body = plistlib.dumps({"Status": "Idle", "UDID": d.udid})
    r = d.send_raw(kind, body)
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.text == "upstream-ok"
    u = only_request(upstream)
    assert u["method"] == "PUT"
    assert u["path"] == ("/mdm/checkin" if kind == "checkin"
                         else "/mdm/connect")
    assert u["body"] == body
    h = u["headers"]
    assert h["client-cert"] == rfc9440(d.cert_path)
    assert h["x-enrollment-id"] == d.udid
    assert h["x-mdm-udid"] == d.udid
    assert h["x-mdm-cert-sha256"].lower() == cert_sha256(d.cert_path)
    assert "mdm-signature" not in h, h
    assert h["content-type"] == (CT_CHECKIN if kind == "checkin"
                                 else CT_REPORT)


def test_tls_identity_reaches_upstream(server, pki, upstream):
    d = proxy_device(server, pki, ident="dev2", identity="tls")
    r = d.idle()
    assert r.status_code == 200, (r.status_code, r.text)
    h = only_request(upstream)["headers"]
    assert h["client-cert"] == rfc9440(pki.cert("dev2"))
    assert h["x-mdm-udid"] == d.udid


def test_user_channel_ids(server, pki, upstream):
    d = proxy_device(server, pki, user_id="B0B0B0B0-0000-1111-2222-333344445555")
    r = d.idle()
    assert r.status_code == 200, (r.status_code, r.text)
    h = only_request(upstream)["headers"]
    assert h["x-enrollment-id"] == d.udid + ":" + d.user_id
    assert h["x-mdm-udid"] == d.udid


def test_client_supplied_headers_are_replaced(server, pki, upstream):
    d = proxy_device(server, pki)
    forged = rfc9440(pki.cert("stranger"))
    r = d.send("report", {"Status": "Idle", "UDID": d.udid},
                             headers={"Client-Cert": forged,
                                      "X-Enrollment-ID": "someone-else",
                                      "X-MDM-UDID": "someone-else"})
    assert r.status_code == 200, r.text
    u = only_request(upstream)
    assert u["headers"]["client-cert"] == rfc9440(d.cert_path)
    assert u["headers"]["x-enrollment-id"] == d.udid
    for k, v in u["raw_headers"]:
        assert v != forged and v != "someone-else", (k, v)


def forge_cases(d, pki):
    body = plistlib.dumps({"Status": "Idle", "UDID": d.udid})
    return {
        "stranger": (body, {"Mdm-Signature": sign(
            body, pki.cert("stranger"), pki.key("stranger"))}, "MDM02005"),
        "expired": (body, {"Mdm-Signature": sign(
            body, pki.cert("expired"), pki.key("expired"))}, "MDM02005"),
        "tampered": (body.replace(b"Idle", b"Idl\x65 "),
                     {"Mdm-Signature": sign(body, d.cert_path, d.key_path)},
                     "MDM02002"),
        "garbage signature": (body, {"Mdm-Signature": "AAAA"}, "MDM02002"),
        "no identity": (body, {}, "MDM02001"),
    }


@pytest.mark.parametrize("case", ["stranger", "expired", "tampered",
                                  "garbage signature", "no identity"])
def test_forged_requests_refused(case, server, pki, upstream):
    d = proxy_device(server, pki, identity="none")
    body, headers, mdm_id = forge_cases(d, pki)[case]
    mark = server.log_mark()
    r = d.send_raw("report", body, headers=headers)
    assert r.status_code == 400, (r.status_code, r.text)
    server.wait_log_id(mdm_id, mark)
    assert upstream.requests == []


def test_stranger_tls_refused(server, pki, upstream):
    d = proxy_device(server, pki, ident="stranger", identity="tls")
    mark = server.log_mark()
    r = d.idle()
    assert r.status_code == 400, (r.status_code, r.text)
    server.wait_log_id("MDM02005", mark)
    assert upstream.requests == []


def test_oversized_refused(server, pki, upstream):
    from test_refusals import raw_put
    assert raw_put(server, pki, "/mdm/connect", 2 * 1024 * 1024,
                   url=server.verify_url) == 413
    assert upstream.requests == []


@pytest.mark.parametrize("size", [70000, 900000])
def test_large_body_reaches_upstream(size, server, pki, upstream):
    """A body of many buffers, with a Content-Length: whole upstream."""
    d = proxy_device(server, pki)
    body = plistlib.dumps({"Status": "Idle", "UDID": d.udid,
                           "Pad": "%x" % size * (size // len("%x" % size))})
    r = d.send_raw("report", body)
    assert r.status_code == 200, (r.status_code, r.text)
    u = only_request(upstream)
    assert len(u["body"]) == len(body) and u["body"] == body
    assert u["headers"]["content-length"] == str(len(body))


def test_chunked_body_reaches_upstream(server, pki, upstream):
    """A chunked device body (no Content-Length) is verified and reaches
    the upstream whole, with a Content-Length (nginx buffers it; Apache
    spools it: proxy-sendcl)."""
    d = proxy_device(server, pki)
    body = plistlib.dumps({"Status": "Idle", "UDID": d.udid,
                           "Pad": "x" * 200000})
    h = {"Content-Type": CT_REPORT}
    h.update(d.identity_headers(body))
    r = d.session.put(server.verify_url + "/mdm/connect",
                      data=iter([body[:1000], body[1000:]]), headers=h,
                      timeout=15)
    assert r.status_code == 200, (r.status_code, r.text)
    u = only_request(upstream)
    assert u["body"] == body
    assert u["headers"]["content-length"] == str(len(body))
    assert u["headers"]["x-mdm-udid"] == d.udid


def test_identity_per_request_on_one_connection(server, pki, upstream):
    """Requests of different devices on one keep-alive connection: each
    is verified on its own, nothing of the previous one carries over."""
    d1 = proxy_device(server, pki)
    d2 = proxy_device(server, pki, ident="dev2")
    anon = proxy_device(server, pki, identity="none")
    d2.session = anon.session = d1.session
    for d in (d1, d2, d1):
        upstream.clear()
        r = d.idle()
        assert r.status_code == 200, (r.status_code, r.text)
        h = only_request(upstream)["headers"]
        assert h["client-cert"] == rfc9440(d.cert_path)
        assert h["x-mdm-udid"] == d.udid
    upstream.clear()
    mark = server.log_mark()
    r = anon.idle()
    assert r.status_code == 400, (r.status_code, r.text)
    server.wait_log_id("MDM02001", mark)
    assert upstream.requests == []
    # and the connection still serves a good one
    r = d2.idle()
    assert r.status_code == 200, (r.status_code, r.text)


def test_chunked_oversized_refused(server, pki, upstream):
    d = proxy_device(server, pki)
    body = plistlib.dumps({"Status": "Idle", "UDID": d.udid,
                           "Pad": "x" * 1500000})
    h = {"Content-Type": CT_REPORT}
    h.update(d.identity_headers(body))
    try:
        r = d.session.put(server.verify_url + "/mdm/connect",
                          data=iter([body]), headers=h, timeout=15)
        assert r.status_code == 413, (r.status_code, [
            (u["headers"].get("content-length"), len(u["body"]))
            for u in upstream.requests])
    except requests.exceptions.ConnectionError:
        pass  # the server may close while we still send
    assert upstream.requests == []
