//! The REST API (`/v1`), `/metrics` and `/v1/health`.
//!
//! Every route but health and metrics needs `Authorization: Bearer <key>`. Every
//! error is JSON — `{"error":{"code","message"}}` with a matching status — including
//! the extractor rejections axum would otherwise answer in plain text, so clients
//! never have to parse two error formats and bad input never gets a 500.

mod error;
mod routes;
mod system;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use edgerec_engine::config::Disposition;
use edgerec_engine::Engine;
use subtle::ConstantTimeEq;

pub use error::ApiError;

pub struct ApiState {
    pub engine: Arc<Engine>,
    pub api_key: String,
    pub disposition: Disposition,
    pub started: Instant,
    /// The appliance update in progress, if any (`/v1/system/update`).
    pub updates: system::Updates,
}

/// The whole HTTP surface.
pub fn router(state: Arc<ApiState>) -> Router {
    let protected = Router::new()
        .route("/v1/streams", get(routes::streams))
        .route("/v1/sources", get(routes::sources))
        .route("/v1/ingest/mpegts/{*stream}", post(routes::mpegts_upload))
        .route(
            "/v1/rtp-sessions",
            get(routes::rtp_sessions).post(routes::open_rtp_session),
        )
        .route(
            "/v1/rtp-sessions/{id}",
            get(routes::rtp_session).delete(routes::close_rtp_session),
        )
        .route("/v1/streams/{*name}", get(routes::stream))
        .route("/v1/recordings", get(routes::list).post(routes::start))
        .route(
            "/v1/recordings/{id}",
            get(routes::get_one).delete(routes::delete),
        )
        .route("/v1/recordings/{id}/stop", post(routes::stop))
        .route("/v1/recordings/{id}/parts/{n}/file", get(routes::file))
        .route("/v1/orphans", get(routes::orphans))
        .route("/v1/extensions", get(routes::extensions))
        .route(
            "/v1/extensions/{id}",
            get(routes::extension)
                .put(routes::install_extension)
                .delete(routes::remove_extension)
                .layer(axum::extract::DefaultBodyLimit::max(
                    routes::EXTENSION_BODY_LIMIT,
                )),
        )
        .route("/v1/extensions/{id}/enable", post(routes::enable_extension))
        .route("/v1/layouts/{name}", post(routes::layout))
        .route("/v1/system", get(system::system))
        .route(
            "/v1/system/update",
            get(system::update_status)
                .put(system::update)
                .layer(axum::extract::DefaultBodyLimit::max(system::BUNDLE_LIMIT)),
        )
        .route("/v1/system/reboot", post(system::reboot))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    let whip = Router::new()
        .route("/v1/whip/{*stream}", post(routes::whip_offer))
        .route(
            "/v1/whip-sessions/{id}",
            axum::routing::delete(routes::whip_delete),
        )
        .route("/v1/whip-sessions", get(routes::whip_sessions))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    // Browsers call the API (WHIP above all) from other origins. CORS wraps the
    // whole router so preflights are answered before routing and auth; every
    // request still needs the bearer token, which a browser never sends on its own.
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([
            axum::http::Method::GET,
            axum::http::Method::POST,
            axum::http::Method::PUT,
            axum::http::Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::LOCATION]);
    Router::new()
        .route("/v1/health", get(routes::health))
        .route("/metrics", get(routes::metrics))
        .merge(protected)
        .merge(whip)
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
        .layer(cors)
}

async fn auth(
    State(s): State<Arc<ApiState>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(k) if bool::from(k.as_bytes().ct_eq(s.api_key.as_bytes())) => Ok(next.run(req).await),
        Some(_) => Err(ApiError::unauthorized("invalid bearer token")),
        None => Err(ApiError::unauthorized(
            "missing bearer token (Authorization: Bearer <api key>)",
        )),
    }
}
