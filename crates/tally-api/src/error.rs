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
    ("method_not_allowed", 405, "The route exists but does not take this HTTP method."),
    ("rate_limited", 429, "Too many requests from this client; retry after the Retry-After seconds."),
    ("not_allocated", 409, "The month has no allocation yet; import billing data and allocate it."),
    ("internal", 500, "Something failed inside Tally; it is logged with the request."),
    ("payload_too_large", 413, "The request body is larger than the server takes (server.max_body_bytes)."),
    ("unsupported_media_type", 415, "A browser's request body must be JSON (Content-Type: application/json)."),
    ("not_ready", 503, "The database is unreachable or its migrations are not current."),
    ("timeout", 503, "The request took longer than the server allows (server.request_timeout_seconds)."),
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
    MethodNotAllowed(String),
    PayloadTooLarge(String),
    UnsupportedMediaType(String),
    Timeout(String),
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
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Timeout(_) => "timeout",
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
            Self::BadBody(m)
            | Self::Unauthorized(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::NotAllocated(m)
            | Self::NotReady(m)
            | Self::MethodNotAllowed(m)
            | Self::PayloadTooLarge(m)
            | Self::UnsupportedMediaType(m)
            | Self::Timeout(m) => m.clone(),
            Self::RateLimited { retry_after } => format!("too many requests; retry in {retry_after} s"),
            Self::Internal(_) => "internal error; it has been logged".into(),
        }
    }
}

impl From<tally_storage::StorageError> for ApiError {
    fn from(e: tally_storage::StorageError) -> Self {
        if e.is_unavailable() {
            // Logged when a request finds it away, not again for each request told so meanwhile.
            if !matches!(e, tally_storage::StorageError::Unavailable(_)) {
                tracing::warn!(error = %e, "the database is unreachable");
            }
            return Self::NotReady(DATABASE_AWAY.into());
        }
        Self::Internal(e.to_string())
    }
}

/// What a client is told while the database is away (its error stays in the log).
pub const DATABASE_AWAY: &str = "the database is unreachable; try again shortly";

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

/// Whether a response is an error the framework or a middleware made rather
/// than a handler (a body over the limit, a method the route lacks, a
/// timeout, a body that is not UTF-8): an error status in plain text or
/// none, not the JSON or HTML that Tally's own errors speak.
pub fn is_framework_error(status: StatusCode, content_type: Option<&str>) -> bool {
    status.as_u16() >= 400 && !content_type.is_some_and(|c| c.starts_with("application/json") || c.starts_with("text/html"))
}

/// Such an error, with the text it carried, in the shape of every other one.
pub fn framework_error(status: StatusCode, text: &str) -> ApiError {
    let text: String = text.trim().chars().take(300).collect();
    let said = |fallback: &str| if text.is_empty() { fallback.to_owned() } else { text.clone() };
    match status.as_u16() {
        400 => ApiError::BadBody(said("the request cannot be read")),
        404 => ApiError::NotFound("no such route".into()),
        405 => ApiError::MethodNotAllowed("this route does not take that method".into()),
        408 | 503 | 504 => ApiError::Timeout("the request took too long and was stopped".into()),
        413 => ApiError::PayloadTooLarge("the request body is larger than the server takes".into()),
        415 => ApiError::UnsupportedMediaType(said("the body must be JSON")),
        422 => ApiError::BadBody(said("the body is not what the route expects")),
        _ => ApiError::Internal(format!("{status}: {text}")),
    }
}
