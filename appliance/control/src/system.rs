//! The appliance's own system: its slots (`GET /v1/system`), updates
//! (`PUT /v1/system/update` with a RAUC bundle, `GET /v1/system/update` for the
//! install's progress) and `POST /v1/system/reboot`.
//!
//! Updates are RAUC's: the bundle is streamed to `DATA_DIR/system/` (never held
//! in memory), then `rauc install` writes the inactive slot and makes it the
//! next boot; RAUC checks the signature against the image's keyring, so the
//! API cannot install anything the image would not. One install at a time.
//! Off the appliance (no RAUC system config) these routes answer 404
//! `not_appliance`; RAUC failing on the appliance is a 503.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

use crate::{ApiError, ApiState};

/// The largest bundle accepted (a root slot is 512 MiB).
pub const BUNDLE_LIMIT: usize = 1 << 30;

/// Where an update stands; shown by `GET /v1/system/update`.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateStatus {
    /// idle | receiving | installing | installed | failed
    pub state: &'static str,
    pub bytes: u64,
    /// Unix ms.
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
    /// What RAUC printed last (its own words, for the operator).
    pub output: Vec<String>,
    pub error: Option<String>,
}

impl Default for UpdateStatus {
    fn default() -> UpdateStatus {
        UpdateStatus {
            state: "idle",
            bytes: 0,
            started_at: None,
            finished_at: None,
            output: Vec::new(),
            error: None,
        }
    }
}

/// The one update slot of this daemon.
#[derive(Default)]
pub struct Updates(Mutex<UpdateStatus>);

impl Updates {
    fn get(&self) -> UpdateStatus {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, f: impl FnOnce(&mut UpdateStatus)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Takes the slot, unless an update is already on its way.
    fn begin(&self) -> bool {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(s.state, "receiving" | "installing") {
            return false;
        }
        *s = UpdateStatus {
            state: "receiving",
            started_at: Some(now_ms()),
            ..Default::default()
        };
        true
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn unavailable(why: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "system_unavailable", why)
}

/// RAUC's system config: present on the appliance image only. Without it the
/// routes stay off even where a `rauc` program happens to be installed, so no
/// API call can reboot a developer's machine.
const RAUC_SYSTEM_CONF: &str = "/etc/rauc/system.conf";

/// `rauc` on PATH on a system RAUC manages, or why updates are off.
fn rauc() -> Result<PathBuf, ApiError> {
    if !Path::new(RAUC_SYSTEM_CONF).is_file() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_appliance",
            format!("no {RAUC_SYSTEM_CONF}: this is not the appliance image"),
        ));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("rauc"))
        .find(|p| p.is_file())
        .ok_or_else(|| unavailable("updates need RAUC: this is not the appliance image"))
}

/// Runs a command to its end off the async runtime: (success, stdout+stderr).
async fn run(mut cmd: Command) -> Result<(bool, String), ApiError> {
    let shown = format!("{cmd:?}");
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| unavailable(format!("{shown}: {e}")))?
        .map(|o| {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            (o.status.success(), text)
        })
        .map_err(|e| unavailable(format!("{shown}: {e}")))
}

/// `GET /v1/system`: the release, and RAUC's view of the slots.
pub async fn system(State(_s): State<Arc<ApiState>>) -> Result<Json<serde_json::Value>, ApiError> {
    let release = std::fs::read_to_string("/etc/edgerec-release")
        .map(|r| r.trim().to_owned())
        .ok();
    let mut cmd = Command::new(rauc()?);
    cmd.args(["status", "--detailed", "--output-format=json"]);
    let (ok, out) = run(cmd).await?;
    if !ok {
        return Err(unavailable(format!("rauc status: {}", out.trim())));
    }
    // RAUC prints log lines before its JSON.
    let slots = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .unwrap_or(serde_json::Value::Null);
    Ok(Json(json!({ "release": release, "rauc": slots })))
}

/// `GET /v1/system/update`.
pub async fn update_status(State(s): State<Arc<ApiState>>) -> Json<UpdateStatus> {
    Json(s.updates.get())
}

/// `PUT /v1/system/update`: the body is a RAUC bundle. Answers 202 once it is
/// on disk; the install runs on, its progress in `GET /v1/system/update`.
pub async fn update(State(s): State<Arc<ApiState>>, req: Request) -> Result<Response, ApiError> {
    let rauc = rauc()?;
    if !s.updates.begin() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "update_in_progress",
            "an update is already being received or installed",
        ));
    }
    let dir = s.engine.config().data_dir.join("system");
    let received = receive(&dir, req).await;
    let path = match received {
        Ok((path, bytes)) => {
            s.updates.set(|u| {
                u.bytes = bytes;
                u.state = "installing";
            });
            path
        }
        Err(e) => {
            s.updates.set(|u| {
                u.state = "failed";
                u.error = Some(e.clone());
                u.finished_at = Some(now_ms());
            });
            return Err(ApiError::bad_request(e));
        }
    };
    info!(bundle = %path.display(), "installing an update");
    let state = s.clone();
    tokio::spawn(async move {
        let mut cmd = Command::new(rauc);
        cmd.arg("install").arg(&path);
        let result = run(cmd).await;
        let _ = std::fs::remove_file(&path);
        state.updates.set(|u| {
            u.finished_at = Some(now_ms());
            match result {
                Ok((ok, out)) => {
                    let lines: Vec<&str> = out.lines().collect();
                    let from = lines.len().saturating_sub(20);
                    u.output = lines[from..].iter().map(|l| l.to_string()).collect();
                    if ok {
                        u.state = "installed";
                    } else {
                        u.state = "failed";
                        u.error = Some("rauc install failed (see output)".into());
                    }
                }
                Err(e) => {
                    u.state = "failed";
                    u.error = Some(e.message);
                }
            }
            if u.state == "installed" {
                info!("update installed: reboot to boot it");
            } else {
                warn!(error = ?u.error, "update failed");
            }
        });
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "state": "installing", "status": "/v1/system/update" })),
    )
        .into_response())
}

/// Streams the request body to `dir/update.raucb`: (path, bytes).
async fn receive(dir: &Path, req: Request) -> Result<(PathBuf, u64), String> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let (part, done) = (dir.join("update.raucb.part"), dir.join("update.raucb"));
    let mut f = tokio::fs::File::create(&part)
        .await
        .map_err(|e| format!("{}: {e}", part.display()))?;
    let mut body = req.into_body().into_data_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("receiving the bundle at byte {bytes}: {e}"))?;
        bytes += chunk.len() as u64;
        f.write_all(&chunk)
            .await
            .map_err(|e| format!("writing {}: {e}", part.display()))?;
    }
    if bytes == 0 {
        return Err("the body is empty: PUT the bundle (.raucb) as the body".into());
    }
    f.sync_all().await.map_err(|e| e.to_string())?;
    tokio::fs::rename(&part, &done)
        .await
        .map_err(|e| e.to_string())?;
    Ok((done, bytes))
}

/// `POST /v1/system/reboot`: restarts the box (after the response is sent),
/// e.g. into a freshly installed slot. Recordings in progress are finalized by
/// init's orderly shutdown.
pub async fn reboot(State(_s): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    rauc()?;
    info!("reboot requested over the API");
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if let Err(e) = Command::new("reboot").spawn() {
            warn!(error = %e, "reboot failed");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "rebooting": true }))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_update_at_a_time() {
        let u = Updates::default();
        assert_eq!(u.get().state, "idle");
        assert!(u.begin());
        assert!(!u.begin(), "a second update while receiving");
        u.set(|s| s.state = "installing");
        assert!(!u.begin(), "a second update while installing");
        u.set(|s| s.state = "failed");
        assert!(u.begin(), "a new update after a failed one");
        assert_eq!(u.get().state, "receiving");
        assert!(u.get().started_at.is_some());
    }
}
