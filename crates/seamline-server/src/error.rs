//! The one error type of the HTTP edge. Every error answers with
//! `{"error": {"code", "message", "field"}}` (and `"errors"` listing each
//! invalid batch item); internal causes are logged, never shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use seamline_core::FieldError;
use seamline_store::StoreError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("too large")]
    TooLarge(Vec<FieldError>),
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn field(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldError::new(code, field, message)])
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict(what) => ApiError::Conflict(what),
            other => ApiError::Internal(anyhow::Error::new(other).context("store")),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError::Invalid(vec![error])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, errors) = match self {
            ApiError::Invalid(errors) => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                String::new(),
                errors,
            ),
            ApiError::TooLarge(errors) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                String::new(),
                errors,
            ),
            ApiError::Unauthenticated(why) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                why.into(),
                vec![],
            ),
            ApiError::Forbidden(why) => (StatusCode::FORBIDDEN, "forbidden", why.into(), vec![]),
            ApiError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
                vec![],
            ),
            ApiError::Conflict(what) => (
                StatusCode::CONFLICT,
                "conflict",
                format!("{what} already exists"),
                vec![],
            ),
            ApiError::Unavailable(why) => {
                tracing::warn!(reason = %why, "service unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "try again shortly".into(),
                    vec![],
                )
            }
            ApiError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log".into(),
                    vec![],
                )
            }
        };
        let body = match errors.first() {
            Some(first) => json!({
                "error": {"code": first.code, "message": first.message, "field": first.field},
                "errors": errors,
            }),
            None => json!({"error": {"code": code, "message": message, "field": null}}),
        };
        (status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
