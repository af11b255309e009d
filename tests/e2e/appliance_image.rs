//! The flashable appliance, proven offline: `image/qemu/build` assembles the
//! disk in the Buildroot image's layout (UEFI + GRUB with A/B state, two
//! squashfs root slots, ext4 /data, the board's own overlay and configs), and
//! this test boots it under qemu (TCG) and drives it from the host like an
//! operator: record a feed with ffmpeg and check it with ffprobe, see that / is
//! read-only, install a signed RAUC update into the other slot and boot it,
//! cut the power mid-recording, and install a broken update that must fall
//! back to the slot that works. Each boot prints its boot-to-healthy time.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgerec_e2e::*;
use serde_json::Value;

/// How long a boot may take to a healthy daemon (host time, TCG, 2 cores).
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn board() -> PathBuf {
    workspace().join("image/buildroot/board/x86_64")
}

fn run(cmd: &mut Command) -> String {
    let out = run_bounded(cmd, Duration::from_secs(300)).unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A booted VM: qemu with the disk, its serial console on a socket, the
/// guest's HTTP and RTMP ports forwarded to loopback.
struct Vm {
    qemu: Child,
    console: Arc<Mutex<String>>,
    input: UnixStream,
    http: u16,
    rtmp: u16,
    key: String,
    marks: u32,
    /// Where the console is saved when the VM goes away.
    log: PathBuf,
}

impl Vm {
    /// Boots `dir/disk.img` and waits for health.
    fn boot(dir: &Path) -> Vm {
        let mut vm = Vm::start(dir);
        let t = Instant::now();
        loop {
            if let Ok(r) = ureq::get(&vm.url("/v1/health"))
                .timeout(Duration::from_secs(2))
                .call()
            {
                if r.status() == 200 {
                    break;
                }
            }
            if let Ok(Some(st)) = vm.qemu.try_wait() {
                panic!("qemu exited with {st} while booting:\n{}", vm.console());
            }
            assert!(
                t.elapsed() < BOOT_TIMEOUT,
                "not healthy after {BOOT_TIMEOUT:?}:\n{}",
                vm.console()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        // Straight to stderr, not eprintln!: the test harness captures the
        // macros, and this figure belongs in every CI log, passing or not.
        let _ = writeln!(
            std::io::stderr(),
            "appliance image: booted slot {} to healthy in {:.1} s (host time, qemu TCG)",
            vm.slot(),
            t.elapsed().as_secs_f64()
        );
        vm.key = vm.sh("cat /data/edgerec/api-key").trim().to_owned();
        assert!(
            !vm.key.is_empty() && vm.key.bytes().all(|b| b.is_ascii_hexdigit()),
            "API key {:?}:\n{}",
            vm.key,
            vm.console()
        );
        vm
    }

    /// Starts qemu without waiting for the guest.
    fn start(dir: &Path) -> Vm {
        let (http, rtmp) = (free_port(), free_port());
        let sock = dir.join("console.sock");
        let _ = std::fs::remove_file(&sock);
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "1024"])
            .args([
                "-nodefaults",
                "-nographic",
                "-no-reboot",
                "-monitor",
                "none",
            ])
            .arg("-drive")
            .arg("if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd")
            .arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,file={}",
                dir.join("OVMF_VARS.fd").display()
            ))
            .arg("-drive")
            .arg(format!(
                "file={},if=virtio,format=raw",
                dir.join("disk.img").display()
            ));
        cmd.args(["-netdev"])
            .arg(format!(
                "user,id=n0,hostfwd=tcp:127.0.0.1:{http}-:8080,hostfwd=tcp:127.0.0.1:{rtmp}-:1935"
            ))
            .args(["-device", "virtio-net-pci,netdev=n0"])
            // A hardware watchdog, as rack boards have (reset on expiry;
            // with -no-reboot qemu exits).
            .args(["-device", "i6300esb"])
            .arg("-chardev")
            .arg(format!(
                "socket,id=con,path={},server=on,wait=off",
                sock.display()
            ))
            .args(["-serial", "chardev:con"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut qemu = cmd
            .spawn()
            .expect("qemu-system-x86_64 (apt install qemu-system-x86)");
        let t = Instant::now();
        let input = loop {
            match UnixStream::connect(&sock) {
                Ok(s) => break s,
                Err(e) => {
                    if let Ok(Some(st)) = qemu.try_wait() {
                        panic!("qemu exited with {st}");
                    }
                    assert!(t.elapsed() < Duration::from_secs(30), "console: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        // Drained all the time: an unread console stalls the guest's output.
        let console = Arc::new(Mutex::new(String::new()));
        let mut reader = input.try_clone().unwrap();
        let sink = console.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut c = sink.lock().unwrap_or_else(|e| e.into_inner());
                c.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Vm {
            qemu,
            console,
            input,
            http,
            rtmp,
            key: String::new(),
            marks: 0,
            log: (1..)
                .map(|i| dir.join(format!("console-{i}.log")))
                .find(|p| !p.exists())
                .unwrap_or_else(|| dir.join("console.log")),
        }
    }

    fn console(&self) -> String {
        self.console
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    /// Runs `cmd` in the guest's console shell and returns what it printed.
    fn sh(&mut self, cmd: &str) -> String {
        self.marks += 1;
        let n = self.marks;
        // The markers are split in the command so the shell's echo of the
        // command line does not contain them. Every line the command prints
        // is tagged: the console is shared with the guest's boot check,
        // watchdog and daemon log, whose lines land between the markers
        // whenever they happen to be written (CI once read
        // "edgerec-boot: healthy 8s after power-on" as part of the API key).
        let line = format!(
            "echo __BE\"\"GIN{n}__; {{ {cmd}; }} 2>&1 | sed \"s/^/__O\"\"UT{n}__/\"; echo __E\"\"ND{n}__\n"
        );
        let (begin, end) = (format!("__BEGIN{n}__"), format!("__END{n}__"));
        let tag = format!("__OUT{n}__");
        let t = Instant::now();
        self.input.write_all(b"\n").unwrap();
        self.input.write_all(line.as_bytes()).unwrap();
        loop {
            let c = self.console();
            if let (Some(b), Some(e)) = (c.rfind(&begin), c.rfind(&end)) {
                if b < e {
                    return tagged_lines(&c[b + begin.len()..e], &tag);
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(180),
                "no answer to {cmd:?}:\n{c}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for a console line containing `what`.
    fn wait_console(&self, what: &str, timeout: Duration) {
        let t = Instant::now();
        while !self.console().contains(what) {
            assert!(
                t.elapsed() < timeout,
                "no {what:?} on the console:\n{}",
                self.console()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn slot(&mut self) -> String {
        let cmdline = self.sh("cat /proc/cmdline");
        cmdline
            .split_whitespace()
            .find_map(|a| a.strip_prefix("rauc.slot="))
            .unwrap_or("?")
            .to_owned()
    }

    fn api(&self, path: &str) -> Value {
        let r = ureq::get(&self.url(path))
            .set("Authorization", &format!("Bearer {}", self.key))
            .timeout(Duration::from_secs(30))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        serde_json::from_str(&r.into_string().unwrap()).unwrap()
    }

    fn recordings(&self) -> Vec<Value> {
        self.api("/v1/recordings")["recordings"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Downloads part 1 of recording `id` through the API.
    fn download(&self, id: &str, to: &Path) -> PathBuf {
        let r = ureq::get(&self.url(&format!("/v1/recordings/{id}/parts/1/file")))
            .set("Authorization", &format!("Bearer {}", self.key))
            .timeout(Duration::from_secs(120))
            .call()
            .unwrap_or_else(|e| panic!("download {id}: {e}"));
        let mut body = Vec::new();
        r.into_reader().read_to_end(&mut body).unwrap();
        std::fs::write(to, &body).unwrap();
        to.to_owned()
    }

    fn wait_exit(&mut self, timeout: Duration) {
        let t = Instant::now();
        while self.qemu.try_wait().unwrap().is_none() {
            assert!(
                t.elapsed() < timeout,
                "the guest did not reset:\n{}",
                self.console()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Pulls the plug: qemu killed, nothing flushed.
    fn power_cut(mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

/// The lines of `console` that carry `tag`, without it: what a command run
/// by [`Vm::sh`] printed, whatever else the guest wrote to its console at
/// the same time.
fn tagged_lines(console: &str, tag: &str) -> String {
    console
        .split('\n')
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix(tag))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

#[test]
fn console_output_of_a_command_is_told_from_the_guests_own_lines() {
    // As CI saw it: the boot check's line written between the markers.
    let console = "\r\nedgerec-boot: healthy 8s after power-on\r\n\
                   __OUT7__7c335729c3fd\r\n\
                   2026-12-06T22:21:03Z  INFO edgerec: listening\r\n\
                   __OUT7__second line\r\n__OUT70__not ours\r\n";
    assert_eq!(
        tagged_lines(console, "__OUT7__"),
        "7c335729c3fd\nsecond line"
    );
    assert_eq!(tagged_lines("\r\n# \r\n", "__OUT7__"), "");
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
        // Every boot's console, for whoever reads a failure.
        let _ = std::fs::write(&self.log, self.console());
    }
}

/// A root slot image made from the built one with `change` applied to its tree,
/// packed as a RAUC bundle signed with the image's development keys.
fn bundle(dir: &Path, name: &str, version: &str, change: impl FnOnce(&Path)) -> PathBuf {
    let tree = dir.join(format!("{name}.tree"));
    let _ = std::fs::remove_dir_all(&tree);
    run(Command::new("unsquashfs")
        .args(["-q", "-no-progress", "-d"])
        .arg(&tree)
        .arg(dir.join("rootfs.squashfs")));
    std::fs::write(
        tree.join("etc/edgerec-release"),
        format!("edgerec {version}\n"),
    )
    .unwrap();
    change(&tree);
    let squash = dir.join(format!("{name}.squashfs"));
    let _ = std::fs::remove_file(&squash);
    run(Command::new("mksquashfs").arg(&tree).arg(&squash).args([
        "-noappend",
        "-quiet",
        "-all-root",
        "-comp",
        "gzip",
    ]));
    std::fs::remove_dir_all(&tree).unwrap();
    let raucb = dir.join(format!("{name}.raucb"));
    run(Command::new(board().join("rauc/bundle"))
        .arg(&squash)
        .arg(version)
        .arg(dir.join("keys"))
        .arg(&raucb));
    raucb
}

/// Uploads the bundle with `PUT /v1/system/update` as an operator would and
/// waits for RAUC to finish installing it; returns the final status.
fn install(vm: &Vm, raucb: &Path) -> Value {
    let body = std::fs::read(raucb).unwrap();
    let r = ureq::put(&vm.url("/v1/system/update"))
        .set("Authorization", &format!("Bearer {}", vm.key))
        .set("Content-Type", "application/octet-stream")
        .timeout(Duration::from_secs(300))
        .send_bytes(&body);
    match r {
        Ok(r) => assert_eq!(r.status(), 202),
        Err(e) => panic!("PUT /v1/system/update: {e}"),
    }
    let t = Instant::now();
    loop {
        let st = vm.api("/v1/system/update");
        if st["state"] == "installed" || st["state"] == "failed" {
            return st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "{st}\n{}",
            vm.console()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `POST /v1/system/reboot`; qemu (-no-reboot) exits when the guest resets.
fn reboot(mut vm: Vm) {
    let r = ureq::post(&vm.url("/v1/system/reboot"))
        .set("Authorization", &format!("Bearer {}", vm.key))
        .timeout(Duration::from_secs(30))
        .call()
        .unwrap_or_else(|e| panic!("POST /v1/system/reboot: {e}"));
    assert_eq!(r.status(), 202);
    vm.wait_exit(Duration::from_secs(120));
}

fn assert_same_frames(got: &Path, src: &Path) {
    let (g, s) = (probe(got), probe(src));
    println!("recording {g:?}");
    for codec in ["h264", "aac"] {
        assert_eq!(
            g.stream(codec).packets,
            s.stream(codec).packets,
            "{codec} frames: got {g:?}, source {s:?}"
        );
    }
    assert!((g.duration - s.duration).abs() < 0.15, "{g:?} vs {s:?}");
}

#[test]
fn boots_records_updates_survives_power_cut_and_falls_back() {
    let _g = serial();
    let dir = scratch().join("appliance-image");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let t = Instant::now();
    print!(
        "{}",
        run(Command::new(workspace().join("image/qemu/build"))
            .arg(&dir)
            .arg(binary()))
    );
    println!("image built in {:.1} s", t.elapsed().as_secs_f64());
    // Flashed onto a disk 2 GiB larger than the image (sparse here).
    let disk = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("disk.img"))
        .unwrap();
    let image_size = disk.metadata().unwrap().len();
    disk.set_len(image_size + (2 << 30)).unwrap();
    drop(disk);

    // First boot: slot A, a fresh /data grown to the end of the disk.
    let mut vm = Vm::boot(&dir);
    assert_eq!(vm.slot(), "A");
    let df = vm.sh("df -m /data | awk 'NR == 2 {print $2}'");
    let data_mib: u64 = df.parse().unwrap_or_else(|e| panic!("df {df:?}: {e}"));
    println!("/data after the first boot: {data_mib} MiB");
    assert!(
        data_mib > 3500,
        "/data did not grow: {data_mib} MiB\n{}",
        vm.console()
    );
    let parts = vm.sh("sfdisk --verify /dev/vda 2>&1");
    assert!(parts.contains("No errors detected"), "{parts}");
    let ro = vm.sh("touch /etc/written-by-test 2>&1; grep ' / ' /proc/mounts");
    assert!(ro.contains("Read-only file system"), "{ro}");
    assert!(ro.contains("squashfs ro"), "{ro}");
    let data = vm.sh("grep ' /data ' /proc/mounts");
    assert!(data.contains("ext4 rw"), "{data}");
    // The UDP ingests' 4 MiB receive buffers are granted.
    let rmem_max = vm.sh("cat /proc/sys/net/core/rmem_max");
    assert_eq!(rmem_max.trim(), "4194304", "{}", vm.console());
    vm.wait_console("slot A marked good", Duration::from_secs(60));
    vm.wait_console("feeding /dev/watchdog", Duration::from_secs(30));

    // A 10 s feed from the host, fetched back through the API.
    let src = source(10, 25);
    let url = format!("rtmp://127.0.0.1:{}/live/cam", vm.rtmp);
    let (ok, err) = finish(publish(&src, &url));
    assert!(ok, "ffmpeg: {err}");
    let t = Instant::now();
    let rec = loop {
        let r = vm.recordings();
        if let Some(r) = r.iter().find(|r| r["state"] == "finalized") {
            break r.clone();
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{r:?}\n{}",
            vm.console()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let id = rec["id"].as_str().unwrap().to_owned();
    assert_same_frames(&vm.download(&id, &dir.join("first.mp4")), &src);

    // A signed update into slot B over the API, then a reboot into it.
    let good = bundle(&dir, "update", "2.0-update", |_| {});
    let st = install(&vm, &good);
    assert_eq!(st["state"], "installed", "{st}");
    let system = vm.api("/v1/system");
    println!("after the install: {system}");
    reboot(vm);

    let mut vm = Vm::boot(&dir);
    assert_eq!(vm.slot(), "B", "{}", vm.console());
    // Grown once: a normal boot leaves the partition table alone.
    assert!(!vm.console().contains("growing"), "{}", vm.console());
    assert!(vm.sh("cat /etc/edgerec-release").contains("2.0-update"));
    let again = vm.api(&format!("/v1/recordings/{id}"));
    assert_eq!(again["state"], "finalized", "{again}");
    assert_same_frames(&vm.download(&id, &dir.join("after-update.mp4")), &src);
    vm.wait_console("slot B marked good", Duration::from_secs(60));
    let system = vm.api("/v1/system");
    assert_eq!(system["release"], "edgerec 2.0-update", "{system}");
    assert_eq!(boot_status(&system, "rootfs.1"), "good", "{system}");

    // Power cut while a feed is being recorded.
    let long = source(30, 25);
    let url = format!("rtmp://127.0.0.1:{}/live/cut", vm.rtmp);
    let mut feed = publish(&long, &url);
    let t = Instant::now();
    while !vm
        .recordings()
        .iter()
        .any(|r| r["stream"] == "live/cut" && r["parts"].as_array().is_some_and(|p| !p.is_empty()))
    {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{:?}\n{}",
            vm.recordings(),
            vm.console()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(8));
    vm.power_cut();
    let _ = feed.kill();
    let _ = feed.wait();

    let vm = Vm::boot(&dir);
    let cut = vm
        .recordings()
        .into_iter()
        .find(|r| r["stream"] == "live/cut")
        .expect("the cut recording is listed");
    assert_eq!(cut["state"], "recovered", "{cut}");
    let cut_id = cut["id"].as_str().unwrap().to_owned();
    let f = vm.download(&cut_id, &dir.join("cut.mp4"));
    decode_all(&f).expect("the recovered recording plays");
    let p = probe(&f);
    println!("recovered after the power cut: {p:?}");
    assert!(p.duration > 3.0, "{p:?}");
    assert_eq!(vm.recordings().len(), 2);

    // A broken update (the daemon cannot start) into slot A: its boot check
    // gives up, the box reboots, and GRUB falls back to slot B.
    let bad = bundle(&dir, "broken", "3.0-broken", |tree| {
        std::fs::write(tree.join("usr/bin/edgerec"), "#!/bin/sh\nexit 1\n").unwrap();
        std::fs::create_dir_all(tree.join("etc/default")).unwrap();
        std::fs::write(tree.join("etc/default/edgerec"), "BOOT_CHECK_SECONDS=20\n").unwrap();
    });
    let st = install(&vm, &bad);
    assert_eq!(st["state"], "installed", "{st}");
    reboot(vm);

    let mut broken = Vm::start(&dir);
    broken.wait_exit(BOOT_TIMEOUT);
    let c = broken.console();
    assert!(c.contains("edgerec-boot: slot A up"), "{c}");
    assert!(c.contains("not healthy after 20s"), "{c}");
    drop(broken);

    let mut vm = Vm::boot(&dir);
    assert_eq!(vm.slot(), "B", "fell back to the working slot");
    assert!(vm.sh("cat /etc/edgerec-release").contains("2.0-update"));
    assert_eq!(vm.recordings().len(), 2);
    vm.wait_console("slot B marked good", Duration::from_secs(60));
    let system = vm.api("/v1/system");
    assert_eq!(boot_status(&system, "rootfs.0"), "bad", "{system}");
    assert_eq!(boot_status(&system, "rootfs.1"), "good", "{system}");
    assert_eq!(system["rauc"]["booted"], "B", "{system}");

    // A wedged daemon (stopped: it accepts connections and answers nothing)
    // is restarted by the watchdog, with the operator's faster settings.
    vm.sh("mkdir -p /data/etc/default; printf 'WATCHDOG_INTERVAL=2\\nWATCHDOG_FAILURES=3\\n' > /data/etc/default/edgerec");
    std::thread::sleep(Duration::from_secs(12));
    let wedged = vm.sh("cat /run/edgerec.pid");
    vm.sh(&format!("kill -STOP {wedged}"));
    vm.wait_console(
        &format!("restarting edgerec (pid {wedged})"),
        Duration::from_secs(120),
    );
    let t = Instant::now();
    loop {
        let pid = vm.sh("cat /run/edgerec.pid");
        let ok = ureq::get(&vm.url("/v1/health"))
            .timeout(Duration::from_secs(2))
            .call()
            .is_ok_and(|r| r.status() == 200);
        if ok && !pid.is_empty() && pid != wedged {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "not healthy again:\n{}",
            vm.console()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "wedged daemon restarted by the watchdog, healthy {:.1} s after its restart",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(vm.recordings().len(), 2);
}

/// A slot's boot status in `GET /v1/system` (RAUC's JSON: a list of
/// one-key objects).
fn boot_status(system: &Value, slot: &str) -> String {
    system["rauc"]["slots"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|s| s.get(slot))
        .and_then(|s| s["boot_status"].as_str())
        .unwrap_or("?")
        .to_owned()
}

/// What Buildroot expects of a br2-external tree, as far as it can be checked
/// without Buildroot (its manual, "Keeping customizations outside of
/// Buildroot"): the three top files, a Config.in and .mk per package with the
/// package's variable prefix, defconfig paths that exist, scripts that parse.
#[test]
fn br2_external_tree_is_what_buildroot_expects() {
    let tree = workspace().join("image/buildroot");
    let read = |p: &str| {
        std::fs::read_to_string(tree.join(p)).unwrap_or_else(|e| panic!("image/buildroot/{p}: {e}"))
    };
    let desc = read("external.desc");
    assert!(desc.lines().any(|l| l == "name: EDGEREC"), "{desc}");
    assert!(desc.lines().any(|l| l.starts_with("desc: ")), "{desc}");
    assert!(read("external.mk").contains("$(BR2_EXTERNAL_EDGEREC_PATH)/package/*/*.mk"));
    let config_in = read("Config.in");
    for line in config_in.lines().filter(|l| l.starts_with("source ")) {
        let path = line
            .trim_start_matches("source ")
            .trim_matches('"')
            .replace("$BR2_EXTERNAL_EDGEREC_PATH/", "");
        assert!(tree.join(&path).is_file(), "Config.in sources {path}");
    }
    for pkg in std::fs::read_dir(tree.join("package")).unwrap() {
        let pkg = pkg.unwrap().file_name().into_string().unwrap();
        let upper = pkg.to_uppercase().replace('-', "_");
        let cfg = read(&format!("package/{pkg}/Config.in"));
        assert!(
            cfg.contains(&format!("config BR2_PACKAGE_{upper}\n")),
            "{cfg}"
        );
        assert!(
            config_in.contains(&format!("package/{pkg}/Config.in")),
            "Config.in does not source {pkg}"
        );
        let mk = read(&format!("package/{pkg}/{pkg}.mk"));
        for var in ["VERSION", "SITE", "LICENSE"] {
            assert!(
                mk.contains(&format!("\n{upper}_{var} = ")),
                "{pkg}.mk: no {upper}_{var}"
            );
        }
        assert!(
            mk.trim_end().ends_with("$(eval $(cargo-package))"),
            "{pkg}.mk"
        );
        // Every variable the .mk sets is the package's own.
        for l in mk
            .lines()
            .filter(|l| l.contains(" = ") || l.contains(" += "))
        {
            if !l.starts_with('\t') && !l.starts_with('#') && !l.starts_with(' ') {
                assert!(l.starts_with(&format!("{upper}_")), "{pkg}.mk sets {l:?}");
            }
        }
    }
    let configs: Vec<_> = std::fs::read_dir(tree.join("configs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        configs.iter().all(|c| c.ends_with("_defconfig")),
        "{configs:?}"
    );
    // Symbols checked against Buildroot's own Config.in files (a misspelt or
    // removed one is dropped silently by `make *_defconfig`).
    let known: std::collections::HashSet<String> = read("br2-symbols.txt")
        .lines()
        .filter(|l| l.starts_with("BR2_"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    for c in &configs {
        let text = read(&format!("configs/{c}"));
        assert!(text.contains("BR2_PACKAGE_EDGEREC=y"), "{c}");
        // `BR2_X=...` and `# BR2_X is not set`.
        for l in text.lines().map(|l| l.trim_start_matches("# ")) {
            if l.starts_with("BR2_") {
                let sym = l.split(['=', ' ']).next().unwrap_or(l);
                assert!(
                    known.contains(sym),
                    "{c}: {sym} is not in br2-symbols.txt: check Buildroot defines it, then list it"
                );
            }
        }
        for l in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            assert!(
                l.starts_with("BR2_") && l.contains('='),
                "{c}: not a Kconfig assignment: {l:?}"
            );
            // Paths into this tree must exist.
            for part in l
                .split('"')
                .filter(|p| p.contains("$(BR2_EXTERNAL_EDGEREC_PATH)"))
            {
                for path in part.split_whitespace() {
                    let rel = path.replace("$(BR2_EXTERNAL_EDGEREC_PATH)/", "");
                    assert!(tree.join(&rel).exists(), "{c}: {rel} does not exist");
                }
            }
        }
    }
    // Every shell script in the board parses.
    let board = tree.join("board/x86_64");
    let mut scripts = vec![];
    let mut stack = vec![board.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_symlink() {
                continue; // e.g. etc/resolv.conf -> /run, dangling until booted
            } else if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).unwrap().starts_with(b"#!/bin/sh") {
                scripts.push(p);
            }
        }
    }
    assert!(scripts.len() >= 8, "{scripts:?}");
    for s in &scripts {
        let out = Command::new("sh").arg("-n").arg(s).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            s.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
