//! The REST API (`/v1`), `/metrics` and `/v1/health`.
//!
//! Every route but health and metrics needs `Authorization: Bearer <key>`. Every
//! error is JSON — `{"error":{"code","message"}}` with a matching status — including
//! the extractor rejections axum would otherwise answer in plain text, so clients
//! never have to parse two error formats and bad input never gets a 500.

mod error;
mod routes;

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
}

/// The whole HTTP surface.
pub fn router(state: Arc<ApiState>) -> Router {
    let protected = Router::new()
        .route("/v1/streams", get(routes::streams))
        .route("/v1/sources", get(routes::sources))
        .route("/v1/streams/{*name}", get(routes::stream))
        .route("/v1/recordings", get(routes::list).post(routes::start))
        .route(
            "/v1/recordings/{id}",
            get(routes::get_one).delete(routes::delete),
        )
        .route("/v1/recordings/{id}/stop", post(routes::stop))
        .route("/v1/recordings/{id}/parts/{n}/file", get(routes::file))
        .route("/v1/orphans", get(routes::orphans))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/v1/health", get(routes::health))
        .route("/metrics", get(routes::metrics))
        .merge(protected)
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
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
