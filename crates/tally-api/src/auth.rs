//! Access tokens and roles.
//!
//! A token is 256 random bits, shown once as `tly_<64 hex>`; only its
//! SHA-256 is stored. Requests carry it as `Authorization: Bearer ...` or,
//! for the dashboard, in the `tally_session` cookie (HttpOnly, SameSite=Strict).

use std::fmt;
use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tally_domain::TenantId;
use tally_storage::{NewToken, Store, TokenRecord};

use crate::ApiState;
use crate::error::ApiError;

pub const COOKIE: &str = "tally_session";

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
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("tly_{}", hex::encode(bytes));
    let record = store
        .create_token(&NewToken { hash: hash(&token), role: role.as_str().into(), tenant, label, created_at: now, expires_at })
        .await
        .map_err(|e| e.to_string())?;
    Ok(IssuedToken { token, record })
}

/// Checks a presented token: known, not revoked, not expired.
pub async fn verify(state: &ApiState, token: &str) -> Result<Principal, ApiError> {
    let invalid = || ApiError::Unauthorized("the token is unknown, revoked or expired".into());
    if !token.starts_with("tly_") || token.len() != 68 {
        return Err(invalid());
    }
    let now = state.clock.now();
    state.cache.refresh(state.store.as_ref()).await;
    let key = hash(token);
    let rec = match state.cache.token(&key) {
        Some(rec) => rec,
        None => {
            let rec = state.store.token_by_hash(&key).await?.ok_or_else(invalid)?;
            state.cache.keep_token(key, rec.clone());
            rec
        }
    };
    if rec.revoked_at.is_some() || rec.expires_at.is_some_and(|e| e <= now) {
        return Err(invalid());
    }
    let role: Role = rec.role.parse().map_err(ApiError::internal)?;
    Ok(Principal { token_id: rec.id, role, tenant: rec.tenant })
}

/// The token of a request: the bearer header, else the session cookie.
pub fn presented(parts: &Parts) -> Option<String> {
    if let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return h.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
    }
    parts
        .headers
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
        let token = presented(parts).ok_or_else(|| ApiError::Unauthorized("this route needs a bearer token (Authorization: Bearer tly_...)".into()))?;
        verify(state, &token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
