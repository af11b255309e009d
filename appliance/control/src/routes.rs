//! Route handlers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use edgerec_engine::config::Disposition;
use edgerec_engine::index::{self, RecordingState};
use edgerec_engine::recorder::RecordingRequest;
use serde::Deserialize;
use serde_json::json;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::{ApiError, ApiState};

type S = State<Arc<ApiState>>;

pub async fn health(State(s): S) -> Json<serde_json::Value> {
    let e = &s.engine;
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": s.started.elapsed().as_secs(),
        "live_streams": e.streams().len(),
        "rtmp": e.rtmp_addr().to_string(),
    }))
}

pub async fn metrics(State(s): S) -> Response {
    let body = tokio::task::spawn_blocking(move || s.engine.metrics_text())
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

pub async fn streams(State(s): S) -> Json<serde_json::Value> {
    Json(json!({ "streams": s.engine.streams() }))
}

pub async fn sources(State(s): S) -> Json<serde_json::Value> {
    Json(json!({ "sources": s.engine.sources() }))
}

pub async fn stream(
    State(s): S,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(name) = path?;
    let v = s
        .engine
        .streams()
        .into_iter()
        .find(|v| v.name == name)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "stream_not_live",
                format!("stream {name} is not live"),
            )
        })?;
    Ok(Json(v).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    stream: Option<String>,
    from: Option<String>,
    to: Option<String>,
    state: Option<String>,
    limit: Option<usize>,
}

/// RFC 3339 (`2026-11-21T09:00:00Z`) or Unix milliseconds.
fn parse_time(name: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(ms) = v.parse::<i64>() {
        return DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| ApiError::bad_request(format!("{name}: {v} is out of range")));
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ApiError::bad_request(format!("{name}: {e} (RFC 3339 or Unix milliseconds)")))
}

pub async fn list(
    State(s): S,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let state = match q.state.as_deref() {
        None | Some("") => None,
        Some(v) => Some(
            serde_json::from_value::<RecordingState>(json!(v)).map_err(|_| {
                ApiError::bad_request(format!(
                    "state: {v:?} is not one of recording, finalized, recovered, failed"
                ))
            })?,
        ),
    };
    let query = index::Query {
        stream: q.stream.filter(|s| !s.is_empty()),
        from: q
            .from
            .as_deref()
            .map(|v| parse_time("from", v))
            .transpose()?,
        to: q.to.as_deref().map(|v| parse_time("to", v)).transpose()?,
        state,
        limit: q.limit,
    };
    let engine = s.engine.clone();
    let recs = tokio::task::spawn_blocking(move || engine.recordings(&query))
        .await
        .map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })??;
    Ok(Json(json!({ "recordings": recs })).into_response())
}

pub async fn get_one(
    State(s): S,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    Ok(Json(s.engine.recording(&id)?).into_response())
}

/// `POST /v1/recordings`: the stream and optional settings, in the same forms as
/// the config file (`"rotation": "5s"` or `{"duration": "5m", "size": "1G"}`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    stream: String,
    template: Option<String>,
    rotation: Option<edgerec_engine::config::Rotation>,
    container: Option<edgerec_engine::config::Container>,
}

pub async fn start(
    State(s): S,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(v) = body?;
    // Deserialize by hand so unknown fields and bad values get a 4xx with the reason.
    let b: StartBody = serde_json::from_value(v)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_body", e.to_string()))?;
    let request = RecordingRequest {
        template: b.template,
        rotation: b.rotation,
        container: b.container,
    };
    let rec = s.engine.start_recording(&b.stream, request).await?;
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

pub async fn stop(
    State(s): S,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    Ok(Json(s.engine.stop_recording(&id).await?).into_response())
}

pub async fn delete(
    State(s): S,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    s.engine.delete_recording(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn file(
    State(s): S,
    path: Result<Path<(String, u32)>, PathRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let Path((id, n)) = path?;
    let file = s.engine.part_path(&id, n)?;
    if !file.is_file() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "file_missing",
            format!("part {n} of {id} has no file on disk"),
        ));
    }
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "recording.mp4".into());
    let resp = ServeFile::new(&file)
        .oneshot(req)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let (mut parts, body) = resp.into_parts();
    let kind = match s.disposition {
        Disposition::Attachment => "attachment",
        Disposition::Inline => "inline",
    };
    // An ASCII fallback plus the RFC 5987 UTF-8 name.
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    )) {
        parts.headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}

pub async fn orphans(State(s): S) -> Json<serde_json::Value> {
    match s.engine.orphans() {
        Some(files) => Json(json!({ "scan": "done", "files": files })),
        None => Json(json!({ "scan": "running", "files": [] })),
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}
