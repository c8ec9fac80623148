//! Every error the API returns: a stable machine-readable `code`, an HTTP
//! status and a message for people, as JSON `{ "code": ..., "message": ... }`.
//!
//! Internal errors (database, pipeline) are logged with their detail and
//! answered with a generic message; their text never reaches the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: one of the codes in [`ERROR_CODES`].
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

/// Every code the API can return, with its status and meaning.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    ("bad_parameter", 400, "A query parameter or body field is missing or invalid; the message names it."),
    ("bad_body", 400, "The request body is not the JSON the route expects."),
    ("unauthorized", 401, "No bearer token, or one that is unknown, revoked or expired."),
    ("forbidden", 403, "The token's role may not use this route."),
    ("not_found", 404, "No such route, tenant or month for this token."),
    ("rate_limited", 429, "Too many requests from this client; retry after the Retry-After seconds."),
    ("not_allocated", 409, "The month has no allocation yet; import billing data and allocate it."),
    ("internal", 500, "Something failed inside Tally; it is logged with the request."),
    ("not_ready", 503, "The database is unreachable or its migrations are not current."),
];

#[derive(Debug)]
pub enum ApiError {
    BadParameter {
        name: String,
        message: String,
    },
    BadBody(String),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    RateLimited {
        retry_after: u64,
    },
    NotAllocated(String),
    NotReady(String),
    /// Logged, never shown.
    Internal(String),
}

impl ApiError {
    pub fn bad_parameter(name: &str, message: impl Into<String>) -> Self {
        Self::BadParameter { name: name.to_owned(), message: message.into() }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadParameter { .. } => "bad_parameter",
            Self::BadBody(_) => "bad_body",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::RateLimited { .. } => "rate_limited",
            Self::NotAllocated(_) => "not_allocated",
            Self::NotReady(_) => "not_ready",
            Self::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        let code = self.code();
        let status = ERROR_CODES.iter().find(|(c, _, _)| *c == code).map_or(500, |(_, s, _)| *s);
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn message(&self) -> String {
        match self {
            Self::BadParameter { name, message } => format!("parameter `{name}`: {message}"),
            Self::BadBody(m) | Self::Unauthorized(m) | Self::Forbidden(m) | Self::NotFound(m) | Self::NotAllocated(m) | Self::NotReady(m) => m.clone(),
            Self::RateLimited { retry_after } => format!("too many requests; retry in {retry_after} s"),
            Self::Internal(_) => "internal error; it has been logged".into(),
        }
    }
}

impl From<tally_storage::StorageError> for ApiError {
    fn from(e: tally_storage::StorageError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error answering a request");
        }
        let body = ErrorBody { code: self.code(), message: self.message() };
        let mut resp = (self.status(), axum::Json(body)).into_response();
        if let Self::RateLimited { retry_after } = self {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        if matches!(self, Self::Unauthorized(_)) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
