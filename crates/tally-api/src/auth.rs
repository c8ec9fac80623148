//! Access tokens and roles.
//!
//! A token is 256 random bits, shown once as `tly_<64 hex>`; only its
//! SHA-256 is stored. API clients send it as `Authorization: Bearer ...`.
//!
//! The dashboard never keeps a token in the browser. Signing in (a POST of
//! the token, or a one-time sign-in link) starts a server-side session: 256
//! random bits `tss_<64 hex>` in the `tally_session` cookie (HttpOnly,
//! SameSite=Strict, `Secure` over HTTPS), stored by SHA-256 with an expiry,
//! ended by signing out, by its expiry, or by its token's revocation.

use std::fmt;
use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tally_domain::TenantId;
use tally_storage::{NewSession, NewToken, SessionKind, SessionRecord, Store, TokenRecord};

use crate::ApiState;
use crate::error::ApiError;

pub const COOKIE: &str = "tally_session";
/// The prefix of a session id (in the cookie).
const SESSION_PREFIX: &str = "tss_";
/// The prefix of a one-time sign-in link's code.
const LINK_PREFIX: &str = "tsl_";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including re-running allocations and posting revenue.
    Admin,
    /// Reads and exports.
    Finance,
    /// Reads.
    Viewer,
    /// Reads only its own tenant.
    Tenant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Finance => "finance",
            Self::Viewer => "viewer",
            Self::Tenant => "tenant",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "finance" => Ok(Self::Finance),
            "viewer" => Ok(Self::Viewer),
            "tenant" => Ok(Self::Tenant),
            other => Err(format!("unknown role {other:?}: expected admin, finance, viewer or tenant")),
        }
    }
}

/// The caller of a request, as its token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: i64,
    pub role: Role,
    /// Set exactly when the role is `tenant`.
    pub tenant: Option<TenantId>,
}

/// What a request presents: a bearer token, or a dashboard session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Bearer(String),
    Session(String),
}

impl Principal {
    /// Routes for the company as a whole: admin, finance, viewer.
    pub fn require_company(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Tenant => Err(ApiError::Forbidden("a tenant token reads only its own tenant's routes".into())),
            _ => Ok(()),
        }
    }

    pub fn require_export(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin | Role::Finance => Ok(()),
            r => Err(ApiError::Forbidden(format!("exports need an admin or finance token, not {r}"))),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            r => Err(ApiError::Forbidden(format!("this route needs an admin token, not {r}"))),
        }
    }

    /// Whether this caller may see `tenant`; a tenant token sees only itself.
    pub fn may_see(&self, tenant: &str) -> bool {
        match (&self.role, &self.tenant) {
            (Role::Tenant, Some(own)) => own.as_str() == tenant,
            (Role::Tenant, None) => false,
            _ => true,
        }
    }
}

/// A new token, returned once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    pub record: TokenRecord,
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// 256 random bits as `<prefix><64 hex>`.
fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

fn well_formed(secret: &str, prefix: &str) -> bool {
    secret.len() == prefix.len() + 64 && secret.starts_with(prefix) && secret[prefix.len()..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Creates a token for `role` (and `tenant` when the role is tenant).
pub async fn issue(
    store: &dyn Store,
    role: Role,
    tenant: Option<TenantId>,
    label: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<IssuedToken, String> {
    match (role, &tenant) {
        (Role::Tenant, None) => return Err("a tenant token needs --tenant ID".into()),
        (Role::Tenant, Some(_)) => {}
        (_, Some(_)) => return Err(format!("--tenant applies only to the tenant role, not {role}")),
        _ => {}
    }
    if expires_at.is_some_and(|e| e <= now) {
        return Err("the expiry lies in the past".into());
    }
    let token = random_secret("tly_");
    let record = store
        .create_token(&NewToken { hash: hash(&token), role: role.as_str().into(), tenant, label, created_at: now, expires_at })
        .await
        .map_err(|e| e.to_string())?;
    Ok(IssuedToken { token, record })
}

/// A token's record if it is known, not revoked and not expired.
async fn live_token(state: &ApiState, token: &str) -> Result<TokenRecord, ApiError> {
    let invalid = || ApiError::Unauthorized("the token is unknown, revoked or expired".into());
    if !well_formed(token, "tly_") {
        return Err(invalid());
    }
    state.cache.refresh(state.store.as_ref()).await?;
    let key = hash(token);
    let rec = match state.cache.token(&key) {
        Some(rec) => rec,
        None => {
            let rec = state.store.token_by_hash(&key).await?.ok_or_else(invalid)?;
            state.cache.keep_token(key, rec.clone());
            rec
        }
    };
    if !token_live(&rec, state.clock.now()) {
        return Err(invalid());
    }
    Ok(rec)
}

fn token_live(rec: &TokenRecord, now: DateTime<Utc>) -> bool {
    rec.revoked_at.is_none() && rec.expires_at.is_none_or(|e| e > now)
}

fn principal(rec: &TokenRecord) -> Result<Principal, ApiError> {
    let role: Role = rec.role.parse().map_err(ApiError::internal)?;
    Ok(Principal { token_id: rec.id, role, tenant: rec.tenant.clone() })
}

/// Checks a presented token: known, not revoked, not expired.
pub async fn verify(state: &ApiState, token: &str) -> Result<Principal, ApiError> {
    principal(&live_token(state, token).await?)
}

/// A session (or sign-in link) by its secret, if it and its token are live.
async fn live_session(state: &ApiState, secret: &str, prefix: &str) -> Result<SessionRecord, ApiError> {
    let invalid = || ApiError::Unauthorized("the sign-in has ended or is unknown; sign in again".into());
    if !well_formed(secret, prefix) {
        return Err(invalid());
    }
    state.cache.refresh(state.store.as_ref()).await?;
    let key = hash(secret);
    let rec = match state.cache.session(&key) {
        Some(rec) => rec,
        None => {
            let rec = state.store.session_by_hash(&key).await?.ok_or_else(invalid)?;
            state.cache.keep_session(key, rec.clone());
            rec
        }
    };
    let now = state.clock.now();
    let kind = if prefix == LINK_PREFIX { SessionKind::Link } else { SessionKind::Session };
    if rec.kind != kind || rec.revoked_at.is_some() || rec.expires_at <= now || !token_live(&rec.token, now) {
        return Err(invalid());
    }
    Ok(rec)
}

/// Checks a session cookie's value.
pub async fn verify_session(state: &ApiState, session: &str) -> Result<Principal, ApiError> {
    principal(&live_session(state, session, SESSION_PREFIX).await?.token)
}

/// A session started: the secret for the cookie, and how long it lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedSession {
    pub secret: String,
    pub principal: Principal,
    pub max_age_seconds: i64,
}

/// Stores a new session (or one-time sign-in link) of `token`, lasting
/// `hours` at most and never beyond the token's own expiry: its secret and expiry.
async fn store_session(
    store: &dyn Store,
    token: &TokenRecord,
    kind: SessionKind,
    hours: i64,
    now: DateTime<Utc>,
) -> tally_storage::Result<(String, DateTime<Utc>)> {
    let mut expires_at = now + chrono::Duration::hours(hours);
    if let Some(e) = token.expires_at {
        expires_at = expires_at.min(e);
    }
    let secret = random_secret(if kind == SessionKind::Link { LINK_PREFIX } else { SESSION_PREFIX });
    store.create_session(&NewSession { hash: hash(&secret), token_id: token.id, kind, created_at: now, expires_at }).await?;
    Ok((secret, expires_at))
}

/// Starts a session for a live token.
async fn start(state: &ApiState, token: &TokenRecord, kind: SessionKind, hours: i64) -> Result<StartedSession, ApiError> {
    let now = state.clock.now();
    let (secret, expires_at) = store_session(state.store.as_ref(), token, kind, hours, now).await?;
    Ok(StartedSession { secret, principal: principal(token)?, max_age_seconds: (expires_at - now).num_seconds().max(1) })
}

/// Signing in with a token: a new session.
pub async fn sign_in(state: &ApiState, token: &str) -> Result<StartedSession, ApiError> {
    let rec = live_token(state, token).await?;
    start(state, &rec, SessionKind::Session, i64::from(state.config.server.session_hours)).await
}

/// Signing in through a one-time link: the link is used up, a session starts.
/// Of two uses of one link (two clicks, a replay) exactly one succeeds.
pub async fn sign_in_with_link(state: &ApiState, code: &str) -> Result<StartedSession, ApiError> {
    let link = live_session(state, code, LINK_PREFIX).await?;
    if !state.store.revoke_session(&hash(code), state.clock.now()).await? {
        return Err(ApiError::Unauthorized("this sign-in link has been used already; sign in with the token".into()));
    }
    state.cache.forget_session(&hash(code));
    start(state, &link.token, SessionKind::Session, i64::from(state.config.server.session_hours)).await
}

/// Ends a session (signing out); unknown or ended sessions are fine.
pub async fn sign_out(state: &ApiState, session: &str) -> Result<(), ApiError> {
    if well_formed(session, SESSION_PREFIX) {
        state.store.revoke_session(&hash(session), state.clock.now()).await?;
        state.cache.forget_session(&hash(session));
    }
    Ok(())
}

/// A one-time sign-in link's code for a token (`tally demo` prints the
/// link): valid once, for at most `hours`.
pub async fn issue_link(store: &dyn Store, token: &TokenRecord, hours: i64, now: DateTime<Utc>) -> Result<String, String> {
    store_session(store, token, SessionKind::Link, hours, now).await.map(|(code, _)| code).map_err(|e| e.to_string())
}

/// The `Set-Cookie` value of a session (`max_age` 0 ends it in the browser).
pub fn session_cookie_header(secret: &str, max_age_seconds: i64, secure: bool) -> axum::http::HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_seconds}{secure}");
    axum::http::HeaderValue::from_str(&cookie).expect("a session id is ASCII")
}

/// The credential of a request: the bearer header, else the session cookie.
pub fn presented(parts: &Parts) -> Option<Credential> {
    if let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return h.strip_prefix("Bearer ").map(|t| Credential::Bearer(t.trim().to_owned()));
    }
    session_cookie(&parts.headers).map(Credential::Session)
}

/// The value of the session cookie, if the request carries one.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

impl FromRequestParts<ApiState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        match presented(parts) {
            Some(Credential::Bearer(token)) => verify(state, &token).await,
            Some(Credential::Session(session)) => verify_session(state, &session).await,
            None => Err(ApiError::Unauthorized("this route needs a bearer token (Authorization: Bearer tly_...)".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_random_bits_with_their_prefix() {
        let a = random_secret(SESSION_PREFIX);
        assert!(well_formed(&a, SESSION_PREFIX));
        assert!(!well_formed(&a, LINK_PREFIX), "a session id is not a sign-in link");
        assert_ne!(a, random_secret(SESSION_PREFIX));
        assert!(!well_formed("tss_zz", SESSION_PREFIX));
        assert!(!well_formed(&format!("tss_{}", "g".repeat(64)), SESSION_PREFIX), "hex only");
    }

    #[test]
    fn roles_parse_from_their_names() {
        assert_eq!("finance".parse::<Role>().unwrap(), Role::Finance);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn a_tenant_principal_sees_only_its_own_tenant() {
        let p = Principal { token_id: 1, role: Role::Tenant, tenant: Some(TenantId::parse("acme").unwrap()) };
        assert!(p.may_see("acme"));
        assert!(!p.may_see("globex"));
        assert!(p.require_company().is_err());
        let v = Principal { token_id: 2, role: Role::Viewer, tenant: None };
        assert!(v.may_see("globex"));
        assert!(v.require_export().is_err());
    }
}
