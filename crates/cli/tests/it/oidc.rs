//! Issue: Sign In with OpenID Connect. ID tokens, JWKS, userinfo, discovery, key rotation, and
//! every LinkedIn compatibility quirk tested in both modes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use scopegate_app::Compat;
use serde_json::Value;

use crate::browser::{param, Outcome};
use crate::support::*;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn sign_in(s: &InProc, scope: &str, nonce: Option<&str>) -> Value {
    let b = s.browser();
    let mut path = format!("/oauth/v2/authorization?response_type=code&client_id={DEMO_APP}&redirect_uri={}&state=s&scope={}", enc(DEMO_REDIRECT), enc(scope));
    if let Some(n) = nonce {
        path.push_str(&format!("&nonce={n}"));
    }
    let url = match b.authorize(&path, MEMBER, DEMO_PASSWORD).await {
        Outcome::Consent(p) => b.consent(&p, "allow").await,
        Outcome::Redirect(u) => u,
        other => panic!("{other:?}"),
    };
    let code = param(&url, "code").unwrap();
    let (status, t) = s.redeem(&code, &[]).await;
    assert_eq!(status, 200, "{t}");
    t
}

fn part(jwt: &str, i: usize) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(i).unwrap())
            .unwrap(),
    )
    .unwrap()
}

/// Verifies an RS256 JWT against a JWKS document; returns its claims.
fn verify(jwt: &str, jwks: &Value) -> Value {
    let header = part(jwt, 0);
    assert_eq!(header["alg"], "RS256");
    let kid = header["kid"].as_str().expect("kid in the header");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} not published"));
    let n =
        rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap());
    let e =
        rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap());
    let key = VerifyingKey::<sha2::Sha256>::new(rsa::RsaPublicKey::new(n, e).unwrap());
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let sig = Signature::try_from(URL_SAFE_NO_PAD.decode(sig).unwrap().as_slice()).unwrap();
    key.verify(input.as_bytes(), &sig)
        .expect("the signature verifies");
    part(jwt, 1)
}

async fn jwks(s: &InProc) -> Value {
    s.client
        .get(s.url("/oauth/openid/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn id_tokens_are_signed_and_carry_the_claims_of_the_granted_scopes() {
    let s = InProc::demo().await;
    let t = sign_in(&s, "openid profile email", Some("n0nce")).await;
    let claims = verify(
        t["id_token"].as_str().expect("an ID token for openid"),
        &jwks(&s).await,
    );
    assert_eq!(claims["iss"], format!("{}/oauth", s.base));
    assert_eq!(claims["aud"], DEMO_APP);
    assert_eq!(claims["nonce"], "n0nce");
    assert_eq!(claims["given_name"], "Test");
    assert_eq!(claims["family_name"], "Member");
    assert_eq!(claims["name"], "Test Member");
    assert_eq!(claims["email"], MEMBER);
    assert_eq!(claims["email_verified"], true);
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    // Userinfo: the same subject and claims.
    let ui: Value = s
        .client
        .get(s.url("/v2/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ui["sub"], claims["sub"]);
    assert_eq!(ui["email"], MEMBER);
    assert_eq!(ui["email_verified"], true);
    // Without email, no email claims.
    let t = sign_in(&s, "openid profile", None).await;
    let claims = verify(t["id_token"].as_str().unwrap(), &jwks(&s).await);
    assert!(claims.get("email").is_none());
    assert!(claims.get("nonce").is_none(), "no nonce when none was sent");
}

#[tokio::test]
async fn userinfo_needs_openid_and_a_live_token() {
    let s = InProc::demo().await;
    let t = sign_in(&s, "profile", None).await;
    assert!(t.get("id_token").is_none(), "no ID token without openid");
    let res = s
        .client
        .get(s.url("/v2/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED", "message": "Not enough permissions to access: userinfo.GET.NO_VERSION"})
    );
    let res = s.client.get(s.url("/v2/userinfo")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap()["message"],
        "Empty oauth2_access_token"
    );
    let res = s
        .client
        .get(s.url("/v2/userinfo"))
        .bearer_auth("AQgarbage")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    assert_eq!(
        res.json::<Value>().await.unwrap()["serviceErrorCode"],
        65600
    );
    // A revoked token says so, with LinkedIn's 65601.
    let t = sign_in(&s, "openid", None).await;
    let at = t["access_token"].as_str().unwrap();
    s.post_form(
        "/oauth/v2/revoke",
        &[
            ("client_id", DEMO_APP),
            ("client_secret", DEMO_SECRET),
            ("token", at),
        ],
    )
    .await;
    let res = s
        .client
        .get(s.url("/v2/userinfo"))
        .header("authorization", format!("BEARER {at}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "REVOKED_ACCESS_TOKEN"
    );
}

#[tokio::test]
async fn discovery_lists_exactly_the_served_endpoints() {
    let s = InProc::demo().await;
    let d: Value = s
        .client
        .get(s.url("/oauth/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for alias in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let other: Value = s
            .client
            .get(s.url(alias))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(other, d);
    }
    assert_eq!(d["issuer"], format!("{}/oauth", s.base));
    assert_eq!(
        d["subject_types_supported"],
        serde_json::json!(["pairwise"])
    );
    let endpoints: Vec<(&str, &str)> = d
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.ends_with("_endpoint") || *k == "jwks_uri")
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
        .collect();
    assert_eq!(endpoints.len(), 6, "{endpoints:?}");
    for (name, url) in endpoints {
        assert!(url.starts_with(&s.base), "{name}");
        let get = s.client.get(url).send().await.unwrap().status();
        let post = s.client.post(url).send().await.unwrap().status();
        assert!(
            get != 404 && post != 404,
            "{name} {url} is listed but not served"
        );
    }
    for absent in [
        "registration_endpoint",
        "end_session_endpoint",
        "pushed_authorization_request_endpoint",
        "device_authorization_endpoint",
    ] {
        assert!(d.get(absent).is_none(), "{absent} is listed but not served");
    }
}

#[tokio::test]
async fn sub_is_pairwise_per_app_and_stable() {
    let s = InProc::demo().await;
    let a = verify(
        sign_in(&s, "openid", None).await["id_token"]
            .as_str()
            .unwrap(),
        &jwks(&s).await,
    );
    let again = verify(
        sign_in(&s, "openid", None).await["id_token"]
            .as_str()
            .unwrap(),
        &jwks(&s).await,
    );
    assert_eq!(a["sub"], again["sub"]);
    let member = s
        .cli_json(&["member", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == MEMBER)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = scopegate_app::signing::pairwise_sub(&s.state, "another-app", &member);
    assert_ne!(a["sub"].as_str().unwrap(), other);
    assert_ne!(
        a["sub"].as_str().unwrap(),
        member,
        "the member id never leaks"
    );
}

#[tokio::test]
async fn rotated_keys_stay_published_while_their_tokens_live() {
    let s = InProc::demo().await;
    let old = sign_in(&s, "openid", None).await["id_token"]
        .as_str()
        .unwrap()
        .to_string();
    let old_kid = part(&old, 0)["kid"].as_str().unwrap().to_string();
    let rotated = s.cli_json(&["keys", "rotate", "--alg", "RS256"]);
    let new_kid = rotated["kid"].as_str().unwrap().to_string();
    let published = jwks(&s).await;
    assert_eq!(published["keys"].as_array().unwrap().len(), 2);
    verify(&old, &published);
    // Published first, signing later: relying parties holding a cached JWKS never meet the new
    // kid before they could have fetched it.
    let still_old = sign_in(&s, "openid email", None).await["id_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(part(&still_old, 0)["kid"].as_str().unwrap(), old_kid);
    s.clock
        .advance(scopegate_app::signing::KEY_PUBLISH_AHEAD + 1);
    let new = sign_in(&s, "openid profile", None).await["id_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(part(&new, 0)["kid"].as_str().unwrap(), new_kid);
    verify(&new, &published);
    // After the longest ID token lifetime the old key is withdrawn.
    s.clock.advance(scopegate_app::signing::ID_TOKEN_TTL + 1);
    assert_eq!(jwks(&s).await["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn private_keys_are_encrypted_at_rest() {
    let s = InProc::demo().await;
    jwks(&s).await;
    let stored = s
        .state
        .store_for_tests()
        .read(|c| scopegate_app::testing::store::keys::published_signing_keys(c, 0))
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let raw = URL_SAFE_NO_PAD.decode(&stored[0].private_enc).unwrap();
    // A PKCS#8 RSA key in the clear starts with a DER SEQUENCE and names rsaEncryption.
    assert!(
        !raw.windows(9)
            .any(|w| w == [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]),
        "the private key is stored in the clear"
    );
}

// The LinkedIn compatibility quirks: each in both modes.

#[tokio::test]
async fn quirk_scope_separator_in_token_responses() {
    for (compat, want) in [
        (Compat::Standard, "openid profile"),
        (Compat::Linkedin, "openid,profile"),
    ] {
        let s = InProc::start(compat).await;
        assert_eq!(
            sign_in(&s, "openid profile", None).await["scope"],
            want,
            "{compat:?}"
        );
    }
}

#[tokio::test]
async fn quirk_nonce_is_not_echoed_in_linkedin_mode() {
    for (compat, echoed) in [(Compat::Standard, true), (Compat::Linkedin, false)] {
        let s = InProc::start(compat).await;
        let claims = verify(
            sign_in(&s, "openid", Some("abc")).await["id_token"]
                .as_str()
                .unwrap(),
            &jwks(&s).await,
        );
        assert_eq!(claims.get("nonce").is_some(), echoed, "{compat:?}");
    }
}

#[tokio::test]
async fn quirk_email_verified_is_a_string_in_linkedin_id_tokens() {
    for (compat, want) in [
        (Compat::Standard, serde_json::json!(true)),
        (Compat::Linkedin, serde_json::json!("true")),
    ] {
        let s = InProc::start(compat).await;
        let t = sign_in(&s, "openid email", None).await;
        let claims = verify(t["id_token"].as_str().unwrap(), &jwks(&s).await);
        assert_eq!(claims["email_verified"], want, "{compat:?}");
        let ui: Value = s
            .client
            .get(s.url("/v2/userinfo"))
            .bearer_auth(t["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            ui["email_verified"], true,
            "userinfo is boolean in both modes ({compat:?})"
        );
    }
}

#[tokio::test]
async fn quirk_codes_live_ten_minutes_or_linkedins_thirty() {
    for (compat, ttl) in [(Compat::Standard, 600), (Compat::Linkedin, 1800)] {
        let s = InProc::start(compat).await;
        let b = s.browser();
        let path = format!("/oauth/v2/authorization?response_type=code&client_id={DEMO_APP}&redirect_uri={}&scope=openid", enc(DEMO_REDIRECT));
        let url = b
            .consent(
                &b.authorize(&path, MEMBER, DEMO_PASSWORD).await.consent(),
                "allow",
            )
            .await;
        let code = param(&url, "code").unwrap();
        s.clock.advance(ttl - 5);
        let (status, _) = s.redeem(&code, &[]).await;
        assert_eq!(
            status, 200,
            "{compat:?}: a code is still good just before {ttl} s"
        );
    }
}

#[tokio::test]
async fn quirk_token_endpoint_error_codes() {
    for (compat, status, error) in [
        (Compat::Standard, 400, "invalid_grant"),
        (Compat::Linkedin, 401, "invalid_request"),
    ] {
        let s = InProc::start(compat).await;
        let (st, e) = s.redeem("AQnope", &[]).await;
        assert_eq!(
            (st, e["error"].as_str()),
            (status, Some(error)),
            "{compat:?}"
        );
        assert_eq!(
            e["error_description"],
            "Unable to retrieve access token: authorization code not found"
        );
    }
}

#[tokio::test]
async fn quirk_two_legged_response_shape() {
    for (compat, has_type) in [(Compat::Standard, true), (Compat::Linkedin, false)] {
        let s = InProc::start(compat).await;
        let (status, t) = s.client_credentials(DEMO_APP, DEMO_SECRET).await;
        assert_eq!(status, 200);
        assert_eq!(t["expires_in"], 1800);
        assert_eq!(t.get("token_type").is_some(), has_type, "{compat:?}");
        assert_eq!(t.get("scope").is_some(), has_type, "{compat:?}");
    }
}

#[tokio::test]
async fn quirk_unauthorized_scope_description_escapes_quotes() {
    for (compat, quote) in [(Compat::Standard, "\""), (Compat::Linkedin, "&quot;")] {
        let s = InProc::start(compat).await;
        let res = s.browser().get(&format!("/oauth/v2/authorization?response_type=code&client_id={DEMO_APP}&redirect_uri={}&scope=r_nope", enc(DEMO_REDIRECT))).await;
        let loc = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
        let d = param(&loc, "error_description").unwrap();
        assert!(
            d.starts_with(&format!(
                "Scope {quote}r_nope{quote} is not authorized for your application"
            )),
            "{compat:?}: {d}"
        );
    }
}

#[tokio::test]
async fn nodes_over_one_postgresql_agree_on_keys_and_tokens() {
    let db = postgres_url();
    let secret = "c2NvcGVnYXRlLXRlc3Qtc2hhcmVkLW1hc3Rlci1zZWNyZXQtMzJi";
    let env = [("SCOPEGATE_SECRET_KEY", secret)];
    let a = Server::start_with(TempDir::new("node-a"), db.clone(), &["--demo"], &env).await;
    let b = Server::start_with(TempDir::new("node-b"), db.clone(), &[], &env).await;
    let ja: Value = a
        .client
        .get(a.url("/oauth/openid/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jb: Value = b
        .client
        .get(b.url("/oauth/openid/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ja, jb, "both nodes publish the same keys");
    assert_eq!(
        ja["keys"].as_array().unwrap().len(),
        1,
        "one key, not one per node"
    );
    // A token issued by one node is known to the other; a revocation at one is seen at the other.
    let (_, t) = a.client_credentials(DEMO_APP, DEMO_SECRET).await;
    let token = t["access_token"].as_str().unwrap();
    let (_, i) = b.introspect_demo(token).await;
    assert_eq!(i["active"], true);
    let (status, _) = b
        .post_form(
            "/oauth/v2/revoke",
            &[
                ("client_id", DEMO_APP),
                ("client_secret", DEMO_SECRET),
                ("token", token),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let (_, i) = a.introspect_demo(token).await;
    assert_eq!(i["status"], "revoked");
}

#[tokio::test]
async fn quirk_expires_in_is_one_second_short_in_linkedin_mode() {
    for (compat, want) in [(Compat::Standard, 5_184_000), (Compat::Linkedin, 5_183_999)] {
        let s = InProc::start(compat).await;
        assert_eq!(
            sign_in(&s, "openid", None).await["expires_in"],
            want,
            "{compat:?}"
        );
    }
}

#[tokio::test]
async fn es256_signs_id_tokens_when_configured_and_rs256_stays_published() {
    let s = InProc::with_config(scopegate_core::Catalog::linkedin(), |c| c.es256 = true).await;
    let t = sign_in(&s, "openid", None).await;
    let jwt = t["id_token"].as_str().unwrap();
    let header = part(jwt, 0);
    assert_eq!(header["alg"], "ES256");
    let keys = jwks(&s).await;
    let algs: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert!(
        algs.contains(&"ES256") && algs.contains(&"RS256"),
        "{algs:?}"
    );
    let jwk = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap();
    // Verify with ring: the uncompressed P-256 point is 0x04 || x || y.
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point);
    key.verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
        .expect("the ES256 signature verifies");
    let d: Value = s
        .client
        .get(s.url("/oauth/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "ES256"])
    );
}
