//! The extension host against real components: the example extensions pass
//! their fixtures, and hostile ones are stopped or refused with the right
//! typed error while the host goes on serving.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use edgerec_ext::{
    fixture, samples, ExtError, ExtensionSpec, Host, HostOptions, LimitOverrides, Manifest, World,
};

mod common;
use common::{examples, guests, repo, wasm};

fn host() -> Host {
    Host::new(HostOptions::default()).unwrap()
}

#[test]
fn every_example_passes_its_fixtures() {
    let host = host();
    for name in [
        "date-tree-naming",
        "grid-layout",
        "speaker-layout",
        "tag-hook",
        "webhook-hook",
        "tidy-hook",
        "catalog-hook",
    ] {
        let dir = repo().join("extensions").join(name);
        let manifest =
            Manifest::parse(&std::fs::read_to_string(dir.join("extension.toml")).unwrap()).unwrap();
        let reports = fixture::run_dir(
            &host,
            &manifest,
            &wasm(examples(), name),
            &dir.join("fixtures"),
        )
        .unwrap();
        assert!(!reports.is_empty());
        for r in reports {
            assert!(
                r.failure.is_none(),
                "{}: {}",
                r.file.display(),
                r.failure.unwrap()
            );
        }
    }
}

fn hostile(mode: &str, limits: LimitOverrides) -> (Result<std::path::PathBuf, ExtError>, Duration) {
    let host = host();
    let mut spec = ExtensionSpec::new(format!("hostile-{mode}"), World::Naming);
    spec.config = vec![("mode".into(), mode.into())];
    spec.limits = limits;
    let ext = host.load(spec, &wasm(guests(), "hostile")).unwrap();
    let started = Instant::now();
    let r = ext.name(&samples::recording());
    let took = started.elapsed();
    // Whatever happened, the next call on a fresh Store works.
    let fine = ext
        .reconfigured(ExtensionSpec::new("fine", World::Naming))
        .unwrap()
        .name(&samples::recording())
        .unwrap();
    assert_eq!(fine.to_str(), Some("ok/cam7.mp4"));
    (r, took)
}

#[test]
fn an_infinite_loop_runs_out_of_fuel_or_time() {
    let (r, took) = hostile("loop", LimitOverrides::default());
    let e = r.unwrap_err();
    assert!(
        matches!(e, ExtError::OutOfFuel { .. } | ExtError::Timeout { .. }),
        "{e}"
    );
    assert!(took < Duration::from_millis(500), "{took:?}");
    // With fuel to spare, the wall-clock deadline stops it.
    let (r, took) = hostile(
        "loop",
        LimitOverrides {
            fuel: Some(u64::MAX),
            deadline_ms: Some(30),
            memory_bytes: None,
        },
    );
    assert_eq!(r.unwrap_err(), ExtError::Timeout { ms: 30 });
    assert!(
        took >= Duration::from_millis(30) && took < Duration::from_millis(500),
        "{took:?}"
    );
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let (r, _) = hostile("bomb", LimitOverrides::default());
    assert_eq!(r.unwrap_err(), ExtError::MemoryLimit { bytes: 16 << 20 });
}

#[test]
fn a_panic_is_reported_with_its_message() {
    let (r, _) = hostile("panic", LimitOverrides::default());
    match r.unwrap_err() {
        ExtError::GuestPanic { message } => {
            assert!(
                message.contains("hostile extension panics on live/cam7"),
                "{message}"
            )
        }
        e => panic!("expected a guest panic, got {e}"),
    }
}

#[test]
fn escaping_and_oversized_names_are_invalid_output() {
    for mode in ["traversal", "absolute"] {
        let (r, _) = hostile(mode, LimitOverrides::default());
        let e = r.unwrap_err();
        assert_eq!(e.kind(), "invalid-output", "{mode}: {e}");
    }
    // Building 10 MB costs more than a name's budget: stopped there.
    // (Which budget runs out first depends on the machine's speed.)
    let (r, _) = hostile("huge", LimitOverrides::default());
    let e = r.unwrap_err();
    assert!(matches!(e.kind(), "out-of-fuel" | "timeout"), "{e}");
    // Given the fuel, time and memory, the 10 MB answer is refused.
    let (r, _) = hostile(
        "huge",
        LimitOverrides {
            fuel: Some(500_000_000),
            deadline_ms: Some(1000),
            memory_bytes: Some(64 << 20),
        },
    );
    let e = r.unwrap_err();
    assert_eq!(e.kind(), "invalid-output", "{e}");
    assert!(e.to_string().contains("10485760 bytes"), "{e}");
}

#[test]
fn a_log_flood_is_bounded() {
    // Time and fuel enough for 20 000 lines; the log keeps 64 of each kind.
    let (r, _) = hostile(
        "log-flood",
        LimitOverrides {
            fuel: Some(1_000_000_000),
            deadline_ms: Some(1000),
            memory_bytes: None,
        },
    );
    assert_eq!(r.unwrap().to_str(), Some("flood.mp4"));
}

#[test]
fn filesystem_and_socket_imports_are_refused_at_load() {
    let host = host();
    for (name, what) in [
        ("hostile-fs", "wasi:filesystem/"),
        ("hostile-net", "wasi:sockets/"),
    ] {
        let e = host
            .load(
                ExtensionSpec::new(name, World::Naming),
                &wasm(guests(), name),
            )
            .err()
            .expect("refused");
        match e {
            ExtError::Refused { reason } => assert!(reason.contains(what), "{reason}"),
            e => panic!("{name}: expected a refusal, got {e}"),
        }
    }
    // Not a component at all, and a component of another world.
    assert_eq!(
        host.load(ExtensionSpec::new("junk", World::Naming), b"\0asm junk")
            .err()
            .unwrap()
            .kind(),
        "refused"
    );
    let e = host
        .load(
            ExtensionSpec::new("grid-as-naming", World::Naming),
            &wasm(examples(), "grid-layout"),
        )
        .err()
        .unwrap();
    assert!(e.to_string().contains("edgerec:ext/naming"), "{e}");
}

#[test]
fn repeated_failures_disable_the_extension() {
    let host = host();
    let mut spec = ExtensionSpec::new("panicky", World::Naming);
    spec.config = vec![("mode".into(), "panic".into())];
    spec.failure_limit = 3;
    let ext = host.load(spec, &wasm(guests(), "hostile")).unwrap();
    for _ in 0..3 {
        assert_eq!(
            ext.name(&samples::recording()).unwrap_err().kind(),
            "guest-panic"
        );
    }
    assert_eq!(
        ext.name(&samples::recording()).unwrap_err(),
        ExtError::Disabled { failures: 3 }
    );
    let status = ext.status();
    assert_eq!(status.state, "disabled");
    assert_eq!(status.stats.calls, 3);
    assert_eq!(status.stats.failures_by_kind["guest-panic"], 3);
    ext.enable();
    assert_eq!(
        ext.name(&samples::recording()).unwrap_err().kind(),
        "guest-panic"
    );
}

#[test]
fn compiled_artifacts_are_cached_and_a_bad_one_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let opts = HostOptions {
        cache_dir: Some(dir.path().to_path_buf()),
        ..HostOptions::default()
    };
    let bytes = wasm(examples(), "date-tree-naming");
    let spec = Manifest::parse(
        &std::fs::read_to_string(repo().join("extensions/date-tree-naming/extension.toml"))
            .unwrap(),
    )
    .unwrap()
    .spec(&BTreeMap::new())
    .unwrap();
    let name = |host: &Host| {
        host.load(spec.clone(), &bytes)
            .unwrap()
            .name(&samples::recording())
            .unwrap()
    };
    let first = name(&Host::new(opts.clone()).unwrap());
    let artifacts: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    assert_eq!(name(&Host::new(opts.clone()).unwrap()), first);
    // A corrupt artifact is compiled again and replaced.
    std::fs::write(&artifacts[0], b"garbage").unwrap();
    assert_eq!(name(&Host::new(opts).unwrap()), first);
    assert!(std::fs::read(&artifacts[0]).unwrap().len() > 1000);
}

#[test]
fn a_self_test_catches_a_broken_extension_before_it_is_swapped_in() {
    let host = host();
    let ok = host
        .load(
            ExtensionSpec::new("fine", World::Naming),
            &wasm(guests(), "hostile"),
        )
        .unwrap();
    ok.self_test().unwrap();
    assert_eq!(ok.status().stats.calls, 0);
    let mut spec = ExtensionSpec::new("loops", World::Naming);
    spec.config = vec![("mode".into(), "loop".into())];
    let bad = host.load(spec, &wasm(guests(), "hostile")).unwrap();
    assert!(bad.self_test().is_err());
}

/// A one-route HTTP server on a free port: answers every request with
/// `status` and `body` (after `delay`), and keeps each request's head and body.
struct Catalog {
    port: u16,
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl Catalog {
    fn start(status: u16, body: &'static str, delay: Duration) -> Catalog {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let (mut head, mut len) = (String::new(), 0usize);
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
                let mut req = vec![0; len];
                let _ = r.read_exact(&mut req);
                g.lock()
                    .unwrap()
                    .push((head, String::from_utf8_lossy(&req).into_owned()));
                std::thread::sleep(delay);
                let _ = (&conn).write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        Catalog { port, got }
    }

    fn requests(&self) -> Vec<(String, String)> {
        self.got.lock().unwrap().clone()
    }
}

fn catalog_spec(url: &str, allow: &str) -> ExtensionSpec {
    let mut spec = ExtensionSpec::new("catalog", World::HookHttp);
    spec.config = vec![("url".into(), url.into()), ("token".into(), "k1".into())];
    spec.http_allow = vec![allow.into()];
    spec
}

#[test]
fn a_hook_http_extension_reads_the_answer_of_an_allowed_url() {
    let host = host();
    let catalog = Catalog::start(201, r#"{"asset_id":"A-17","state":"new"}"#, Duration::ZERO);
    let base = format!("http://127.0.0.1:{}/assets", catalog.port);
    let ext = host
        .load(
            catalog_spec(&base, &base),
            &wasm(examples(), "catalog-hook"),
        )
        .unwrap();
    // The self-test denies every request: the hook answers with its own error,
    // which a self-test accepts, and nothing reaches the catalog.
    ext.self_test().unwrap();
    assert!(catalog.requests().is_empty());

    let file = samples::finalized_file();
    let actions = ext.on_finalized(&file).unwrap();
    match &actions[..] {
        [edgerec_ext::Action::Tag(tags)] => {
            assert_eq!(tags, &[("catalog-asset".to_string(), "A-17".to_string())])
        }
        other => panic!("{other:?}"),
    }
    let reqs = catalog.requests();
    assert_eq!(reqs.len(), 1);
    let (head, body) = &reqs[0];
    assert!(head.starts_with("POST /assets HTTP/1.1"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer k1"),
        "{head}"
    );
    assert!(
        body.contains(&file.recording.id) && body.contains(&file.path),
        "{body}"
    );
}

#[test]
fn a_hook_http_request_outside_the_allowlist_never_leaves_the_host() {
    let host = host();
    let catalog = Catalog::start(201, r#"{"asset_id":"A-1"}"#, Duration::ZERO);
    let allow = format!("http://127.0.0.1:{}/assets", catalog.port);
    for url in [
        format!("http://127.0.0.1:{}/admin", catalog.port),
        format!("http://127.0.0.1:{}/assetsX", catalog.port),
        "http://169.254.169.254/latest/meta-data".to_string(),
    ] {
        let ext = host
            .load(
                catalog_spec(&url, &allow),
                &wasm(examples(), "catalog-hook"),
            )
            .unwrap();
        match ext.on_finalized(&samples::finalized_file()) {
            Err(ExtError::Extension { message, .. }) => {
                assert!(message.contains("HttpRequestDenied"), "{url}: {message}")
            }
            other => panic!("{url}: expected the guest's error, got {other:?}"),
        }
    }
    assert!(catalog.requests().is_empty(), "{:?}", catalog.requests());
}

#[test]
fn a_slow_server_cannot_hold_a_hook_past_its_deadline() {
    let host = host();
    let catalog = Catalog::start(201, r#"{"asset_id":"A-1"}"#, Duration::from_secs(10));
    let base = format!("http://127.0.0.1:{}/assets", catalog.port);
    let mut spec = catalog_spec(&base, &base);
    spec.limits.deadline_ms = Some(300);
    let ext = host.load(spec, &wasm(examples(), "catalog-hook")).unwrap();
    let started = Instant::now();
    let r = ext.on_finalized(&samples::finalized_file());
    let took = started.elapsed();
    assert!(
        matches!(
            r,
            Err(ExtError::Timeout { .. }) | Err(ExtError::Extension { .. })
        ),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(2), "held for {took:?}");
    assert_eq!(catalog.requests().len(), 1);
}

#[test]
fn http_is_granted_only_to_hook_http_with_an_allowlist() {
    let host = host();
    let wasm = wasm(examples(), "catalog-hook");
    let refused = |spec: ExtensionSpec| match host.load(spec, &wasm) {
        Err(ExtError::Refused { reason }) => reason,
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("loaded"),
    };
    // As a plain hook: it imports wasi:http, which only hook-http may.
    let why = refused(ExtensionSpec::new("c", World::Hook));
    assert!(
        why.contains("wasi:http/") && why.contains("hook-http"),
        "{why}"
    );
    // As hook-http without an allowlist.
    let why = refused(ExtensionSpec::new("c", World::HookHttp));
    assert!(why.contains("needs http_allow"), "{why}");
    // An allowlist entry that is not a URL prefix with a host.
    let mut spec = ExtensionSpec::new("c", World::HookHttp);
    spec.http_allow = vec!["http://".into()];
    assert!(refused(spec).contains("not an http(s) URL prefix"));
    // An allowlist on another world.
    let mut spec = ExtensionSpec::new("n", World::Naming);
    spec.http_allow = vec!["http://127.0.0.1/".into()];
    let why = match host.load(spec, &common::wasm(examples(), "date-tree-naming")) {
        Err(ExtError::Refused { reason }) => reason,
        other => panic!("{:?}", other.err()),
    };
    assert!(
        why.contains("only for hook-http") || why.contains("for hook-http"),
        "{why}"
    );
}
