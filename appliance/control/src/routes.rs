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

/// 200 while the daemon does its work; 503 with the reasons when a shard or
/// the index has stalled (the appliance's watchdog then restarts it).
pub async fn health(State(s): S) -> Response {
    let e = &s.engine;
    let problems: Vec<String> = e.liveness().iter().map(|p| p.to_string()).collect();
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if problems.is_empty() { "ok" } else { "stalled" },
        "problems": problems,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": s.started.elapsed().as_secs(),
        "live_streams": e.streams().len(),
        "rtmp": e.rtmp_addr().to_string(),
        "rtsp": e.rtsp_addr().map(|a| a.to_string()),
    });
    (status, Json(body)).into_response()
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

/// `POST /v1/rtp-sessions`: opens ports for an SFU or media server to relay RTP to.
pub async fn open_rtp_session(
    State(s): S,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(v) = body?;
    let req = serde_json::from_value(v)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_body", e.to_string()))?;
    let view = s.engine.open_rtp_session(req).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

pub async fn rtp_sessions(State(s): S) -> Json<serde_json::Value> {
    Json(json!({ "sessions": s.engine.rtp_sessions() }))
}

pub async fn rtp_session(
    State(s): S,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    Ok(Json(s.engine.rtp_session(&id)?).into_response())
}

/// `DELETE /v1/rtp-sessions/{id}`: ends it; its recording is finalized.
pub async fn close_rtp_session(
    State(s): S,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    s.engine.close_rtp_session(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/whip/{app}/{name}` (WHIP, RFC 9725): an SDP offer in, 201 with the
/// answer and the session's URL in `Location`.
pub async fn whip_offer(State(s): S, req: Request) -> Result<Response, ApiError> {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let stream = req
        .uri()
        .path()
        .strip_prefix("/v1/whip/")
        .unwrap_or("")
        .to_owned();
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/sdp") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_body",
            "WHIP offers are application/sdp",
        ));
    }
    let body = axum::body::to_bytes(req.into_body(), 256 * 1024)
        .await
        .map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let offer =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("SDP is not UTF-8"))?;
    let answer = s.engine.whip_offer(stream, offer, peer).await?;
    let location = format!("/v1/whip-sessions/{}", answer.id);
    Ok((
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_owned()),
            (header::LOCATION, location),
        ],
        answer.sdp,
    )
        .into_response())
}

/// `DELETE /v1/whip-sessions/{id}`: the publisher is done.
pub async fn whip_delete(
    State(s): S,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    s.engine.whip_delete(&id).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn whip_sessions(State(s): S) -> Json<serde_json::Value> {
    Json(json!({ "sessions": s.engine.whip_sessions() }))
}

/// `POST /v1/ingest/mpegts/{app}/{name}`: a (chunked) body of MPEG-TS, recorded
/// as the named stream; answered when the upload ends and the recording is
/// finalized.
pub async fn mpegts_upload(State(s): S, req: Request) -> Result<Response, ApiError> {
    use futures::StreamExt;
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let stream = req
        .uri()
        .path()
        .strip_prefix("/v1/ingest/mpegts/")
        .unwrap_or("")
        .to_owned();
    let upload = s.engine.mpegts_upload(stream, peer).await?;
    let mut body = req.into_body().into_data_stream();
    let mut error = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => {
                if upload.chunks.send(c).await.is_err() {
                    break; // the feed ended (API stop, shutdown)
                }
            }
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    drop(upload.chunks);
    let reason = upload.done.await.unwrap_or("shutdown");
    Ok(Json(json!({ "ended": reason, "body_error": error })).into_response())
}

/// One extension as the API shows it: state and counters, where it came from,
/// what it is bound to, and its config keys (not values: they may be secrets).
fn extension_view(s: &ApiState, e: &edgerec_ext::Extension) -> serde_json::Value {
    let exts = s.engine.extensions();
    let (streams, layouts) = exts.bound(e.id());
    let mut v = json!(e.status());
    v["source"] = json!(exts.source(e.id()));
    v["streams"] = json!(streams);
    v["layouts"] = json!(layouts);
    v["config_keys"] = json!(e.spec().config.iter().map(|(k, _)| k).collect::<Vec<_>>());
    v
}

pub async fn extensions(State(s): S) -> Json<serde_json::Value> {
    let exts = s.engine.extensions();
    let list: Vec<_> = exts
        .all()
        .iter()
        .map(|e| extension_view(&s, e))
        .chain(
            exts.broken()
                .iter()
                .map(|(id, e)| json!({ "id": id, "state": "not-loaded", "source": exts.source(id), "error": e })),
        )
        .collect();
    Json(json!({ "extensions": list }))
}

pub async fn extension(
    State(s): S,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let exts = s.engine.extensions();
    if let Some(e) = exts.get(&id) {
        return Ok(Json(extension_view(&s, &e)).into_response());
    }
    if let Some(e) = exts.broken().get(&id) {
        return Ok(Json(
            json!({ "id": id, "state": "not-loaded", "source": exts.source(&id), "error": e }),
        )
        .into_response());
    }
    Err(no_extension(&id))
}

fn no_extension(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "extension_not_found",
        format!("extension {id} is not loaded"),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallQuery {
    world: Option<edgerec_ext::World>,
    /// One stream glob to bind (multipart bodies may repeat `streams`).
    streams: Option<String>,
    layout: Option<String>,
}

/// Installs or replaces an extension. The body is the component
/// (`content-type: application/wasm`, with `?world=&streams=&layout=`), or a
/// multipart form: `component` (the .wasm), optional `manifest`
/// (extension.toml), `streams` (repeatable), `layout`, `world`. The component
/// is loaded, checked and called once on a sample before it is swapped in;
/// calls in flight finish on the old one.
pub async fn install_extension(
    State(s): S,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<InstallQuery>, QueryRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let Query(q) = q?;
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut up = edgerec_engine::extensions::Upload {
        world: q.world,
        streams: q.streams.into_iter().collect(),
        layout: q.layout,
        ..Default::default()
    };
    if ctype.starts_with("multipart/form-data") {
        use axum::extract::FromRequest;
        let mut form = axum::extract::Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?
        {
            let name = field.name().unwrap_or("").to_owned();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| ApiError::bad_request(e.body_text()))?;
            let text = || {
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| ApiError::bad_request(format!("{name}: not UTF-8")))
            };
            match name.as_str() {
                "component" => up.wasm = bytes.to_vec(),
                "manifest" => up.manifest = Some(text()?),
                "streams" => up.streams.push(text()?),
                "layout" => up.layout = Some(text()?),
                "world" => {
                    up.world =
                        Some(serde_json::from_value(json!(text()?.trim())).map_err(|_| {
                            ApiError::bad_request("world: one of naming, layout, hook")
                        })?)
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown form field {other:?} (component, manifest, streams, layout, world)"
                    )))
                }
            }
        }
    } else if ctype.is_empty()
        || ctype.starts_with("application/wasm")
        || ctype.starts_with("application/octet-stream")
    {
        up.wasm = axum::body::to_bytes(req.into_body(), EXTENSION_BODY_LIMIT)
            .await
            .map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string()))?
            .to_vec();
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_body",
            "send the component as application/wasm, or a multipart/form-data form",
        ));
    }
    if up.wasm.is_empty() {
        return Err(ApiError::bad_request("no component in the request"));
    }
    let engine = s.engine.clone();
    let id2 = id.clone();
    let out = tokio::task::spawn_blocking(move || engine.extensions().install(&id2, up))
        .await
        .map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })??;
    let status = if out.replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let view = s
        .engine
        .extensions()
        .get(&id)
        .map(|e| extension_view(&s, &e))
        .unwrap_or(json!(null));
    Ok((status, Json(json!({ "installed": out, "extension": view }))).into_response())
}

/// The largest component an upload may carry.
pub const EXTENSION_BODY_LIMIT: usize = 64 << 20;

pub async fn remove_extension(
    State(s): S,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let engine = s.engine.clone();
    tokio::task::spawn_blocking(move || engine.extensions().remove(&id))
        .await
        .map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })??;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Switches a disabled extension back on.
pub async fn enable_extension(
    State(s): S,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let e = s
        .engine
        .extensions()
        .get(&id)
        .ok_or_else(|| no_extension(&id))?;
    e.enable();
    Ok(Json(extension_view(&s, &e)).into_response())
}

/// Computes a layout: the extension bound to `name`, or the built-in grid when
/// none is bound or it fails (the answer says which, and why).
pub async fn layout(
    State(s): S,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<edgerec_ext::LayoutInput>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Path(name) = path?;
    let Json(input) = body?;
    let ext = s.engine.extensions().layout(&name);
    let (scenes, source, error) = match ext {
        None => (
            edgerec_ext::builtin_grid(&input),
            "builtin".to_string(),
            None,
        ),
        Some(ext) => {
            let id = ext.id().to_string();
            let input2 = input.clone();
            match tokio::task::spawn_blocking(move || ext.layout(&input2)).await {
                Ok(Ok(scenes)) => (scenes, id, None),
                Ok(Err(e)) => (
                    edgerec_ext::builtin_grid(&input),
                    "builtin".to_string(),
                    Some(json!({ "extension": id, "kind": e.kind(), "message": e.to_string() })),
                ),
                Err(e) => (
                    edgerec_ext::builtin_grid(&input),
                    "builtin".to_string(),
                    Some(
                        json!({ "extension": id, "kind": "host-error", "message": e.to_string() }),
                    ),
                ),
            }
        }
    };
    Ok(Json(
        json!({ "layout": name, "source": source, "scenes": scenes, "fallback_because": error }),
    )
    .into_response())
}
