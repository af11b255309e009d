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
