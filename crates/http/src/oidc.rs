//! OpenID Connect: signing keys, ID tokens, discovery, JWKS and userinfo.
//!
//! Keys are generated on first start and kept in the store, the private half encrypted with
//! AES-256-GCM under a key derived from the master secret, so every node over one database signs
//! with the same key and publishes the same set. The newest key signs; a rotated-out key stays
//! published until every ID token it signed has expired.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use scopegate_core::model::{TokenKind, TokenState};
use scopegate_core::oidc_request::{CompactJws, HintError};
use scopegate_core::ScopeSet;
use scopegate_store::keys::{self, StoredSigningKey};
use scopegate_store::{apps, members, settings, tokens};
use serde_json::{json, Value};

use crate::config::Compat;
use crate::state::{Service, ServiceState};
use crate::wire::ApiError;

/// How long an ID token is valid.
pub const ID_TOKEN_TTL: i64 = 3600;

/// A signing algorithm scopegate can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }
    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }
}

/// The member's subject identifier for one app: pairwise, stable across sign-ins, and different
/// for every app, so two apps cannot join their users by `sub`.
pub fn pairwise_sub(state: &Service, client_id: &str, member_id: &str) -> String {
    let h = state
        .keys
        .pairwise
        .hash_str(&format!("{client_id}\u{0}{member_id}"));
    let bytes = URL_SAFE_NO_PAD.decode(h.as_str()).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len().min(9)])
}

fn kek(state: &Service) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, state.keys.key_encryption.as_bytes())
        .ok()
        .map(LessSafeKey::new)
}

fn seal(state: &Service, kid: &str, plaintext: &[u8]) -> Option<String> {
    let key = kek(state)?;
    let mut nonce = [0u8; 12];
    state.entropy.fill(&mut nonce);
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(kid.as_bytes()),
        &mut buf,
    )
    .ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Some(URL_SAFE_NO_PAD.encode(out))
}

fn open(state: &Service, kid: &str, sealed: &str) -> Option<Vec<u8>> {
    let key = kek(state)?;
    let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if raw.len() < 12 + 16 {
        return None;
    }
    let (nonce, rest) = raw.split_at(12);
    let mut buf = rest.to_vec();
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let plain = key
        .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
        .ok()?;
    Some(plain.to_vec())
}

/// Creates a key pair: (kid, public JWK, PKCS#8 private key).
fn generate(
    entropy: std::sync::Arc<dyn scopegate_core::Entropy>,
    alg: Alg,
) -> Result<(String, Value, Vec<u8>), String> {
    let kid = crate::clock::random_id(entropy.as_ref(), 16);
    match alg {
        Alg::Rs256 => {
            let mut rng = EntropyRng(entropy.clone());
            let private = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| e.to_string())?;
            let public = private.to_public_key();
            let der = private
                .to_pkcs8_der()
                .map_err(|e| e.to_string())?
                .as_bytes()
                .to_vec();
            let jwk = json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            });
            Ok((kid, jwk, der))
        }
        Alg::Es256 => {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &rng,
            )
            .map_err(|_| "ECDSA key generation failed".to_string())?;
            let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8.as_ref(),
                &rng,
            )
            .map_err(|_| "ECDSA key parsing failed".to_string())?;
            use ring::signature::KeyPair;
            let point = pair.public_key().as_ref();
            // Uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes).
            let (x, y) = (&point[1..33], &point[33..65]);
            let jwk = json!({
                "kty": "EC", "use": "sig", "alg": "ES256", "kid": kid, "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
            });
            Ok((kid, jwk, pkcs8.as_ref().to_vec()))
        }
    }
}

/// Adapts the injected entropy to the `rand_core` interface the RSA crate asks for.
struct EntropyRng(std::sync::Arc<dyn scopegate_core::Entropy>);

impl rsa::rand_core::RngCore for EntropyRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for EntropyRng {}

/// The algorithms this deployment publishes keys for: RS256, plus ES256 when configured.
pub fn algorithms(state: &Service) -> Vec<Alg> {
    let mut algs = vec![Alg::Rs256];
    if state.config.es256 {
        algs.push(Alg::Es256);
    }
    algs
}

/// RSA generation takes a while: keep it off the async workers.
async fn generate_off_thread(
    state: &Service,
    alg: Alg,
) -> Result<(String, Value, Vec<u8>), String> {
    let entropy = state.entropy.clone();
    tokio::task::spawn_blocking(move || generate(entropy, alg))
        .await
        .map_err(|e| e.to_string())?
}

/// How long the JWKS may be cached (its `Cache-Control: max-age`).
pub const JWKS_MAX_AGE: u32 = 300;
/// How long a rotated-in key is published before it signs: past every cache of the JWKS, so no
/// relying party meets a `kid` it has not been able to fetch yet.
pub const KEY_PUBLISH_AHEAD: i64 = JWKS_MAX_AGE as i64 + 60;

/// Adds a new signing key for `alg` that signs from `activate_in` seconds on (published at once);
/// the previous one signs until then and stays published after (`scopegate keys rotate`).
pub async fn rotate(state: &Service, alg: Alg, activate_in: i64) -> Result<String, String> {
    let generated = generate_off_thread(state, alg).await?;
    store_key(state, alg, generated, activate_in.max(0)).await
}

async fn store_key(
    state: &Service,
    alg: Alg,
    (kid, jwk, der): (String, Value, Vec<u8>),
    activate_in: i64,
) -> Result<String, String> {
    let sealed = seal(state, &kid, &der).ok_or("sealing the private key failed")?;
    let k = StoredSigningKey {
        kid: kid.clone(),
        alg: alg.as_str().into(),
        public_jwk: jwk.to_string(),
        private_enc: sealed,
        created_at: state.now() + activate_in,
        retired_at: None,
    };
    state
        .store
        .write(move |c| keys::add_signing_key(c, &k))
        .await
        .map_err(|e| e.to_string())?;
    Ok(kid)
}

/// The key that signs now for `alg`.
async fn active_key(state: &Service, alg: Alg) -> Result<Option<StoredSigningKey>, String> {
    let a = alg.as_str().to_string();
    let now = state.now();
    state
        .store
        .read(move |c| keys::active_signing_key(c, &a, now))
        .await
        .map_err(|e| e.to_string())
}

/// Makes sure every configured algorithm has a signing key; several nodes may race at first
/// start, and exactly one of them creates each key.
pub async fn ensure_keys(state: &Service) -> Result<(), String> {
    for alg in algorithms(state) {
        if active_key(state, alg).await?.is_some() {
            continue;
        }
        let claim = format!("signing-key-bootstrap-{}", alg.as_str());
        let won = state
            .store
            .write(move |c| settings::set_if_absent(c, &claim, "1"))
            .await
            .map_err(|e| e.to_string())?;
        if won {
            let generated = generate_off_thread(state, alg).await?;
            // The first key signs at once: nothing signed before it.
            store_key(state, alg, generated, 0).await?;
        } else {
            // Another node is generating it: wait until it appears.
            for _ in 0..600 {
                if active_key(state, alg).await?.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    Ok(())
}

/// Why an ID token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    /// The store could not be read (the member, the signing key): `temporarily_unavailable`.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Nothing to sign with, or signing failed: `server_error`.
    #[error("{0}")]
    Failed(&'static str),
}

/// Signs a JWT with the active key for `alg`.
pub async fn sign(state: &Service, alg: Alg, claims: &Value) -> Result<String, IdTokenError> {
    let key = match active_key(state, alg)
        .await
        .map_err(IdTokenError::Unavailable)?
    {
        Some(k) => k,
        None => {
            ensure_keys(state)
                .await
                .map_err(IdTokenError::Unavailable)?;
            active_key(state, alg)
                .await
                .map_err(IdTokenError::Unavailable)?
                .ok_or(IdTokenError::Failed("no signing key"))?
        }
    };
    sign_with(state, alg, &key, claims).ok_or(IdTokenError::Failed("signing failed"))
}

fn sign_with(state: &Service, alg: Alg, key: &StoredSigningKey, claims: &Value) -> Option<String> {
    let der = open(state, &key.kid, &key.private_enc)?;
    let head = json!({"alg": alg.as_str(), "kid": key.kid, "typ": "JWT"});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(head.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = match alg {
        Alg::Rs256 => {
            let private = rsa::RsaPrivateKey::from_pkcs8_der(&der).ok()?;
            let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(private);
            signer.sign(signing_input.as_bytes()).to_vec()
        }
        Alg::Es256 => {
            let rng = ring::rand::SystemRandom::new();
            let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &der,
                &rng,
            )
            .ok()?;
            pair.sign(&rng, signing_input.as_bytes())
                .ok()?
                .as_ref()
                .to_vec()
        }
    };
    Some(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// Why an `id_token_hint` cannot be used.
#[derive(Debug)]
pub enum HintFailure {
    /// Not an ID token this server issued to the client: `invalid_request`.
    Invalid(HintError),
    /// The keys could not be read: `temporarily_unavailable`.
    Store,
}

/// Checks a JWS signature against one of our public keys, as stored (a public JWK).
fn verify_signature(alg: Alg, public_jwk: &str, input: &[u8], sig: &[u8]) -> Result<(), HintError> {
    let jwk: Value = serde_json::from_str(public_jwk).map_err(|_| HintError::UnknownKey)?;
    let part = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .ok_or(HintError::UnknownKey)
    };
    match alg {
        Alg::Rs256 => {
            use rsa::signature::Verifier;
            let n = rsa::BigUint::from_bytes_be(&part("n")?);
            let e = rsa::BigUint::from_bytes_be(&part("e")?);
            let public = rsa::RsaPublicKey::new(n, e).map_err(|_| HintError::UnknownKey)?;
            let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public);
            let sig =
                rsa::pkcs1v15::Signature::try_from(sig).map_err(|_| HintError::BadSignature)?;
            verifier
                .verify(input, &sig)
                .map_err(|_| HintError::BadSignature)
        }
        Alg::Es256 => {
            let mut point = vec![0x04];
            point.extend(part("x")?);
            point.extend(part("y")?);
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                point,
            )
            .verify(input, sig)
            .map_err(|_| HintError::BadSignature)
        }
    }
}

/// OIDC Core 3.1.2.1 `id_token_hint`: the `sub` of an ID token this server signed for
/// `client_id`. Any key this server ever signed with counts, retired or not, because an expired
/// hint is still a valid hint; the hint only names whom to expect and never signs anyone in.
pub async fn verify_id_token_hint(
    state: &Service,
    token: &str,
    client_id: &str,
) -> Result<String, HintFailure> {
    let jws = CompactJws::parse(token).map_err(HintFailure::Invalid)?;
    let alg = Alg::parse(&jws.alg).ok_or(HintFailure::Invalid(HintError::UnsupportedAlg))?;
    let kid = jws
        .kid
        .clone()
        .ok_or(HintFailure::Invalid(HintError::UnknownKey))?;
    let all = state
        .store
        .read(|c| keys::published_signing_keys(c, i64::MIN))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "id_token_hint: reading the signing keys failed");
            HintFailure::Store
        })?;
    // The key must be ours *and* of the header's algorithm, so an RSA key is never used to
    // check a token that claims another algorithm.
    let key = all
        .iter()
        .find(|k| k.kid == kid && k.alg == alg.as_str())
        .ok_or(HintFailure::Invalid(HintError::UnknownKey))?;
    verify_signature(
        alg,
        &key.public_jwk,
        jws.signing_input.as_bytes(),
        &jws.signature,
    )
    .map_err(HintFailure::Invalid)?;
    jws.hinted_subject(&state.config.issuer(), client_id)
        .map_err(HintFailure::Invalid)
}

/// The claims a member's granted scopes release (OIDC Core 5.4), shared by ID tokens and userinfo.
fn profile_claims(
    state: &Service,
    m: &scopegate_core::model::Member,
    scopes: &ScopeSet,
    in_id_token: bool,
) -> serde_json::Map<String, Value> {
    let mut c = serde_json::Map::new();
    if scopes.contains("profile") {
        c.insert("name".into(), json!(m.full_name()));
        c.insert("given_name".into(), json!(m.first_name));
        c.insert("family_name".into(), json!(m.last_name));
        if !m.picture_url.is_empty() {
            c.insert("picture".into(), json!(m.picture_url));
        }
        c.insert("locale".into(), json!(m.locale));
    }
    if scopes.contains("email") {
        c.insert("email".into(), json!(m.email));
        // LinkedIn quirk: the ID token carries email_verified as the string "true".
        let verified = if in_id_token && state.config.compat == Compat::Linkedin {
            json!(m.email_verified.to_string())
        } else {
            json!(m.email_verified)
        };
        c.insert("email_verified".into(), verified);
    }
    c
}

/// The ID token for a token response, when the token authorizes `openid` (`scopes` is what it
/// authorizes now, `oauth::token_scopes`); `Ok(None)` without `openid`. A failure is an error,
/// never a response without the ID token.
pub async fn id_token_for(
    state: &Service,
    client_id: &str,
    member_id: &str,
    scopes: &ScopeSet,
    nonce: Option<&str>,
    auth_time: i64,
) -> Result<Option<String>, IdTokenError> {
    if !scopes.contains("openid") {
        return Ok(None);
    }
    let id = member_id.to_string();
    let member = state
        .store
        .read(move |c| members::by_id(c, &id))
        .await
        .map_err(|e| IdTokenError::Unavailable(e.to_string()))?
        .ok_or(IdTokenError::Failed("the member no longer exists"))?;
    let now = state.now();
    let mut claims = serde_json::Map::new();
    claims.insert("iss".into(), json!(state.config.issuer()));
    claims.insert("aud".into(), json!(client_id));
    claims.insert("azp".into(), json!(client_id));
    claims.insert(
        "sub".into(),
        json!(pairwise_sub(state, client_id, member_id)),
    );
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + ID_TOKEN_TTL));
    claims.insert("auth_time".into(), json!(auth_time));
    if let Some(n) = nonce {
        // LinkedIn quirk: the nonce is never echoed.
        if state.config.compat == Compat::Standard {
            claims.insert("nonce".into(), json!(n));
        }
    }
    claims.extend(profile_claims(state, &member, scopes, true));
    let alg = if state.config.es256 {
        Alg::Es256
    } else {
        Alg::Rs256
    };
    sign(state, alg, &Value::Object(claims)).await.map(Some)
}

fn cached_json(v: Value, max_age: u32) -> Response {
    let mut res = Json(v).into_response();
    if let Ok(h) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, h);
    }
    res
}

/// The discovery document (OpenID Connect Discovery 1.0 and RFC 8414): exactly what is served.
pub fn discovery_document(state: &Service) -> Value {
    let base = state.config.public_url.trim_end_matches('/');
    let scopes: Vec<String> = state
        .catalog
        .permissions
        .iter()
        .filter(|p| !p.auto_granted && p.deprecated.is_none() && !p.programs.is_empty())
        .map(|p| p.name.clone())
        .collect();
    json!({
        "issuer": state.config.issuer(),
        "authorization_endpoint": format!("{base}/oauth/v2/authorization"),
        "token_endpoint": format!("{base}/oauth/v2/accessToken"),
        "userinfo_endpoint": format!("{base}/v2/userinfo"),
        "jwks_uri": format!("{base}/oauth/openid/jwks"),
        "introspection_endpoint": format!("{base}/oauth/v2/introspectToken"),
        "revocation_endpoint": format!("{base}/oauth/v2/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": algorithms(state).iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "scopes_supported": scopes,
        "claims_supported": ["iss", "aud", "azp", "iat", "exp", "auth_time", "nonce", "sub", "name", "given_name", "family_name", "picture", "email", "email_verified", "locale"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "display_values_supported": ["page", "popup", "touch"],
        "ui_locales_supported": ["en"],
        "authorization_response_iss_parameter_supported": true,
        // OIDC Core 5.5, as docs/oauth.md describes: parsed strictly, and answered with the
        // claims of the scopes the member consented to.
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    })
}

/// GET /oauth/.well-known/openid-configuration (and the other two well-known paths).
pub async fn discovery(State(state): State<ServiceState>) -> Response {
    cached_json(discovery_document(&state), 300)
}

/// The JWKS could not be read: 503, never cached. A relying party that cached an empty key set
/// would refuse every ID token until its cache expired.
fn jwks_unavailable(e: &str) -> Response {
    tracing::error!(error = %e, "jwks: reading the signing keys failed");
    let mut res = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": 503, "message": "keys are not available yet"})),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// GET /oauth/openid/jwks
pub async fn jwks(State(state): State<ServiceState>) -> Response {
    if let Err(e) = ensure_keys(&state).await {
        return jwks_unavailable(&e);
    }
    // A retired key stays published while ID tokens it signed may still be checked.
    let since = state.now() - ID_TOKEN_TTL;
    let keys = match state
        .store
        .read(move |c| keys::published_signing_keys(c, since))
        .await
    {
        Ok(k) if !k.is_empty() => k,
        Ok(_) => return jwks_unavailable("no signing key is published"),
        Err(e) => return jwks_unavailable(&e.to_string()),
    };
    let jwks: Vec<Value> = keys
        .iter()
        .filter_map(|k| serde_json::from_str(&k.public_jwk).ok())
        .collect();
    cached_json(json!({"keys": jwks}), JWKS_MAX_AGE)
}

/// The bearer token of a resource request (RFC 6750 2.1; the scheme is case-insensitive), or the
/// LinkedIn error to answer with.
pub fn bearer(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::empty_token());
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::bad_authorization("malformed Authorization header"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::invalid_token());
    }
    // RFC 6750 3.1: a Bearer header without exactly one token is a malformed request.
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return Err(ApiError::bad_authorization("malformed Bearer credentials"));
    }
    Ok(token.to_string())
}

/// GET|POST /v2/userinfo
pub async fn userinfo(State(state): State<ServiceState>, headers: HeaderMap) -> Response {
    match userinfo_inner(&state, &headers).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A store outage at userinfo: 503, not a verdict on the token (logged once).
fn userinfo_unavailable(e: scopegate_store::StoreError) -> ApiError {
    tracing::error!(error = %e, "userinfo: store failed");
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        service_error_code: 503,
        code: None,
        message: "try again shortly".into(),
        challenge: None,
    }
}

async fn userinfo_inner(state: &ServiceState, headers: &HeaderMap) -> Result<Value, ApiError> {
    let token = bearer(headers)?;
    let hash = state.keys.token_hash.hash_str(&token).as_str().to_string();
    // The token, its app's approved products and its member, in one read.
    let found = state
        .store
        .read(move |c| {
            let Some(t) = tokens::get(c, &hash)?.filter(|t| t.kind == TokenKind::Access) else {
                return Ok(None);
            };
            let approved = apps::approved_programs(c, &t.client_id)?;
            let member = match &t.member_id {
                Some(m) => members::by_id(c, m)?,
                None => None,
            };
            Ok(Some((t, approved, member)))
        })
        .await
        .map_err(userinfo_unavailable)?;
    let Some((t, approved, member)) = found else {
        return Err(ApiError::invalid_token());
    };
    match t.state(state.now()) {
        TokenState::Revoked => return Err(ApiError::revoked_token()),
        TokenState::Expired => return Err(ApiError::expired_token()),
        TokenState::Active => {}
    }
    // What the token authorizes now: a removed product takes `openid` and the claims with it.
    let scopes = crate::oauth::token_scopes(state, &t, &approved);
    let Some(member_id) = t.member_id.clone().filter(|_| scopes.contains("openid")) else {
        return Err(ApiError::access_denied("userinfo", "GET", "NO_VERSION"));
    };
    // A token whose member was deleted authorizes nothing.
    let member = member.ok_or_else(ApiError::invalid_token)?;
    let mut claims = serde_json::Map::new();
    claims.insert(
        "sub".into(),
        json!(pairwise_sub(state, &t.client_id, &member_id)),
    );
    claims.extend(profile_claims(state, &member, &scopes, false));
    Ok(Value::Object(claims))
}
