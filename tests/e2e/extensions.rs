//! Wasm extensions in the real daemon: every example passes its fixtures
//! through `edgerec ext test`; a naming extension places the file; hostile ones
//! fall back to the built-in name while the daemon stays healthy.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use edgerec_e2e::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds a wasm32-wasip2 workspace once; its release output folder.
fn build(workspace: &Path) -> PathBuf {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(workspace.join("Cargo.toml"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success(), "building {}", workspace.display());
    workspace.join("target/wasm32-wasip2/release")
}

fn examples() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build(&repo().join("extensions")))
}

fn guests() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build(&repo().join("appliance/ext/tests/guests")))
}

const EXAMPLES: [&str; 7] = [
    "date-tree-naming",
    "grid-layout",
    "speaker-layout",
    "tag-hook",
    "webhook-hook",
    "tidy-hook",
    "catalog-hook",
];

#[test]
fn every_example_passes_its_fixtures_through_edgerec_ext_test() {
    examples();
    for name in EXAMPLES {
        let out = Command::new(binary())
            .args(["ext", "test"])
            .arg(repo().join("extensions").join(name))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{name}: {stdout}");
        assert!(stdout.contains(" 0 failed"), "{stdout}");
        assert!(!stdout.contains("FAIL"), "{stdout}");
        // Each call is reported against its limits.
        assert!(
            stdout.contains("fuel ") && stdout.contains(" MiB of "),
            "{stdout}"
        );
        // The JSON form, for CI: the same verdict, with every call's cost.
        let out = Command::new(binary())
            .args(["ext", "test", "--json"])
            .arg(repo().join("extensions").join(name))
            .output()
            .unwrap();
        assert!(out.status.success(), "{name} --json");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["failed"], 0, "{v}");
        for f in v["fixtures"].as_array().unwrap() {
            let cost = &f["cost"];
            assert!(cost["fuel"].as_u64().unwrap() > 0, "{f}");
            assert!(cost["fuel"].as_u64() < f["limits"]["fuel"].as_u64(), "{f}");
            assert!(
                cost["memory_bytes"].as_u64() <= f["limits"]["memory_bytes"].as_u64(),
                "{f}"
            );
        }
    }
}

#[test]
fn edgerec_ext_check_and_bench() {
    let dir = repo().join("extensions/date-tree-naming");
    examples();
    let out = Command::new(binary())
        .args(["ext", "check"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("edgerec:ext/config@0.1.0"), "{stdout}");
    assert!(stdout.contains("self-test ok"), "{stdout}");
    // A bare component that imports the filesystem is refused, naming it.
    let out = Command::new(binary())
        .args(["ext", "check", "--world", "naming", "--json"])
        .arg(guests().join("hostile_fs.wasm"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["refused"].as_str().unwrap().contains("wasi:filesystem"),
        "{v}"
    );
    // A looping one fails its self-test.
    let looping = scratch().join("loop-manifest.toml");
    std::fs::write(
        &looping,
        "id = \"loop\"\nworld = \"naming\"\n[config]\nmode = \"loop\"\n",
    )
    .unwrap();
    let out = Command::new(binary())
        .args(["ext", "check", "--manifest"])
        .arg(&looping)
        .arg(guests().join("hostile.wasm"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("SELF-TEST FAILED"), "{stdout}");
    // bench: per-call latency with a fresh Store per call (figures, not asserted).
    let out = Command::new(binary())
        .args(["ext", "bench", "--calls", "300", "--json"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("{v}");
    assert_eq!(v["calls"], 300);
    assert_eq!(v["fresh_store_per_call"], true);
    assert!(v["p99_us"].as_f64().unwrap() >= v["p50_us"].as_f64().unwrap());
    assert!(v["fuel_per_call"].as_u64().unwrap() > 0);
}

fn part_path(rec: &serde_json::Value) -> String {
    rec["parts"][0]["path"].as_str().unwrap().to_string()
}

#[test]
fn a_naming_extension_files_the_recording_where_it_says() {
    let _g = serial();
    let wasm = examples().join("date_tree_naming.wasm");
    let manifest = repo().join("extensions/date-tree-naming/extension.toml");
    let config = format!(
        r#"
[[extensions.load]]
id = "date-tree"
file = "{}"
manifest = "{}"
config = {{ site = "plant-3" }}

[[extensions.naming]]
streams = "live/*"
extension = "date-tree"
"#,
        wasm.display(),
        manifest.display()
    );
    let d = Daemon::start_with_config(&config, &[]);
    let src = source(3, 30);
    let (ok, err) = finish(publish(&src, &d.rtmp_url("live/cam7")));
    assert!(ok, "ffmpeg: {err}");
    let rec = finalized(&d, "live/cam7", Duration::from_secs(5));
    let path = part_path(&rec);
    let id = rec["id"].as_str().unwrap();
    // <site>/<camera from the manifest's config>/YYYY/MM/DD/HHMMSS-<id>-p1.mp4
    assert!(path.starts_with("plant-3/lobby-north/20"), "{path}");
    assert!(path.ends_with(&format!("-{id}-p1.mp4")), "{path}");
    assert_eq!(path.split('/').count(), 6, "{path}");
    assert!(d.recordings_dir().join(&path).is_file());
    assert_every_frame(&d, &rec, &src, &["h264", "aac"], 0.1);
    let exts = d.get("/v1/extensions");
    let e = &exts["extensions"][0];
    assert_eq!(e["id"], "date-tree", "{exts}");
    assert_eq!(e["state"], "enabled");
    assert_eq!(e["calls"], 1, "{exts}");
    assert_eq!(e["failures"], 0, "{exts}");
}

#[test]
fn hostile_naming_extensions_fall_back_to_the_template() {
    let _g = serial();
    let hostile = guests().join("hostile.wasm");
    let mut config = String::new();
    for mode in ["loop", "bomb", "panic", "traversal", "absolute", "huge"] {
        config += &format!(
            "[[extensions.load]]\nid = \"{mode}\"\nfile = \"{}\"\nworld = \"naming\"\nconfig = {{ mode = \"{mode}\" }}\n\n[[extensions.naming]]\nstreams = \"evil/{mode}\"\nextension = \"{mode}\"\n\n",
            hostile.display()
        );
    }
    for (id, crate_name) in [("fs", "hostile_fs"), ("net", "hostile_net")] {
        config += &format!(
            "[[extensions.load]]\nid = \"{id}\"\nfile = \"{}\"\nworld = \"naming\"\n\n[[extensions.naming]]\nstreams = \"evil/{id}\"\nextension = \"{id}\"\n\n",
            guests().join(format!("{crate_name}.wasm")).display()
        );
    }
    let d = Daemon::start_with_config(&config, &[]);
    let src = source(2, 30);
    let expected = [
        ("loop", "out-of-fuel|timeout"),
        ("bomb", "memory-limit"),
        ("panic", "guest-panic"),
        ("traversal", "invalid-output"),
        ("absolute", "invalid-output"),
        ("huge", "out-of-fuel|timeout"),
        ("fs", ""),
        ("net", ""),
    ];
    for (mode, _) in expected {
        let stream = format!("evil/{mode}");
        let (ok, err) = finish(publish(&src, &d.rtmp_url(&stream)));
        assert!(ok, "ffmpeg: {err}");
        let rec = finalized(&d, &stream, Duration::from_secs(5));
        let path = part_path(&rec);
        // The built-in template: evil/<mode>/<date>/<mode>_<time>.mp4
        assert!(path.starts_with(&format!("evil/{mode}/")), "{mode}: {path}");
        assert!(!path.contains("passwd"), "{path}");
        assert!(d.recordings_dir().join(&path).is_file());
        assert_every_frame(&d, &rec, &src, &["h264", "aac"], 0.1);
        assert_eq!(d.get("/v1/health")["status"], "ok");
    }
    let exts = d.get("/v1/extensions");
    let list = exts["extensions"].as_array().unwrap();
    let by_id = |id: &str| list.iter().find(|e| e["id"] == id).unwrap().clone();
    for (mode, kinds) in expected {
        let e = by_id(mode);
        if kinds.is_empty() {
            assert_eq!(e["state"], "not-loaded", "{e}");
            assert_eq!(e["error"]["error"], "refused", "{e}");
            let reason = e["error"]["reason"].as_str().unwrap();
            assert!(
                reason.contains("wasi:filesystem") || reason.contains("wasi:sockets"),
                "{e}"
            );
            continue;
        }
        assert_eq!(e["calls"], 1, "{e}");
        assert_eq!(e["failures"], 1, "{e}");
        let kind = e["failures_by_kind"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        assert!(
            kinds.split('|').any(|k| k == kind),
            "{mode}: {kind} not in {kinds}"
        );
    }
    assert!(d
        .log()
        .contains("naming extension failed; using the template"));
}

/// A webhook receiver on a free local port: answers each POST with the next
/// status of `statuses` (the last one repeats) and keeps what it got.
struct Receiver {
    port: u16,
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    fn start(statuses: &[u16]) -> Receiver {
        Receiver::on(free_port(), statuses)
    }

    fn on(port: u16, statuses: &[u16]) -> Receiver {
        Receiver::answering(port, statuses, "")
    }

    /// Like [`Receiver::on`], each answer carrying `body` (JSON).
    fn answering(port: u16, statuses: &[u16], answer: &'static str) -> Receiver {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (g, statuses) = (got.clone(), statuses.to_vec());
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let Ok(conn) = conn else { continue };
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut head = String::new();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                g.lock()
                    .unwrap()
                    .push((head, String::from_utf8_lossy(&body).into_owned()));
                let status = statuses[n.min(statuses.len() - 1)];
                let _ = (&conn).write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    )
                    .as_bytes(),
                );
            }
        });
        Receiver { port, got }
    }

    fn posts(&self) -> Vec<(String, String)> {
        self.got.lock().unwrap().clone()
    }
}

fn hook_config(webhook_port: u16, backoff: &str, attempts: u32) -> String {
    let dir = examples();
    let manifest = |name: &str| repo().join("extensions").join(name).join("extension.toml");
    format!(
        r#"
[extensions]
hook_backoff = "{backoff}"
hook_attempts = {attempts}

[[extensions.load]]
id = "tag"
file = "{tag}"
manifest = "{tag_m}"

[[extensions.load]]
id = "tidy"
file = "{tidy}"
manifest = "{tidy_m}"

[[extensions.load]]
id = "announce"
file = "{hook}"
manifest = "{hook_m}"
config = {{ url = "http://127.0.0.1:{webhook_port}/recordings", token = "s3cret" }}
webhook_allow = ["http://127.0.0.1:{webhook_port}/"]

[[extensions.hooks]]
streams = "live/*"
extension = "tag"

[[extensions.hooks]]
streams = "live/*"
extension = "tidy"

[[extensions.hooks]]
streams = "live/*"
extension = "announce"
"#,
        tag = dir.join("tag_hook.wasm").display(),
        tag_m = manifest("tag-hook").display(),
        tidy = dir.join("tidy_hook.wasm").display(),
        tidy_m = manifest("tidy-hook").display(),
        hook = dir.join("webhook_hook.wasm").display(),
        hook_m = manifest("webhook-hook").display(),
    )
}

/// Every file under `dir` (none if it does not exist).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .flat_map(|p| if p.is_dir() { walk(&p) } else { vec![p] })
        .collect()
}

/// The recording once every hook run on it has ended (done, failed, skipped).
fn hooks_ended(d: &Daemon, id: &str, runs: usize) -> serde_json::Value {
    d.wait_for(Duration::from_secs(30), |d| {
        let rec = d.get(&format!("/v1/recordings/{id}"));
        let hooks = rec["hooks"].as_array()?;
        (hooks.len() == runs && hooks.iter().all(|h| h["state"] != "pending")).then_some(rec)
    })
    .unwrap_or_else(|| {
        panic!(
            "hooks of {id} did not end: {}\n{}",
            d.get(&format!("/v1/recordings/{id}")),
            d.log()
        )
    })
}

#[test]
fn a_hook_http_extension_tags_a_recording_with_the_catalogs_answer() {
    let _g = serial();
    // The catalog is down at first (503), then registers the part.
    let port = free_port();
    let catalog = Receiver::answering(port, &[503, 201], r#"{"asset_id":"MAM-4711"}"#);
    let config = format!(
        r#"
[extensions]
hook_backoff = "300ms"
hook_attempts = 5

[[extensions.load]]
id = "catalog"
file = "{file}"
manifest = "{manifest}"
config = {{ url = "http://127.0.0.1:{port}/assets", token = "mam-key" }}
http_allow = ["http://127.0.0.1:{port}/assets"]

[[extensions.hooks]]
streams = "live/*"
extension = "catalog"
"#,
        file = examples().join("catalog_hook.wasm").display(),
        manifest = repo()
            .join("extensions/catalog-hook/extension.toml")
            .display(),
    );
    let d = Daemon::start_with_config(&config, &[]);
    let ext = d.get("/v1/extensions/catalog");
    assert_eq!(ext["world"], "hook-http", "{ext}");
    // What it may reach: the manifest's prefix and the operator's.
    let allowed = ext["http_allow"].as_array().unwrap();
    assert!(
        allowed.contains(&serde_json::json!(format!(
            "http://127.0.0.1:{port}/assets"
        ))),
        "{ext}"
    );
    let src = source(3, 30);
    let (ok, err) = finish(publish(&src, &d.rtmp_url("live/cam4")));
    assert!(ok, "ffmpeg: {err}");
    let rec = finalized(&d, "live/cam4", Duration::from_secs(5));
    let id = rec["id"].as_str().unwrap();
    let rec = hooks_ended(&d, id, 1);
    println!("{rec:#}");
    let run = &rec["hooks"][0];
    assert_eq!(run["state"], "done", "{rec}");
    assert_eq!(run["attempts"], 2, "503 then 201: {rec}");
    // The answer the extension read, as a tag in the recordings API.
    assert_eq!(rec["tags"]["catalog-asset"], "MAM-4711", "{rec}");
    let posts = catalog.posts();
    assert_eq!(posts.len(), 2, "{posts:?}");
    let (head, body) = &posts[1];
    assert!(head.starts_with("POST /assets "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer mam-key"),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["recording"], id);
    assert_eq!(body["path"], part_path(&rec).as_str(), "{body}");
    assert_every_frame(&d, &rec, &src, &["h264", "aac"], 0.1);
    assert_eq!(d.get("/v1/health")["status"], "ok");
}

#[test]
fn hooks_tag_file_and_announce_a_finalized_recording() {
    let _g = serial();
    // The receiver fails the first POST: the webhook hook is retried.
    let receiver = Receiver::start(&[503, 204]);
    let d = Daemon::start_with_config(&hook_config(receiver.port, "300ms", 5), &[]);
    let src = source(3, 30);
    let (ok, err) = finish(publish(&src, &d.rtmp_url("live/cam1")));
    assert!(ok, "ffmpeg: {err}");
    let rec = finalized(&d, "live/cam1", Duration::from_secs(5));
    let id = rec["id"].as_str().unwrap();
    let rec = hooks_ended(&d, id, 3);
    println!("{rec:#}");
    let runs = rec["hooks"].as_array().unwrap();
    for (run, ext) in runs.iter().zip(["tag", "tidy", "announce"]) {
        assert_eq!(run["extension"], ext, "{rec}");
        assert_eq!(run["state"], "done", "{rec}");
        assert_eq!(run["part"], 1);
    }
    assert_eq!(runs[0]["attempts"], 1);
    assert_eq!(runs[2]["attempts"], 2, "503 then 204: {rec}");
    // The tagging hook's tags, in the recordings API.
    let tags = &rec["tags"];
    assert_eq!(tags["length"], "short", "{rec}");
    assert_eq!(tags["video-codec"], "h264");
    assert_eq!(tags["audio-codec"], "aac");
    assert_eq!(tags["site"], "hq");
    // The tidy hook moved the part into the archive tree, under its own name.
    // (The template would have named it live/cam1/<date>/cam1_<time>.mp4.)
    let path = part_path(&rec);
    let name = path.rsplit('/').next().unwrap();
    assert!(path.starts_with("archive/live/cam1/20"), "{path}");
    assert!(
        name.starts_with("cam1_") && name.ends_with(".mp4"),
        "{path}"
    );
    assert!(d.recordings_dir().join(&path).is_file());
    let left: Vec<_> = walk(&d.recordings_dir().join("live"));
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_every_frame(&d, &rec, &src, &["h264", "aac"], 0.1);
    // The download route follows the move.
    let resp = ureq::get(&d.url(&format!("/v1/recordings/{id}/parts/1/file")))
        .set("Authorization", &format!("Bearer {API_KEY}"))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The webhook: two POSTs with the token, announcing the moved path.
    let posts = receiver.posts();
    assert_eq!(posts.len(), 2, "{posts:?}");
    let (head, body) = &posts[1];
    assert!(head.starts_with("POST /recordings "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer s3cret"),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["event"], "recording.finalized");
    assert_eq!(body["recording"], id);
    assert_eq!(body["path"], path.as_str(), "{body}");
    assert_eq!(body["codecs"], serde_json::json!(["h264", "aac"]));
    // Listing shows the same merged view.
    let listed = d.recordings("?stream=live/cam1");
    assert_eq!(listed[0]["parts"][0]["path"], path.as_str());
    assert_eq!(listed[0]["tags"]["length"], "short");
}

#[test]
fn a_hook_deletes_a_part_too_short_to_keep() {
    let _g = serial();
    let receiver = Receiver::start(&[204]);
    let d = Daemon::start_with_config(&hook_config(receiver.port, "300ms", 5), &[]);
    let src = source(1, 30);
    let (ok, err) = finish(publish(&src, &d.rtmp_url("live/blip")));
    assert!(ok, "ffmpeg: {err}");
    let rec = finalized(&d, "live/blip", Duration::from_secs(5));
    let id = rec["id"].as_str().unwrap();
    let first_path = part_path(&rec);
    let rec = hooks_ended(&d, id, 3);
    println!("{rec:#}");
    assert_eq!(rec["parts"][0]["state"], "deleted", "{rec}");
    assert!(!d.recordings_dir().join(&first_path).exists());
    let runs = rec["hooks"].as_array().unwrap();
    assert_eq!(runs[0]["state"], "done");
    assert_eq!(runs[1]["state"], "done");
    assert!(
        runs[1]["actions"][0]
            .as_str()
            .unwrap()
            .starts_with("delete "),
        "{rec}"
    );
    // What came after the delete had nothing to act on.
    assert_eq!(runs[2]["state"], "skipped", "{rec}");
    assert!(receiver.posts().is_empty());
    let (status, body) = d.api("GET", &format!("/v1/recordings/{id}/parts/1/file"), None);
    assert_eq!(status, 404, "{body}");
}

#[test]
fn a_pending_hook_survives_a_power_cut_and_runs_after_the_restart() {
    let _g = serial();
    // Nobody listens yet: the webhook fails and waits for its retry.
    let port = free_port();
    let mut d = Daemon::start_with_config(&hook_config(port, "1s", 20), &[]);
    let src = source(3, 30);
    let (ok, err) = finish(publish(&src, &d.rtmp_url("live/door")));
    assert!(ok, "ffmpeg: {err}");
    let rec = finalized(&d, "live/door", Duration::from_secs(5));
    let id = rec["id"].as_str().unwrap().to_owned();
    d.wait_for(Duration::from_secs(20), |d| {
        let rec = d.get(&format!("/v1/recordings/{id}"));
        let run = rec["hooks"].as_array()?.get(2)?.clone();
        (run["state"] == "pending" && run["attempts"].as_u64() >= Some(1)).then_some(())
    })
    .unwrap_or_else(|| panic!("the webhook did not fail once: {}", d.log()));
    d.kill9();
    let receiver = Receiver::on(port, &[204]);
    d.restart();
    let rec = hooks_ended(&d, &id, 3);
    let run = &rec["hooks"][2];
    assert_eq!(run["state"], "done", "{rec}");
    assert!(run["attempts"].as_u64().unwrap() >= 2, "{rec}");
    assert_eq!(receiver.posts().len(), 1);
    assert!(d.log().contains("resuming hook runs left pending"));
    // The moves done before the cut stand; the file plays.
    assert!(part_path(&rec).starts_with("archive/live/door/"));
    assert_every_frame(&d, &rec, &src, &["h264", "aac"], 0.1);
    // The start-up scan knows the moved file is the recording's, not an orphan.
    let orphans = d
        .wait_for(Duration::from_secs(10), |d| {
            let o = d.get("/v1/orphans");
            (o["scan"] == "done").then_some(o)
        })
        .unwrap();
    assert_eq!(orphans["files"], serde_json::json!([]), "{orphans}");
}

/// `curl` as an operator would call the install route: (status, JSON body).
fn curl(args: &[&str]) -> (u16, serde_json::Value) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {API_KEY}"))
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// `PUT url` with a multipart form: the component, its manifest, then `extra`
/// form fields (`streams=live/*`).
fn upload(url: &str, wasm: &Path, manifest: &Path, extra: &[&str]) -> (u16, serde_json::Value) {
    let component = format!("component=@{}", wasm.display());
    let manifest = format!("manifest=@{}", manifest.display());
    let mut args = vec!["-X", "PUT", "-F", &component, "-F", &manifest];
    for f in extra {
        args.extend(["-F", f]);
    }
    args.push(url);
    curl(&args)
}

#[test]
fn an_uploaded_extension_is_checked_swapped_in_kept_and_removed() {
    let _g = serial();
    let mut d = Daemon::start(&[]);
    let url = d.url("/v1/extensions/names");
    let naming = examples().join("date_tree_naming.wasm");
    let manifest = repo().join("extensions/date-tree-naming/extension.toml");
    // Install: the component, its manifest, the streams it names.
    let (status, body) = upload(&url, &naming, &manifest, &["streams=live/*"]);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["installed"]["replaced"], false);
    let sha = body["installed"]["sha256"].as_str().unwrap().to_owned();
    let e = d.get("/v1/extensions/names");
    assert_eq!(e["state"], "enabled", "{e}");
    assert_eq!(e["source"], "upload");
    assert_eq!(e["streams"], serde_json::json!(["live/*"]));
    let src = source(2, 30);
    let (ok, err) = finish(publish(&src, &d.rtmp_url("live/cam7")));
    assert!(ok, "ffmpeg: {err}");
    let rec = finalized(&d, "live/cam7", Duration::from_secs(5));
    assert!(part_path(&rec).starts_with("hq/lobby-north/20"), "{rec}");

    // A replacement that loops is refused by its self-test; the old one stays.
    let hostile = guests().join("hostile.wasm");
    let looping = d.dir.path().join("loop.toml");
    std::fs::write(
        &looping,
        "id = \"names\"\nworld = \"naming\"\n[config]\nmode = \"loop\"\n",
    )
    .unwrap();
    let (status, body) = upload(&url, &hostile, &looping, &[]);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "extension_refused");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("out-of-fuel") || msg.starts_with("timeout"),
        "{msg}"
    );
    assert_eq!(d.get("/v1/extensions/names")["sha256"], sha.as_str());
    // So is one that imports the filesystem, and a file that is no component.
    let fs = guests().join("hostile_fs.wasm");
    let (status, body) = curl(&[
        "-X",
        "PUT",
        "-H",
        "content-type: application/wasm",
        "--data-binary",
        &format!("@{}", fs.display()),
        &format!("{url}?world=naming"),
    ]);
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wasi:filesystem"),
        "{body}"
    );
    let (status, body) = curl(&[
        "-X",
        "PUT",
        "-H",
        "content-type: application/wasm",
        "--data-binary",
        "not wasm",
        &url,
    ]);
    assert_eq!(status, 422, "{body}");
    // An id that is no plain file name is refused before anything is read.
    let (status, body) = curl(&[
        "-X",
        "PUT",
        "-H",
        "content-type: application/wasm",
        "--data-binary",
        "x",
        &d.url("/v1/extensions/..%2Fetc"),
    ]);
    assert_eq!(status, 400, "{body}");
    // Without the token, nothing.
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "DELETE",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");

    // A replacement that works is swapped in (bindings kept), with new config.
    let other = d.dir.path().join("other.toml");
    std::fs::write(&other, "id = \"names\"\n[config]\nsite = \"plant-9\"\n").unwrap();
    let (status, body) = upload(&url, &naming, &other, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["installed"]["replaced"], true);
    assert_eq!(body["extension"]["streams"], serde_json::json!(["live/*"]));

    // Kept across a restart.
    d.restart();
    let e = d.get("/v1/extensions/names");
    assert_eq!(e["source"], "upload", "{e}");
    let (ok, err) = finish(publish(&src, &d.rtmp_url("live/cam8")));
    assert!(ok, "ffmpeg: {err}");
    let rec = finalized(&d, "live/cam8", Duration::from_secs(5));
    assert!(part_path(&rec).starts_with("plant-9/cam8/20"), "{rec}");

    // Removed: the template names files again, and it is gone after a restart.
    let (status, body) = curl(&["-X", "DELETE", &url]);
    assert_eq!(status, 204, "{body}");
    let (status, _) = d.api("GET", "/v1/extensions/names", None);
    assert_eq!(status, 404);
    let (ok, err) = finish(publish(&src, &d.rtmp_url("live/cam9")));
    assert!(ok, "ffmpeg: {err}");
    let rec = finalized(&d, "live/cam9", Duration::from_secs(5));
    assert!(part_path(&rec).starts_with("live/cam9/"), "{rec}");
    d.restart();
    assert_eq!(d.get("/v1/extensions")["extensions"], serde_json::json!([]));
    let installed: Vec<_> = std::fs::read_dir(d.data_dir().join("extensions/installed"))
        .unwrap()
        .collect();
    assert!(installed.is_empty(), "{installed:?}");
}
