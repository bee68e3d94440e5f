"""LinkedIn's official Python Rest.li client (``linkedin-api-client``, ``linkedin_api``) against
scopegate's LinkedIn-shaped sandbox: the member's token comes from the real authorization flow
(authlib + the member's browser), then the library creates a post, reads it back by its URN and
through the ``author`` finder, and is refused a post in someone else's name.

The library has no setting for its API host: ``linkedin_api.clients.restli.utils.api`` builds
every URL from the module constants ``VERSIONED_BASE_URL`` (``https://api.linkedin.com/rest``, used
when a version string is given) and ``NON_VERSIONED_BASE_URL`` (``https://api.linkedin.com/v2``) of
``linkedin_api.common.constants``, read at call time. The test therefore monkeypatches those two
constants to scopegate's ``/rest`` and ``/v2``; nothing else of the library is touched.

TLS stays verified: the library sends through ``RestliClient.session`` (a ``requests.Session``,
``Session.send``), which the test replaces with one that verifies against scopegate's own
certificate and ignores the environment's proxies/CA settings (see conftest)."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from authlib.common.security import generate_token

import linkedin_api.common.constants as li_constants
from linkedin_api.clients.restli.client import RestliClient

from conftest import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REDIRECT,
    HTTP_TIMEOUT,
    browser_sign_in_and_consent,
    oauth_session,
)

SCOPE = "openid profile w_member_social r_member_social r_ads rw_ads"
# LinkedIn-Version, YYYYMM: makes the library use the versioned /rest base. This month's is active
# on a server running on the system clock (a year of monthly versions is, as LinkedIn's are).
VERSION = datetime.now(timezone.utc).strftime("%Y%m")


class _VerifyingSession(requests.Session):
    """What RestliClient sends through: verifies scopegate's certificate, ignores the environment
    (REQUESTS_CA_BUNDLE is set machine-wide), and puts a timeout on every request (the library
    sets none)."""

    def __init__(self, cert: str):
        super().__init__()
        self.trust_env = False
        self.verify = cert

    def send(self, request, **kwargs):
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return super().send(request, **kwargs)


@pytest.fixture
def restli(server, monkeypatch) -> RestliClient:
    # Not configurable in linkedin-api-client 0.3.0: patch the module-level base URLs.
    monkeypatch.setattr(li_constants, "VERSIONED_BASE_URL", server.base + "/rest")
    monkeypatch.setattr(li_constants, "NON_VERSIONED_BASE_URL", server.base + "/v2")
    client = RestliClient()
    client.session.close()
    client.session = _VerifyingSession(server.cert)
    yield client
    client.session.close()


@pytest.fixture(scope="module")
def member_token(server) -> str:
    """A 3-legged member token for the demo app with SCOPE, through the authorization code flow
    (PKCE S256), the member's sign-in and consent, and authlib's code exchange."""
    client = oauth_session(
        server,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_post",
        scope=SCOPE,
        redirect_uri=DEMO_REDIRECT,
        code_challenge_method="S256",
    )
    verifier = generate_token(64)
    url, state = client.create_authorization_url(server.authorization_endpoint, code_verifier=verifier)
    with requests.Session() as browser:
        browser.trust_env = False
        browser.verify = server.cert
        callback = browser_sign_in_and_consent(browser, url)
    assert callback.startswith(DEMO_REDIRECT + "?"), callback
    assert "code" in parse_qs(urlsplit(callback).query), callback
    token = client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    assert set(token["scope"].split(" ")) == set(SCOPE.split()), token["scope"]
    return token["access_token"]


def _sent(resp) -> requests.PreparedRequest:
    """The HTTP request the library actually sent for a response it formatted."""
    return resp.response.request


def test_restli_client_creates_a_post_and_reads_it_back(server, restli, member_token):
    # Who am I: /v2/userinfo (openid) and /v2/me (profile) through the library, non-versioned.
    info = restli.get(resource_path="/userinfo", access_token=member_token)
    assert info.status_code == 200, info.response.text
    assert urlsplit(_sent(info).url).path == "/v2/userinfo"
    sub = info.entity["sub"]
    assert isinstance(sub, str) and sub
    me = restli.get(resource_path="/me", access_token=member_token)
    assert me.status_code == 200, me.response.text
    assert me.entity["id"] == sub  # the same pairwise person id for this app
    author = f"urn:li:person:{sub}"

    commentary = "Hello from linkedin-api-client via scopegate's sandbox"
    post = {
        "author": author,
        "commentary": commentary,
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }
    created = restli.create(
        resource_path="/posts", entity=post, access_token=member_token, version_string=VERSION
    )
    sent = _sent(created)
    assert sent.method == "POST" and urlsplit(sent.url).path == "/rest/posts"
    assert sent.headers["X-RestLi-Protocol-Version"] == "2.0.0"
    assert sent.headers["X-RestLi-Method"] == "CREATE"
    assert sent.headers["LinkedIn-Version"] == VERSION
    assert created.status_code == 201, created.response.text
    # The library reads the created id from x-restli-id (entity_id) and Rest.li-decodes it.
    share = created.entity_id
    assert share and share.startswith("urn:li:share:"), created.headers
    assert share.rsplit(":", 1)[1].isdigit(), share
    assert created.decoded_entity_id == share

    # GET /rest/posts/{id}: the library Rest.li-encodes the URN key (urn%3Ali%3Ashare%3AN), as
    # LinkedIn documents for /rest/posts/{encoded share URN}.
    got = restli.get(
        resource_path="/posts/{id}",
        path_keys={"id": share},
        access_token=member_token,
        version_string=VERSION,
    )
    encoded = share.replace(":", "%3A")
    assert urlsplit(_sent(got).url).path == f"/rest/posts/{encoded}"
    assert got.status_code == 200, (got.status_code, got.response.text)
    assert got.entity["id"] == share
    assert got.entity["commentary"] == commentary
    assert got.entity["author"] == author
    assert got.entity["visibility"] == "PUBLIC"
    assert got.entity["lifecycleState"] == "PUBLISHED"

    # The plain numeric key reaches the same post.
    by_number = restli.get(
        resource_path="/posts/{id}",
        path_keys={"id": int(share.rsplit(":", 1)[1])},
        access_token=member_token,
        version_string=VERSION,
    )
    assert by_number.status_code == 200, by_number.response.text
    assert by_number.entity["commentary"] == commentary

    # The author finder: GET /rest/posts?author=urn%3Ali%3Aperson%3A…&q=author.
    found = restli.finder(
        resource_path="/posts",
        finder_name="author",
        query_params={"author": author},
        access_token=member_token,
        version_string=VERSION,
    )
    q = parse_qs(urlsplit(_sent(found).url).query)
    assert q == {"author": [author], "q": ["author"]}
    assert found.status_code == 200, found.response.text
    assert [e["id"] for e in found.elements] == [share]
    assert found.elements[0]["commentary"] == commentary
    assert found.paging.total == 1


def test_restli_client_cannot_post_as_another_member(server, restli, member_token):
    other = "urn:li:person:someoneElse42"
    resp = restli.create(
        resource_path="/posts",
        entity={
            "author": other,
            "commentary": "not mine to post",
            "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED"},
            "lifecycleState": "PUBLISHED",
        },
        access_token=member_token,
        version_string=VERSION,
    )
    # The library does not raise on error statuses: it hands back the response and its JSON body.
    assert resp.status_code == 403, resp.response.text
    assert resp.entity_id is None
    assert resp.entity["status"] == 403
    assert resp.entity["serviceErrorCode"] == 100
    assert resp.entity["code"] == "ACCESS_DENIED"
    assert resp.entity["message"].startswith("Not enough permissions to access: "), resp.entity

    # r_member_social reads only the member's own posts: the finder for the other person is
    # refused the same way.
    found = restli.finder(
        resource_path="/posts",
        finder_name="author",
        query_params={"author": other},
        access_token=member_token,
        version_string=VERSION,
    )
    assert found.status_code == 403, found.response.text
    assert found.response.json()["serviceErrorCode"] == 100


def test_restli_client_manages_an_ad_accounts_campaign_groups_and_campaigns(
    server, restli, member_token
):
    # The test member is ACCOUNT_BILLING_ADMIN of the demo ad account 1.
    found = restli.finder(
        resource_path="/adAccounts",
        finder_name="search",
        query_params={"search": {"status": {"values": ["ACTIVE"]}}},
        access_token=member_token,
        version_string=VERSION,
    )
    assert found.status_code == 200, found.response.text
    assert "search=(status:(values:List(ACTIVE)))" in unquote(urlsplit(_sent(found).url).query)
    assert [e["id"] for e in found.elements] == [1]

    batch = restli.batch_get(
        resource_path="/adAccounts",
        ids=[1, 424242],
        access_token=member_token,
        version_string=VERSION,
    )
    assert batch.status_code == 200, batch.response.text
    assert batch.results["1"]["name"] == "Demo Corp Ads"
    assert batch.statuses["1"] == 200
    assert batch.errors["424242"]["status"] == 404

    group = restli.create(
        resource_path="/adAccounts/{id}/adCampaignGroups",
        path_keys={"id": 1},
        entity={"name": "Spring", "status": "DRAFT"},
        access_token=member_token,
        version_string=VERSION,
    )
    assert group.status_code == 201, group.response.text
    group_urn = group.decoded_entity_id
    assert group_urn.startswith("urn:li:sponsoredCampaignGroup:"), group_urn
    campaign = restli.create(
        resource_path="/adAccounts/{id}/adCampaigns",
        path_keys={"id": 1},
        entity={"name": "Tulips", "campaignGroup": group_urn, "type": "TEXT_AD"},
        access_token=member_token,
        version_string=VERSION,
    )
    assert campaign.status_code == 201, campaign.response.text
    number = int(campaign.decoded_entity_id.rsplit(":", 1)[1])
    keys = {"account": 1, "id": number}
    one = "/adAccounts/{account}/adCampaigns/{id}"

    got = restli.get(
        resource_path=one, path_keys=keys, access_token=member_token, version_string=VERSION
    )
    assert got.status_code == 200, got.response.text
    assert got.entity["account"] == "urn:li:sponsoredAccount:1"
    assert got.entity["status"] == "DRAFT"

    in_group = restli.finder(
        resource_path="/adAccounts/{id}/adCampaigns",
        path_keys={"id": 1},
        finder_name="search",
        query_params={"search": {"campaignGroup": {"values": [group_urn]}}},
        access_token=member_token,
        version_string=VERSION,
    )
    assert in_group.status_code == 200, in_group.response.text
    assert [e["name"] for e in in_group.elements] == ["Tulips"]

    def set_status(status: str) -> int:
        return restli.partial_update(
            resource_path=one,
            path_keys=keys,
            patch_set_object={"status": status},
            access_token=member_token,
            version_string=VERSION,
        ).status_code

    def delete() -> int:
        return restli.delete(
            resource_path=one, path_keys=keys, access_token=member_token, version_string=VERSION
        ).status_code

    assert set_status("ACTIVE") == 204
    assert delete() == 400  # LinkedIn deletes only DRAFT campaigns
    assert set_status("DRAFT") == 204
    assert delete() == 204
    gone = restli.get(
        resource_path=one, path_keys=keys, access_token=member_token, version_string=VERSION
    )
    assert gone.status_code == 404


def test_restli_client_sunset_and_malformed_versions_and_tls(server, restli, member_token):
    # A sunset version gets LinkedIn's 426 NONEXISTENT_VERSION, named as LinkedIn names it.
    sunset = restli.get(
        resource_path="/posts/{id}",
        path_keys={"id": "urn:li:share:1"},
        access_token=member_token,
        version_string="202301",
    )
    assert sunset.status_code == 426, sunset.response.text
    assert sunset.entity["message"] == "Requested version 20230101 is not active"
    # A malformed LinkedIn-Version gets LinkedIn's 426 NONEXISTENT_VERSION.
    resp = restli.get(
        resource_path="/posts/{id}",
        path_keys={"id": "urn:li:share:1"},
        access_token=member_token,
        version_string="2024-05",
    )
    assert resp.status_code == 426, resp.response.text
    assert resp.entity["code"] == "NONEXISTENT_VERSION"

    # Verification is on: a client that trusts only the system CAs refuses scopegate's certificate.
    untrusting = RestliClient()
    untrusting.session.trust_env = False
    untrusting.session.verify = True
    try:
        with pytest.raises(requests.exceptions.SSLError):
            untrusting.get(resource_path="/userinfo", access_token=member_token)
    finally:
        untrusting.session.close()
