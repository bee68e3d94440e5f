"""Security checks of the developer portal (DEV), the admin API (ADM), the signing keys (KEY) and
the discovery document (DISC): section 6 of the security-check reference.

Black-box: the portal's pages and forms as a browser uses them, the admin API at /admin/v1 with
keys made by the CLI, and the OpenAPI document the admin API publishes, which gives the route
list for ADM-01 and the schemas for ADM-05 (a small JSON-Schema subset is checked here; the
suite has no schemathesis). Helpers are shared with test_authorize_surface.py.
"""

from __future__ import annotations

import re
import secrets
import socket
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from scopegate import (
    DEMO_CLIENT_ID,
    DEMO_PASSWORD,
    DEVELOPER,
    HTTP_TIMEOUT,
    MEMBER,
    Server,
    parse_forms,
    scopegate_bin,
)
from test_authorize_surface import (
    admin_key,
    assert_no_cors,
    authorization_url,
    browser_sign_in_and_consent,
    discovery,
    full_flow,
    get,
    jwt_part,
    location,
    new_app,
    new_session,
    post,
    query_of,
    redeem,
    sign_in,
    token_request,
)


def api(server, method: str, path: str, key: str | None = None, **kw) -> requests.Response:
    headers = kw.pop("headers", {})
    if key:
        headers["Authorization"] = "Bearer " + key
    return requests.request(method, server.base + path, headers=headers, verify=server.cert,
                            timeout=HTTP_TIMEOUT, allow_redirects=False, **kw)


def csrf_of(session, server) -> str:
    """The signed-in session's CSRF token (every page's sign-out form carries it)."""
    page = get(session, server.base + "/developers/apps")
    return next(f for f in parse_forms(page.text) if f["action"] == "/logout")["hidden"]["csrf"]


def portal_action(session, server, client_id: str, action: str, **fields) -> requests.Response:
    data = dict(fields, csrf=csrf_of(session, server), action=action)
    return post(session, f"{server.base}/developers/apps/{client_id}/action", data=data)


def portal_create_app(session, server, name: str, redirect_uri: str = "https://client.example/cb"):
    """Creates an app on the portal; returns (client_id, client_secret, the 201 page)."""
    resp = post(session, server.base + "/developers/apps",
                data={"csrf": csrf_of(session, server), "name": name, "redirect_uri": redirect_uri})
    assert resp.status_code == 201, resp.text[:500]
    grab = lambda el: re.search(rf'id="{el}">([^<]+)<', resp.text).group(1)  # noqa: E731
    return grab("client-id"), grab("client-secret"), resp


def notice(resp: requests.Response) -> tuple[str, str]:
    """The ("ok"|"error", text) notice a portal POST redirects with."""
    assert resp.status_code == 303, resp.status_code
    q = parse_qs(urlsplit(location(resp)).query)
    kind = "ok" if "ok" in q else "error"
    return kind, q.get(kind, [""])[0]


def client_authenticates(server, client_id: str, secret: str) -> int:
    """The introspection endpoint's status for these credentials: 200 when they are valid."""
    return requests.post(server.introspection_endpoint, verify=server.cert, timeout=HTTP_TIMEOUT,
                         data={"client_id": client_id, "client_secret": secret, "token": "unknown"}).status_code


def second_developer(server) -> str:
    email = f"dev-{secrets.token_hex(4)}@scopegate.local"
    r = api(server, "POST", "/admin/v1/members", admin_key(server),
            json={"email": email, "password": DEMO_PASSWORD, "first_name": "Other", "last_name": "Developer"})
    assert r.status_code == 201, r.text
    return email


# 6. Developer portal ----------------------------------------------------------------------------


@pytest.mark.check("DEV-01")
def test_a_developer_cannot_read_change_or_delete_anothers_app(server):
    owner, intruder = new_session(server), new_session(server)
    sign_in(owner, server, second_developer(server))
    sign_in(intruder, server, DEVELOPER)
    victim, _, _ = portal_create_app(owner, server, "Victim app")
    before = server.cli("app", "show", victim)
    missing = "nosuchapp" + secrets.token_hex(3)
    for tab in ("", "/settings", "/auth", "/products"):
        assert get(intruder, f"{server.base}/developers/apps/{victim}{tab}").status_code == 404, tab
    assert victim not in get(intruder, server.base + "/developers/apps").text
    # Changes: the answer is the one for an app that does not exist, and nothing changes.
    settings = {"name": "Taken over", "privacy_policy_url": "", "logo_url": ""}
    r = post(intruder, f"{server.base}/developers/apps/{victim}/settings", data=dict(settings, csrf=csrf_of(intruder, server)))
    r0 = post(intruder, f"{server.base}/developers/apps/{missing}/settings", data=dict(settings, csrf=csrf_of(intruder, server)))
    assert r.status_code == r0.status_code and notice(r)[0] == "error"
    assert notice(r)[1].replace(victim, missing) == notice(r0)[1]
    for action, fields in [("rotate", {}), ("add-redirect", {"redirect_uri": "https://evil.example/cb"}),
                           ("remove-redirect", {"redirect_uri": "https://client.example/cb"}),
                           ("delete-secret", {"secret_id": str(before["secrets"][0]["id"])}),
                           ("request", {"program": "share-on-linkedin"}), ("delete", {})]:
        r = portal_action(intruder, server, victim, action, **fields)
        r0 = portal_action(intruder, server, missing, action, **fields)
        assert r.status_code in (303, 403, 404), (action, r.status_code)
        assert notice(r)[0] == "error" and notice(r)[1].replace(victim, missing) == notice(r0)[1], action
    after = server.cli("app", "show", victim)
    assert after == before


@pytest.mark.check("DEV-02")
def test_the_client_secret_is_shown_once_and_never_again(server):
    s = new_session(server)
    sign_in(s, server, DEVELOPER)
    client_id, secret, _ = portal_create_app(s, server, "Secret keeper")
    assert client_authenticates(server, client_id, secret) == 200
    for path in ("", "/settings", "/auth", "/products"):
        assert secret not in get(s, f"{server.base}/developers/apps/{client_id}{path}").text, path
    assert secret not in get(s, server.base + "/developers/apps").text
    key = admin_key(server)
    for path in (f"/admin/v1/apps/{client_id}", "/admin/v1/apps", "/admin/v1/audit?limit=1000"):
        assert secret not in api(server, "GET", path, key).text, path
    assert secret not in str(server.cli("app", "show", client_id))


@pytest.mark.check("DEV-02")
def test_rotation_keeps_the_old_secret_until_it_is_deleted(server):
    s = new_session(server)
    sign_in(s, server, DEVELOPER)
    client_id, old, _ = portal_create_app(s, server, "Rotating")
    # Through the admin API: the new secret is in the 201 body only.
    r = api(server, "POST", f"/admin/v1/apps/{client_id}/secrets", admin_key(server))
    assert r.status_code == 201
    new = r.json()["client_secret"]
    assert client_authenticates(server, client_id, old) == 200
    assert client_authenticates(server, client_id, new) == 200
    # A third is refused while two are live.
    kind, _ = notice(portal_action(s, server, client_id, "rotate"))
    assert kind == "error"
    old_id = min(x["id"] for x in server.cli("app", "show", client_id)["secrets"])
    assert notice(portal_action(s, server, client_id, "delete-secret", secret_id=str(old_id)))[0] == "ok"
    assert client_authenticates(server, client_id, old) == 401
    assert client_authenticates(server, client_id, new) == 200
    # The last secret cannot be deleted.
    last = server.cli("app", "show", client_id)["secrets"][0]["id"]
    assert notice(portal_action(s, server, client_id, "delete-secret", secret_id=str(last)))[0] == "error"


@pytest.mark.check("DEV-02")
def test_a_rotated_secret_is_not_put_in_a_url(server):
    # Shown once means shown in the POST's answer, not in a redirect URL that browser history,
    # proxies and a reload show again.
    s = new_session(server)
    sign_in(s, server, DEVELOPER)
    client_id, _, _ = portal_create_app(s, server, "Rotated on the portal")
    before = {x["id"] for x in server.cli("app", "show", client_id)["secrets"]}
    r = portal_action(s, server, client_id, "rotate")
    assert {x["id"] for x in server.cli("app", "show", client_id)["secrets"]} > before, "no rotation"
    loc = r.headers.get("Location", "")
    words = re.findall(r"[A-Za-z0-9_-]{32,}", requests.utils.unquote(loc))
    assert not words, f"the new secret travels in the redirect URL: {loc[:120]}…"


BAD_REDIRECTS = ["http://client.example/cb", "https://client.example/cb#x", "https://*.client.example/cb",
                 "https://client.example/*", "javascript:alert(1)", "data:text/html,x", "vbscript:x",
                 "file:///etc/passwd", "https://user:pw@client.example/cb", "/relative/cb"]


@pytest.mark.check("DEV-03")
@pytest.mark.parametrize("uri", BAD_REDIRECTS)
def test_the_portal_refuses_bad_redirect_urls(server, uri):
    s = new_session(server)
    sign_in(s, server, DEVELOPER)
    client_id = new_app(server, "Redirect rules")["client_id"]
    before = server.cli("app", "show", client_id)["redirect_uris"]
    kind, text = notice(portal_action(s, server, client_id, "add-redirect", redirect_uri=uri))
    assert kind == "error", f"{uri} accepted: {text}"
    assert server.cli("app", "show", client_id)["redirect_uris"] == before


@pytest.mark.check("DEV-03")
def test_the_portal_accepts_loopback_and_drops_queries(server):
    s = new_session(server)
    sign_in(s, server, DEVELOPER)
    client_id = new_app(server, "Loopback")["client_id"]
    for uri in ("http://127.0.0.1/cb", "http://[::1]/cb"):
        assert notice(portal_action(s, server, client_id, "add-redirect", redirect_uri=uri))[0] == "ok", uri
    # REG-05: a query that could pollute the response (code=, state=) is never registered.
    portal_action(s, server, client_id, "add-redirect", redirect_uri="https://client.example/q?code=x&state=y")
    assert not any("code=" in u or "state=" in u for u in server.cli("app", "show", client_id)["redirect_uris"])
    # The client_id is the server's choice: a settings form naming another one changes nothing.
    post(s, f"{server.base}/developers/apps/{client_id}/settings",
         data={"csrf": csrf_of(s, server), "name": "Loopback", "client_id": "chosen-id"})
    assert server.cli("app", "show", client_id)["client_id"] == client_id
    assert not server.cli("app", "show", "chosen-id", check=False)


@pytest.mark.check("DEV-04")
def test_deleting_an_app_kills_its_tokens_and_codes(server):
    app = new_app(server, "Doomed", owner=DEVELOPER, capabilities=("refresh-tokens",))
    cid, sec, redirect = app["client_id"], app["client_secret"], "https://client.example/cb"
    browser = new_session(server)
    req = dict(client_id=cid, redirect_uri=redirect, scope="openid")
    tokens = redeem(server, browser_sign_in_and_consent(browser, authorization_url(server, **req)),
                    redirect_uri=redirect, auth=(cid, sec))
    spare_code = browser_sign_in_and_consent(browser, authorization_url(server, **req))
    rs_key = server.cli("rs-key", "create", "--name", "dev04-" + secrets.token_hex(3))["key"]

    def decision(token):
        return api(server, "POST", "/authz/v1/check", rs_key, json={"token": token, "permission": "openid"}).json()

    bearer = {"Authorization": "Bearer " + tokens["access_token"]}
    assert api(server, "GET", "/v2/userinfo", headers=bearer).status_code == 200
    assert decision(tokens["access_token"])["allowed"] is True
    dev = new_session(server)
    sign_in(dev, server, DEVELOPER)
    assert notice(portal_action(dev, server, cid, "delete"))[0] == "ok"
    assert api(server, "GET", "/v2/userinfo", headers=bearer).status_code == 401
    for t in (tokens["access_token"], tokens["refresh_token"]):
        assert decision(t)["allowed"] is False
    r = token_request(server, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth=(cid, sec))
    assert r.status_code in (400, 401) and "access_token" not in r.json()
    r = token_request(server, {"grant_type": "authorization_code", "code": query_of(spare_code)["code"],
                               "redirect_uri": redirect}, auth=(cid, sec))
    assert r.status_code in (400, 401) and "access_token" not in r.json()


# 6. Admin API -----------------------------------------------------------------------------------


def openapi(server) -> dict:
    r = api(server, "GET", "/admin/v1/openapi.json")
    assert r.status_code == 200
    return r.json()


PATH_VALUES = {"client_id": DEMO_CLIENT_ID, "secret_id": "1", "capability": "client-credentials",
               "program": "openid-connect"}


def operations(doc: dict):
    """(method, concrete path, operation) for every documented admin operation."""
    for template, methods in doc["paths"].items():
        path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], template)
        for method, op in methods.items():
            if method in ("get", "post", "put", "delete", "patch"):
                yield method.upper(), path, op


@pytest.mark.check("ADM-01")
def test_every_admin_route_needs_an_admin_key(server, browser):
    doc = openapi(server)
    # The only public operation is the API's own description.
    public = [p for m, p, op in operations(doc) if op.get("security") == []]
    assert public == ["/admin/v1/openapi.json"], public
    _, tokens = full_flow(server, browser)
    rs_key = server.cli("rs-key", "create", "--name", "adm01-" + secrets.token_hex(3))["key"]
    admin_browser = new_session(server)
    sign_in(admin_browser, server, "admin@scopegate.local")
    wrong = [
        ("none", {}),
        ("unknown admin key", {"Authorization": "Bearer sgk_" + secrets.token_urlsafe(32)}),
        ("resource-server key", {"Authorization": "Bearer " + rs_key}),
        ("member access token", {"Authorization": "Bearer " + tokens["access_token"]}),
        ("client credentials", {"Authorization": "Basic ZGVtb2FwcDAwMDAwMDE6ZGVtby1zZWNyZXQtbm90LWZvci1wcm9kdWN0aW9u"}),
        ("admin's page session only", {"Cookie": "; ".join(f"{c.name}={c.value}" for c in admin_browser.cookies)}),
    ]
    for method, path, op in operations(doc):
        if op.get("security") == []:
            continue
        for what, headers in wrong:
            r = api(server, method, path, headers=dict(headers), json={})
            assert r.status_code in (401, 403), f"{method} {path} with {what}: HTTP {r.status_code}"
    # Nothing happened: the demo app is still there, whole.
    assert server.cli("app", "show", DEMO_CLIENT_ID)["client_id"] == DEMO_CLIENT_ID


@pytest.mark.check("ADM-02")
def test_the_admin_api_can_have_a_listener_of_its_own(tmp_path_factory):
    """The reference's expectation: a separate listener (Hydra: public 4444, admin 4445).
    With --admin-listen (SCOPEGATE_ADMIN_LISTEN) the public listener answers 404 under
    /admin/v1 and the admin listener serves the admin API and nothing else."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    split = Server(scopegate_bin(), tmp_path_factory.mktemp("adminlisten"),
                   env={"SCOPEGATE_ADMIN_LISTEN": f"127.0.0.1:{port}"})
    split.start()
    try:
        key = admin_key(split)
        for path in ("/admin/v1/apps", "/admin/v1/openapi.json"):
            r = api(split, "GET", path, key)
            assert r.status_code == 404, f"{path} is served on the public listener (HTTP {r.status_code})"
        admin_base = f"https://127.0.0.1:{port}"
        r = requests.get(admin_base + "/admin/v1/apps", headers={"Authorization": "Bearer " + key},
                         verify=split.cert, timeout=HTTP_TIMEOUT)
        body = r.json() if r.status_code == 200 else {}
        apps = body.get("apps", []) if isinstance(body, dict) else body
        assert any(a.get("client_id") == DEMO_CLIENT_ID for a in apps), (r.status_code, r.text[:300])
        # The admin listener serves nothing else: no token endpoint, no pages.
        for path in ("/oauth/v2/accessToken", "/login", "/healthz"):
            r = requests.get(admin_base + path, verify=split.cert, timeout=HTTP_TIMEOUT)
            assert r.status_code == 404, (path, r.status_code)
        # The public listener still serves the rest.
        assert api(split, "GET", "/healthz").status_code == 200
    finally:
        split.stop()


@pytest.mark.check("ADM-03")
def test_the_admin_api_sends_no_cors_headers(server):
    key = admin_key(server)
    origin = {"Origin": "https://evil.example"}
    for method, path, _ in operations(openapi(server)):
        pre = api(server, "OPTIONS", path, headers=dict(origin, **{"Access-Control-Request-Method": method,
                                                                   "Access-Control-Request-Headers": "authorization"}))
        assert_no_cors(pre, f"preflight {method} {path}")
        if method == "GET":
            assert_no_cors(api(server, "GET", path, key, headers=dict(origin)), f"GET {path}")


@pytest.mark.check("ADM-04")
def test_every_admin_mutation_is_audited_with_its_actor_and_no_secret(server):
    name = "auditor-" + secrets.token_hex(3)
    key = admin_key(server, name)
    password = "pw-" + secrets.token_urlsafe(16)
    email = f"audited-{secrets.token_hex(3)}@scopegate.local"
    secrets_seen = [key, password]
    steps = [
        ("POST", "/admin/v1/members", {"email": email, "password": password, "first_name": "Au"}, 201),
        ("POST", "/admin/v1/apps", {"name": "Audited", "owner": DEVELOPER, "redirect_uris": ["https://a.example/cb"]}, 201),
    ]
    for method, path, body, status in steps:
        r = api(server, method, path, key, json=body)
        assert r.status_code == status, r.text
        if "client_secret" in r.json():
            secrets_seen.append(r.json()["client_secret"])
            cid = r.json()["client_id"]
    r = api(server, "POST", f"/admin/v1/apps/{cid}/secrets", key)
    secrets_seen.append(r.json()["client_secret"])
    mutations = [
        ("POST", f"/admin/v1/apps/{cid}/redirect-uris", {"uri": "https://b.example/cb"}),
        ("DELETE", f"/admin/v1/apps/{cid}/redirect-uris?uri=https://b.example/cb", None),
        ("PUT", f"/admin/v1/apps/{cid}/capabilities/refresh-tokens", {"enabled": True}),
        ("POST", f"/admin/v1/apps/{cid}/products/openid-connect", None),
        ("DELETE", f"/admin/v1/apps/{cid}/products/openid-connect", None),
        ("DELETE", f"/admin/v1/apps/{cid}/secrets/{r.json()['id']}", None),
        ("DELETE", f"/admin/v1/apps/{cid}", None),
    ]
    for method, path, body in mutations:
        resp = api(server, method, path, key, json=body) if body is not None else api(server, method, path, key)
        assert resp.status_code < 300, f"{method} {path}: {resp.status_code} {resp.text}"
    audit = api(server, "GET", "/admin/v1/audit?limit=200", key)
    assert audit.status_code == 200
    mine = [e for e in audit.json() if e["actor"] == f"api-key:{name}"]
    # Two creations, the rotation and every mutation above: one entry each, with this actor.
    assert len(mine) >= 3 + len(mutations), [(e["action"], e["target"]) for e in mine]
    assert any(e["target"] == cid and e["action"].startswith("app.delete") for e in mine), mine
    text = audit.text + str(server.cli("audit", "--limit", "200"))
    for s in secrets_seen:
        assert s not in text, "a secret reached the audit log"


# A small JSON-Schema subset: what crates/http/openapi.json uses.
def schema_errors(value, schema: dict, doc: dict, where: str = "$") -> list[str]:
    if "$ref" in schema:
        target = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return schema_errors(value, target, doc, where)
    errors = []
    for sub in schema.get("allOf", []):
        errors += schema_errors(value, sub, doc, where)
    types = schema.get("type")
    checks = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    if types:
        ok = any((isinstance(value, int) and not isinstance(value, bool)) if t == "integer"
                 else (isinstance(value, (int, float)) and not isinstance(value, bool)) if t == "number"
                 else isinstance(value, checks[t]) for t in ([types] if isinstance(types, str) else types))
        if not ok:
            return errors + [f"{where}: {type(value).__name__} is not {types}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        for req in schema.get("required", []):
            if req not in value:
                errors.append(f"{where}: {req} missing")
        for k, v in value.items():
            if k in schema.get("properties", {}):
                errors += schema_errors(v, schema["properties"][k], doc, f"{where}.{k}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected {k}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += schema_errors(v, schema["additionalProperties"], doc, f"{where}.{k}")
    if isinstance(value, list):
        for i, v in enumerate(value):
            errors += schema_errors(v, schema.get("items", {}), doc, f"{where}[{i}]")
    return errors


def response_schema(op: dict, status: int, doc: dict) -> dict | None:
    resp = op["responses"].get(str(status))
    if resp is None:
        return None
    while "$ref" in resp:
        resp = doc["components"]["responses"][resp["$ref"].rsplit("/", 1)[1]]
    return resp.get("content", {}).get("application/json", {}).get("schema", {})


MALFORMED_BODIES = [
    b"[" * 10000 + b"]" * 10000,
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b'{"name": ' + b"[" + b"1," * 20000 + b"1]}",
    b'{"name": 1, "owner": true, "redirect_uris": "x", "email": [], "enabled": "yes", "uri": {}}',
    b'{"name": "x", "owner": "developer@scopegate.local", "unexpected": 1, "decision": "approve"}',
    b"not json", b"\xff\xfe\x00", b"", b"null", b'"' + b"a" * 60000 + b'"',
]
BAD_IDS = ["x" * 3000, "%00", "%FF", "..%2F..%2Fetc", "%E2%9C%93", "-1", "99999999999999999999999"]


@pytest.mark.check("ADM-05")
def test_malformed_admin_requests_get_documented_errors_never_5xx(server):
    doc = openapi(server)
    key = admin_key(server)
    bad = []

    def check(method, path, op, resp):
        schema = response_schema(op, resp.status_code, doc)
        if resp.status_code >= 500 or schema is None:
            bad.append(f"{method} {path[:80]}: undocumented HTTP {resp.status_code} {resp.text[:120]}")
            return
        if resp.status_code != 204 and schema:
            try:
                body = resp.json()
            except ValueError:
                bad.append(f"{method} {path[:80]}: HTTP {resp.status_code} without JSON")
                return
            bad.extend(f"{method} {path[:80]} {resp.status_code}: {e}" for e in schema_errors(body, schema, doc)[:3])

    for method, path, op in operations(doc):
        if op.get("security") == [] or (method == "DELETE" and path.endswith(DEMO_CLIENT_ID)):
            continue  # keep the demo app: deleting it is tested elsewhere
        if method == "GET":
            check(method, path, op, api(server, method, path, key))
        if "requestBody" in op or method in ("POST", "PUT"):
            for body in MALFORMED_BODIES:
                resp = api(server, method, path, key, data=body, headers={"Content-Type": "application/json"})
                check(method, path, op, resp)
        if DEMO_CLIENT_ID in path:
            for bad_id in BAD_IDS:
                p = path.replace(DEMO_CLIENT_ID, bad_id)
                check(method, p, op, api(server, method, p, key, json={}))
    assert not bad, "\n".join(bad[:30])


# 6. Keys and discovery --------------------------------------------------------------------------


def jwks(server) -> requests.Response:
    r = requests.get(discovery(server)["jwks_uri"], verify=server.cert, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    return r


def verify_id_token(server, token: str, keys: dict) -> dict:
    decoded = jwt.decode(token, KeySet.import_key_set(keys), algorithms=["RS256", "ES256"])
    return decoded.claims


@pytest.mark.check("KEY-01")
def test_rotation_publishes_both_keys_and_signs_with_the_new_one(server, browser):
    _, before = full_flow(server, browser)
    old_kid = jwt_part(before["id_token"], 0)["kid"]
    # By default a new key is published first and signs only once every cache of the JWKS
    # (max-age) can have fetched it.
    pending = server.cli("keys", "rotate")
    kids = [k["kid"] for k in jwks(server).json()["keys"]]
    assert old_kid in kids and pending["kid"] in kids, (pending, kids)
    assert pending["signs_from"] > time.time() + 300, pending
    _, meanwhile = full_flow(server, browser)
    assert jwt_part(meanwhile["id_token"], 0)["kid"] == old_kid
    # An operator who must switch at once (a leaked key) can: --activate-in 0.
    rotated = server.cli("keys", "rotate", "--activate-in", "0")
    set_after = jwks(server).json()
    kids = [k["kid"] for k in set_after["keys"]]
    assert {old_kid, pending["kid"], rotated["kid"]} <= set(kids), kids
    _, after = full_flow(server, browser)
    new_kid = jwt_part(after["id_token"], 0)["kid"]
    assert new_kid == rotated["kid"] and new_kid != old_kid
    # Every ID token verifies against the published set (the old ones until they expire).
    assert verify_id_token(server, before["id_token"], set_after)["aud"] in (DEMO_CLIENT_ID, [DEMO_CLIENT_ID])
    assert verify_id_token(server, meanwhile["id_token"], set_after)["sub"]
    assert verify_id_token(server, after["id_token"], set_after)["sub"]


@pytest.mark.check("KEY-02")
def test_the_jwks_holds_public_keys_only_with_unique_kids(server):
    r = jwks(server)
    keys = r.json()["keys"]
    assert keys
    private = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
    for k in keys:
        assert not private & set(k), f"private or symmetric material in {k.get('kid')}: {private & set(k)}"
        assert k.get("use") == "sig" and k.get("alg") in ("RS256", "ES256") and k.get("kid"), k
    assert len({k["kid"] for k in keys}) == len(keys)
    cache = r.headers.get("Cache-Control", "")
    m = re.search(r"max-age=(\d+)", cache)
    assert m and 0 < int(m.group(1)) <= 86400 and "no-store" not in cache, cache


@pytest.mark.check("KEY-03")
def test_id_token_header_names_an_advertised_alg_and_a_published_kid(server, browser):
    _, tokens = full_flow(server, browser)
    header = jwt_part(tokens["id_token"], 0)
    assert header["alg"] in discovery(server)["id_token_signing_alg_values_supported"]
    assert header["alg"].lower() != "none"
    assert header["kid"] in {k["kid"] for k in jwks(server).json()["keys"]}
    assert verify_id_token(server, tokens["id_token"], jwks(server).json())["iss"] == server.issuer


@pytest.mark.check("DISC-01")
def test_discovery_has_every_field_a_client_needs(server):
    d = discovery(server)
    for field in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint",
                  "revocation_endpoint", "introspection_endpoint", "subject_types_supported", "claims_supported",
                  "token_endpoint_auth_methods_supported"):
        assert d.get(field), field
    assert d["issuer"] == server.issuer
    assert "code" in d["response_types_supported"]
    assert "RS256" in d["id_token_signing_alg_values_supported"]
    assert "openid" in d["scopes_supported"]
    assert "S256" in d["code_challenge_methods_supported"]
    assert not {"password", "implicit"} & set(d["grant_types_supported"])
    assert d["authorization_response_iss_parameter_supported"] is True
    assert all(d[f].startswith("https://") for f in d if f.endswith("_endpoint") or f == "jwks_uri")
