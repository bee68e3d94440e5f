//! ID-token signing keys and what is signed with them: key lifecycle (generate, seal, rotate,
//! the first key of a deployment), ID tokens, `id_token_hint` checks and pairwise subjects.
//!
//! Keys are generated on first start and kept in the store, the private half encrypted with
//! AES-256-GCM under a key derived from the master secret, so every node over one database signs
//! with the same key and publishes the same set. The newest key signs; a rotated-out key stays
//! published until every ID token it signed has expired.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use scopegate_core::model::Member;
use scopegate_core::oidc_request::{CompactJws, HintError};
use scopegate_core::{Entropy, ScopeSet};
use scopegate_store::keys::{self, StoredSigningKey};
use scopegate_store::{audit, members, settings, StoreError};
use serde_json::{json, Value};

use crate::config::Compat;
use crate::ops::Actor;
use crate::state::Service;

/// How long an ID token is valid.
pub const ID_TOKEN_TTL: i64 = 3600;
/// How long the JWKS may be cached (its `Cache-Control: max-age`).
pub const JWKS_MAX_AGE: u32 = 300;
/// How long a rotated-in key is published before it signs: past every cache of the JWKS, so no
/// relying party meets a `kid` it has not been able to fetch yet.
pub const KEY_PUBLISH_AHEAD: i64 = JWKS_MAX_AGE as i64 + 60;

/// A signing algorithm scopegate can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    /// The JOSE name (`alg` header value).
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }
    /// The algorithm a JOSE name stands for, if scopegate signs with it.
    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }
}

/// Why a signing key could not be made, stored or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The store could not be used.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Generating a key pair failed.
    #[error("generating a {alg} key failed: {detail}")]
    Generate { alg: &'static str, detail: String },
    /// The key-encryption key could not seal a private key.
    #[error("sealing the private key failed")]
    Seal,
    /// The key-generation task did not finish.
    #[error("the key-generation task failed: {0}")]
    Task(String),
    /// Another node claimed the first key and it did not appear in time.
    #[error("no {0} signing key appeared in time")]
    NotPublished(&'static str),
    /// A stored public key is not a JWK (a broken row: never publish a partial set).
    #[error("the stored public key {0} is not a JWK")]
    BadPublicKey(String),
}

impl From<KeyError> for crate::Error {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(s) => s.into(),
            KeyError::NotPublished(_) => crate::Error::Unavailable(e.to_string()),
            other => crate::Error::Internal(other.to_string()),
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
    // The first 9 bytes of the MAC, base64url: 9 bytes are exactly the first 12 characters of
    // the unpadded encoding, so no decoding (and no decoding failure) is involved.
    h.as_str().chars().take(12).collect()
}

fn kek(state: &Service) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, state.keys.key_encryption.as_bytes())
        .ok()
        .map(LessSafeKey::new)
}

fn seal(state: &Service, kid: &str, plaintext: &[u8]) -> Result<String, KeyError> {
    let key = kek(state).ok_or(KeyError::Seal)?;
    let mut nonce = [0u8; 12];
    state.entropy.fill(&mut nonce);
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(kid.as_bytes()),
        &mut buf,
    )
    .map_err(|_| KeyError::Seal)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(URL_SAFE_NO_PAD.encode(out))
}

/// The private key sealed under `kid`, or `None` when it does not open (wrong master secret,
/// tampered row): the caller fails, it never signs with anything else.
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

/// A freshly generated key pair, before it is sealed and stored.
struct NewKey {
    kid: String,
    jwk: Value,
    pkcs8: Vec<u8>,
}

fn generate(entropy: Arc<dyn Entropy>, alg: Alg) -> Result<NewKey, KeyError> {
    let kid = crate::clock::random_id(entropy.as_ref(), 16);
    let failed = |detail: String| KeyError::Generate {
        alg: alg.as_str(),
        detail,
    };
    match alg {
        Alg::Rs256 => {
            let mut rng = EntropyRng(entropy.clone());
            let private =
                rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| failed(e.to_string()))?;
            let public = private.to_public_key();
            let der = private.to_pkcs8_der().map_err(|e| failed(e.to_string()))?;
            let jwk = json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            });
            Ok(NewKey {
                kid,
                jwk,
                pkcs8: der.as_bytes().to_vec(),
            })
        }
        Alg::Es256 => generate_es256(kid).map_err(|detail| failed(detail.into())),
    }
}

fn generate_es256(kid: String) -> Result<NewKey, &'static str> {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| "ECDSA key generation failed")?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| "ECDSA key parsing failed")?;
    let point = pair.public_key().as_ref();
    // Uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes).
    let (x, y) = (&point[1..33], &point[33..65]);
    let jwk = json!({
        "kty": "EC", "use": "sig", "alg": "ES256", "kid": kid, "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
    });
    Ok(NewKey {
        kid,
        jwk,
        pkcs8: pkcs8.as_ref().to_vec(),
    })
}

/// Adapts the injected entropy to the `rand_core` interface the RSA crate asks for.
struct EntropyRng(Arc<dyn Entropy>);

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
async fn generate_off_thread(state: &Service, alg: Alg) -> Result<NewKey, KeyError> {
    let entropy = state.entropy.clone();
    tokio::task::spawn_blocking(move || generate(entropy, alg))
        .await
        .map_err(|e| KeyError::Task(e.to_string()))?
}

/// Seals a new key into a row that signs from `now + activate_in`.
fn sealed_row(
    state: &Service,
    alg: Alg,
    key: NewKey,
    activate_in: i64,
) -> Result<StoredSigningKey, KeyError> {
    Ok(StoredSigningKey {
        private_enc: seal(state, &key.kid, &key.pkcs8)?,
        kid: key.kid,
        alg: alg.as_str().into(),
        public_jwk: key.jwk.to_string(),
        created_at: state.now() + activate_in,
        retired_at: None,
    })
}

/// A key rotated in: its id and the moment it starts signing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rotated {
    pub kid: String,
    pub alg: &'static str,
    /// Unix seconds from which the new key signs (it is published at once).
    pub signs_from: i64,
}

/// `scopegate keys rotate`: adds a new signing key for `alg` that signs from `activate_in`
/// seconds on (published at once); the previous one signs until then and stays published after.
/// The key and its audit event (`keys.rotate`, by `actor`) are written in one transaction.
pub async fn rotate(
    state: &Service,
    actor: &Actor,
    alg: Alg,
    activate_in: i64,
) -> crate::Result<Rotated> {
    if !actor.is_platform_admin() {
        return Err(crate::Error::Forbidden(
            "only a platform admin can rotate signing keys".into(),
        ));
    }
    // The first key of each algorithm is made the usual way, so a rotation never races it.
    ensure_keys(state).await?;
    let activate_in = activate_in.max(0);
    let row = sealed_row(
        state,
        alg,
        generate_off_thread(state, alg).await?,
        activate_in,
    )?;
    let rotated = Rotated {
        kid: row.kid.clone(),
        alg: alg.as_str(),
        signs_from: row.created_at,
    };
    let (now, by) = (state.now(), actor.to_string());
    state
        .store
        .write(move |c| {
            keys::add_signing_key(c, &row)?;
            audit::record(c, now, &by, "keys.rotate", &row.kid, "")
        })
        .await?;
    Ok(rotated)
}

/// The key that signs now for `alg`.
async fn active_key(state: &Service, alg: Alg) -> Result<Option<StoredSigningKey>, StoreError> {
    let now = state.now();
    state
        .store
        .read(move |c| keys::active_signing_key(c, alg.as_str(), now))
        .await
}

/// Makes sure every configured algorithm has a signing key; several nodes may race at first
/// start, and exactly one of them creates each key.
pub async fn ensure_keys(state: &Service) -> Result<(), KeyError> {
    for alg in algorithms(state) {
        if active_key(state, alg).await?.is_some() {
            continue;
        }
        let claim = format!("signing-key-bootstrap-{}", alg.as_str());
        let won = state
            .store
            .write(move |c| settings::set_if_absent(c, &claim, "1"))
            .await?;
        if won {
            // The first key signs at once: nothing signed before it.
            let row = sealed_row(state, alg, generate_off_thread(state, alg).await?, 0)?;
            state
                .store
                .write(move |c| keys::add_signing_key(c, &row))
                .await?;
        } else {
            await_other_node(state, alg).await?;
        }
    }
    Ok(())
}

/// Another node won the claim and is generating the key: wait (a minute at most) until it appears.
async fn await_other_node(state: &Service, alg: Alg) -> Result<(), KeyError> {
    for _ in 0..600 {
        if active_key(state, alg).await?.is_some() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(KeyError::NotPublished(alg.as_str()))
}

/// A published key as an operator sees it (never its private half).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublishedKey {
    pub kid: String,
    pub alg: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

async fn published_rows(state: &Service) -> Result<Vec<StoredSigningKey>, KeyError> {
    // A retired key stays published while ID tokens it signed may still be checked.
    let since = state.now() - ID_TOKEN_TTL;
    Ok(state
        .store
        .read(move |c| keys::published_signing_keys(c, since))
        .await?)
}

/// `scopegate keys list`: the keys the JWKS publishes now.
pub async fn published_keys(state: &Service, actor: &Actor) -> crate::Result<Vec<PublishedKey>> {
    if !actor.is_platform_admin() {
        return Err(crate::Error::Forbidden(
            "only a platform admin can list signing keys".into(),
        ));
    }
    Ok(published_rows(state)
        .await?
        .into_iter()
        .map(|k| PublishedKey {
            kid: k.kid,
            alg: k.alg,
            created_at: k.created_at,
            retired_at: k.retired_at,
        })
        .collect())
}

/// The public JWKs the JWKS endpoint serves, creating the first keys if need be. Fails closed:
/// an empty set or a key that does not parse is an error, never a partial or empty set a relying
/// party would cache and then refuse every ID token with.
pub async fn jwks(state: &Service) -> Result<Vec<Value>, KeyError> {
    ensure_keys(state).await?;
    let rows = published_rows(state).await?;
    if rows.is_empty() {
        return Err(KeyError::NotPublished("any"));
    }
    rows.iter()
        .map(|k| {
            serde_json::from_str(&k.public_jwk).map_err(|_| KeyError::BadPublicKey(k.kid.clone()))
        })
        .collect()
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

impl From<KeyError> for IdTokenError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(_) | KeyError::NotPublished(_) => {
                IdTokenError::Unavailable(e.to_string())
            }
            _ => IdTokenError::Failed("no signing key could be made"),
        }
    }
}

/// Signs a JWT with the active key for `alg`.
pub async fn sign(state: &Service, alg: Alg, claims: &Value) -> Result<String, IdTokenError> {
    let unavailable = |e: StoreError| IdTokenError::Unavailable(e.to_string());
    let key = match active_key(state, alg).await.map_err(unavailable)? {
        Some(k) => k,
        None => {
            ensure_keys(state).await?;
            active_key(state, alg)
                .await
                .map_err(unavailable)?
                .ok_or(IdTokenError::Failed("no signing key"))?
        }
    };
    sign_with(state, alg, &key, claims).ok_or(IdTokenError::Failed("signing failed"))
}

/// The compact JWS of `claims` under `key`, or `None` when the key does not open or sign.
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
pub(crate) fn profile_claims(
    state: &Service,
    m: &Member,
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
/// authorizes now); `Ok(None)` without `openid`. A failure is an error, never a response without
/// the ID token.
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
