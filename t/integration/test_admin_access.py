"""Who may use the admin API. Every admin route, on each server, is
refused

- without the configured key (mdm_admin_key / MDMAdminKey, X-API-Key
  header) or with a wrong one: 403 and the same fixed JSON body
  (MDM05012) whatever was sent, so a wrong key learns nothing;
- without the web server's own access control: no or wrong basic auth
  (401 from nginx auth_basic / Apache Require valid-user), or from an
  address the location does not allow (403: nginx allow/deny, Apache
  Require ip), even with the right key;

and none of these refusals changes anything stored (Redis compared key
by key before and after). The device locations never answer as the
admin API, whatever credentials and paths are sent to them: they refuse
like device endpoints (400, 404, 405), never 200 or 401, and change
nothing.
"""

import base64
import http.client
import json
import ssl

import pytest

from mdmdevice import Admin, Device, command, new_session

# (name, method, path after /mdm/admin, JSON body or None); {id} is an
# enrolled device, {uuid} a command it answered
ROUTES = [
    ("enqueue", "POST", "/enqueue/{id}",
     {"CommandUUID": "ACCESS-CMD-0001",
      "Command": {"RequestType": "ProfileList"}}),
    ("push", "POST", "/push/{id}", None),
    ("enrollment", "GET", "/enrollments/{id}", None),
    ("queue", "GET", "/queue/{id}", None),
    ("queue-clear", "DELETE", "/queue/{id}", None),
    ("queue-delete", "DELETE", "/queue/{id}/{queued}", None),
    ("result", "GET", "/results/{id}/{uuid}", None),
    ("revoke", "POST", "/revoke/{id}", None),
    ("scep-challenge", "POST", "/scep/challenges", None),
    ("scep-revoke", "POST", "/scep/revoke/1234", None),
    ("scep-pending", "GET", "/scep/pending", None),
    ("renewals", "GET", "/renewals?days=400", None),
    ("renewals-run", "POST", "/renewals/run?days=400", None),
    ("ddm-declarations", "GET", "/ddm/declarations", None),
    ("ddm-set", "POST", "/ddm/sets/access-set", ["x"]),
    ("ddm-status", "GET", "/ddm/status/{id}", None),
    ("encrypted-profile", "POST", "/profiles/encrypted/{id}", None),
    ("unknown", "GET", "/no-such-route", None),
]

REFUSAL_403 = b'{"error":"missing or wrong X-API-Key","id":"MDM05012"}'


def snapshot(rc):
    """Every key with its type, value (DUMP) and whether it expires."""
    out = {}
    for k in rc.keys("*"):
        out[k] = (rc.type(k), rc.dump(k), rc.ttl(k) >= 0)
    return out


@pytest.fixture
def seeded(server, pki, redis):
    """A device with one answered command (a stored result) and one
    queued command: data a refusal must not show."""
    admin = Admin(server, pki)
    d = Device(server, pki).enroll()
    done, queued = command("DeviceInformation"), command("SecurityInfo")
    for c in (done, queued):
        assert admin.enqueue(d.udid, c, nopush=True).status_code == 200
    r = d.idle()
    assert done["CommandUUID"].encode() in r.content
    assert d.ack(done["CommandUUID"],
                 QueryResponses={"UDID": d.udid}).status_code == 200
    return {"id": d.udid, "uuid": done["CommandUUID"],
            "queued": queued["CommandUUID"], "token": d.token.hex(),
            "magic": d.magic}


def secrets(seeded):
    return [v.encode() for v in seeded.values()]


def call(server, pki, method, path, body, auth=True, key=True,
         headers=None):
    s = new_session(pki)
    h = dict(headers or {})
    if key is True:
        h["X-API-Key"] = server.admin_key
    elif key is not None:
        h["X-API-Key"] = key
    if body is not None:
        h["Content-Type"] = "application/json"
    return s.request(method, server.base_url + "/mdm/admin" + path,
                     data=json.dumps(body) if body is not None else None,
                     headers=h, timeout=15,
                     auth=(server.admin_auth if auth is True else auth))


def from_other_address(server, pki, method, path):
    """The right basic auth and key, from 127.0.0.2."""
    host, port = server.base_url.split("://")[1].split(":")
    ctx = ssl.create_default_context(cafile=pki.root)
    auth = base64.b64encode(("%s:%s" % server.admin_auth).encode()).decode()
    c = http.client.HTTPSConnection(host, int(port), context=ctx,
                                    timeout=10,
                                    source_address=("127.0.0.2", 0))
    try:
        c.request(method, "/mdm/admin" + path,
                  headers={"Authorization": "Basic " + auth,
                           "X-API-Key": server.admin_key})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


@pytest.mark.parametrize("route", ROUTES, ids=[r[0] for r in ROUTES])
def test_admin_route_access(route, server, pki, redis, seeded):
    _, method, path, body = route
    path = path.format(**seeded)
    rc = redis.client()
    before = snapshot(rc)
    leaks = secrets(seeded)
    mark = server.log_mark()
    k = server.admin_key

    # the key: missing, wrong, near misses, or somewhere else than the
    # header; always the same 403 body
    for key, extra in ((None, None), ("wrong-key", None), ("", None),
                       (k[:-1], None), (k + "x", None), (k.upper(), None),
                       (None, {"X-API-Key-Other": k}),
                       (None, {"Authorization-Key": k})):
        r = call(server, pki, method, path, body, key=key, headers=extra)
        assert r.status_code == 403, (key, extra, r.status_code, r.text)
        assert r.content == REFUSAL_403, r.content
        assert r.headers["Content-Type"].startswith("application/json")
    # the key in the query string instead of the header
    sep = "&" if "?" in path else "?"
    r = call(server, pki, method, path + sep + "X-API-Key=" + k, body,
             key=None)
    assert r.status_code == 403 and r.content == REFUSAL_403
    assert len(server.mdm_ids(mark)) >= 9
    assert set(server.mdm_ids(mark)) == {"MDM05012"}

    # the web server's own access control, the right key
    for auth in (None, ("admin", "wrong"), ("nobody", "x")):
        r = call(server, pki, method, path, body, auth=auth)
        assert r.status_code == 401, (auth, r.status_code, r.text)
        assert "WWW-Authenticate" in r.headers
        for s in leaks:
            assert s not in r.content
    st, content = from_other_address(server, pki, method, path)
    assert st == 403, st
    for s in leaks:
        assert s not in content

    # nothing changed
    assert snapshot(rc) == before

    # with everything right the same call is not refused for access
    r = call(server, pki, method, path, body)
    assert r.status_code not in (401, 403), (r.status_code, r.text)


# device-facing locations: (base url attribute, path)
DEVICE_PATHS = [
    ("base_url", "/mdm/checkin"),
    ("base_url", "/mdm/connect"),
    ("base_url", "/mdm"),
    ("proxied_url", "/mdm"),
]


@pytest.mark.parametrize("where", DEVICE_PATHS,
                         ids=["checkin", "connect", "combined", "proxied"])
def test_no_admin_at_device_location(where, server, pki, redis, seeded):
    attr, dpath = where
    base = getattr(server, attr)
    rc = redis.client()
    before = snapshot(rc)
    s = new_session(pki)
    s.auth = server.admin_auth
    s.headers["X-API-Key"] = server.admin_key
    env = json.dumps({"CommandUUID": "DEVICE-LOC-0001",
                      "Command": {"RequestType": "ProfileList"}})
    # the admin routes after, inside or instead of a device path
    suffixes = ["", "?/enqueue/{id}", "/enqueue/{id}", "/queue/{id}",
                "/admin/queue/{id}", "/results/{id}/{uuid}"]
    statuses = set()
    for suf in suffixes:
        url = base + dpath + suf.format(**seeded)
        if url.startswith(server.base_url + "/mdm/admin/"):
            continue  # that is the admin location itself
        for method in ("GET", "POST", "PUT", "DELETE"):
            r = s.request(method, url, data=env, timeout=15, headers={
                "Content-Type": "application/json"})
            statuses.add(r.status_code)
            assert r.status_code in (400, 404, 405), (method, url,
                                                      r.status_code, r.text)
            for sec in secrets(seeded):
                assert sec not in r.content, (method, url, r.text)
            if r.headers.get("Content-Type", "").startswith(
                    "application/json"):
                assert "commands" not in r.json() and \
                    "enrollments" not in r.json(), r.text
    assert 401 not in statuses
    assert snapshot(rc) == before


def test_verify_proxy_passes_no_admin(server, pki, redis, seeded, upstream):
    """The verifying proxy's location (mdm_verify / MDMVerify) in front of
    another server: an admin-looking request without a device identity
    is refused there (400) and never reaches the upstream."""
    s = new_session(pki)
    s.auth = server.admin_auth
    s.headers["X-API-Key"] = server.admin_key
    for path in ("/mdm/admin/queue/%s" % seeded["id"], "/mdm/enqueue/x"):
        for method in ("GET", "POST", "PUT"):
            r = s.request(method, server.verify_url + path, timeout=15,
                          data=b"{}")
            assert r.status_code in (400, 405), (method, path,
                                                 r.status_code, r.text)
    assert upstream.requests == []
