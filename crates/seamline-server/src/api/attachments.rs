//! `POST /api/v1/conversations/{id}/attachments?name=` (the file is the
//! request body, its type the `Content-Type`) keeps a file for a message
//! about to be written; `GET /api/v1/attachments/{key}` gives it back.
//! A message names its files by key (`MessageBody::attachments`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use seamline_core::role::Permission;
use seamline_core::ConversationId;
use seamline_store::Attachment;
use serde::Deserialize;

use crate::api::conversations::{load, InboxResult};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::inbox::attachments::{check, is_image};
use crate::AppState;

#[derive(Debug, Deserialize)]
pub struct UploadParams {
    name: Option<String>,
}

pub async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiQuery(params): ApiQuery<UploadParams>,
    headers: HeaderMap,
    body: Bytes,
) -> InboxResult<(StatusCode, Json<Attachment>)> {
    principal.require(Permission::WriteData)?;
    load(state.store.as_ref(), &principal, id).await?;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let name = params.name.unwrap_or_default();
    let checked = check(&name, declared, &body).map_err(ApiError::from)?;
    let kept = state
        .blobs
        .put(principal.workspace, checked, &body)
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("keeping a file")))?;
    Ok((StatusCode::CREATED, Json(kept)))
}

pub async fn download(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Response> {
    principal.require(Permission::ReadData)?;
    let found = state
        .blobs
        .get(principal.workspace, &key)
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("reading a file")))?;
    let (attachment, bytes) = found.ok_or(ApiError::NotFound("attachment"))?;
    Ok(file_response(&attachment, bytes))
}

/// The file as a download (an image may show in the page), never as
/// something the browser would run.
pub fn file_response(attachment: &Attachment, bytes: Vec<u8>) -> Response {
    let disposition = if is_image(&attachment.content_type) {
        "inline"
    } else {
        "attachment"
    };
    let encoded: String =
        url::form_urlencoded::byte_serialize(attachment.name.as_bytes()).collect();
    let header_value = |text: String| {
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
    };
    (
        [
            (
                header::CONTENT_TYPE,
                header_value(attachment.content_type.clone()),
            ),
            (
                header::CONTENT_DISPOSITION,
                header_value(format!("{disposition}; filename*=UTF-8''{encoded}")),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=3600"),
            ),
        ],
        bytes,
    )
        .into_response()
}
