#!/usr/bin/python3
"""Side-by-side recording benchmark: edgerec, nginx-rtmp, ffmpeg and GStreamer under
the same load from edgerec-loadgen, one system at a time, on this machine.

Called by bench/run (which installs what it needs); see bench/README.md. Every system
is a child of this script, so os.wait4 gives its exact CPU time, peak RSS and block
writes. Every output file is counted with ffprobe against what the generator sent.
"""

import argparse
import collections
import concurrent.futures
import datetime
import glob
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEMS = ["edgerec", "nginx-rtmp", "ffmpeg", "gstreamer", "floor", "floor-nosync",
           "edgerec-udp", "edgerec-srt", "edgerec-rtp"]
API_KEY = "bench-key"
GIVE_UP_S = 5.0
# A system losing more than this share of the frames due has fallen over. Not
# less: GStreamer loses one to three frames per feed at every N (it joins each
# feed through a relay), 0.2–0.7% of a 6 s feed — a defect the table shows, but
# at 0.5% it stopped GStreamer at 10 feeds in one run and not in another.
LOSS_LIMIT = 0.02


def log(*a):
    print(*a, file=sys.stderr, flush=True)


_next_port = 20000 + (os.getpid() * 97) % 12000


def free_port():
    """A port free for TCP and UDP, below the kernel's ephemeral range (32768 up):
    a port from bind(0) is also handed to the next outgoing connection (the
    publishers' hundreds of them), which may then hold it when a server binds it."""
    global _next_port
    for _ in range(12000):
        port = _next_port
        _next_port = 20000 + (_next_port - 20000 + 1) % 12000
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("0.0.0.0", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port in 20000..32000")


def free_block(n):
    """`n` consecutive free ports (see free_port): the first."""
    first = free_port()
    run = 1
    while run < n:
        p = free_port()
        if p == first + run:
            run += 1
        else:
            first, run = p, 1
    return first


def listening_ports():
    """Local TCP ports in LISTEN state (from /proc/net/tcp{,6})."""
    ports = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    if parts[3] == "0A":
                        ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


def wait_listening(ports, timeout):
    deadline = time.time() + timeout
    want = set(ports)
    while time.time() < deadline:
        if want <= listening_ports():
            return True
        time.sleep(0.2)
    return False


def vm_hwm_kib(pid):
    """The process's own peak resident set (VmHWM), or None once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return None


class HwmSampler:
    """Samples every live child's VmHWM a few times a second.

    Peak memory cannot come from wait4: Linux carries the pre-exec peak across
    execve into ru_maxrss, and Python starts children with vfork, so every child
    reported at least the harness's own resident set (14–25 MiB here, which is
    most of nginx-rtmp's figure). VmHWM belongs to the child's own address space.
    A child is sampled until it is reaped (a zombie keeps its pid), so a pid is
    never confused with a later process's."""

    def __init__(self):
        self.procs = set()
        self.lock = threading.Lock()
        threading.Thread(target=self.run, daemon=True).start()

    def add(self, proc):
        with self.lock:
            self.procs.add(proc)

    def sample(self, proc):
        kib = vm_hwm_kib(proc.p.pid)
        if kib is not None:
            proc.hwm_kib = max(proc.hwm_kib, kib)

    def run(self):
        while True:
            with self.lock:
                procs = [p for p in self.procs if p.rusage is None]
                self.procs = set(procs)
            for p in procs:
                self.sample(p)
            time.sleep(0.25)


HWM = None


class Proc:
    """A child process whose rusage is collected when it is reaped, and whose
    peak memory is sampled while it runs (see HwmSampler)."""

    def __init__(self, argv, log_path, env=None, err_path=None):
        self.argv = argv
        self.log = open(log_path, "wb")
        err = open(err_path, "wb") if err_path else subprocess.STDOUT
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=err,
                                  stdin=subprocess.DEVNULL, env=env)
        if err_path:
            err.close()
        self.rusage = None
        self.status = None
        self.hwm_kib = 0
        global HWM
        if HWM is None:
            HWM = HwmSampler()
        HWM.add(self)

    def signal(self, sig):
        if self.rusage is None:
            try:
                # Not Popen.send_signal: it polls, and reaping there loses the rusage.
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass

    def reap(self, timeout):
        """Waits up to `timeout` s; returns False if still running."""
        deadline = time.time() + timeout
        while self.rusage is None:
            HWM.sample(self)  # the last look before it may exit
            pid, status, ru = os.wait4(self.p.pid, os.WNOHANG)
            if pid == self.p.pid:
                self.status, self.rusage = status, ru
                self.p.returncode = os.waitstatus_to_exitcode(status)
                self.log.close()
                return True
            if time.time() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, sig, timeout):
        self.signal(sig)
        if not self.reap(timeout):
            log(f"  {self.argv[0]} did not exit on {sig}; killing")
            self.p.kill()
            self.reap(30)


class Usage(collections.namedtuple("Usage", "user sys rss written")):
    """A system's processes: CPU seconds in user space and in the kernel and block
    writes in bytes (from wait4), and their summed peak RSS (sampled VmHWM)."""

    @property
    def cpu(self):
        return self.user + self.sys


def usage(procs):
    return Usage(user=sum(p.rusage.ru_utime for p in procs),
                 sys=sum(p.rusage.ru_stime for p in procs),
                 rss=sum(p.hwm_kib for p in procs) * 1024,
                 written=sum(p.rusage.ru_oublock for p in procs) * 512)


def base_system(spec):
    """`edgerec[storage.o_direct=true]` → `edgerec`."""
    return spec.split("[", 1)[0]


def settings_env(spec):
    """The EDGEREC_* variables of a variant: `edgerec[storage.sync=finalize;rtmp.read_coalesce=50ms]`
    runs edgerec with EDGEREC_STORAGE__SYNC=finalize EDGEREC_RTMP__READ_COALESCE=50ms."""
    if "[" not in spec:
        return {}
    body = spec.split("[", 1)[1].rstrip("]")
    env = {}
    for kv in filter(None, body.split(";")):
        key, _, value = kv.partition("=")
        env["EDGEREC_" + key.strip().upper().replace(".", "__")] = value.strip()
    return env


# ---------------------------------------------------------------- systems under test


class Edgerec:
    name = "edgerec"

    def __init__(self, bins, work, n, settings=None):
        self.bins, self.work, self.n = bins, work, n
        self.settings = settings or {}
        self.http, self.rtmp = free_port(), free_port()
        self.url = f"rtmp://127.0.0.1:{self.rtmp}/live/feed{{i}}"

    def serve_args(self):
        """Arguments `edgerec serve` takes before the common ones."""
        return []

    def start(self):
        env = dict(os.environ, EDGEREC_API_KEY=API_KEY, RUST_LOG="warn", **self.settings)
        self.procs = [Proc([os.path.join(self.bins, "edgerec"), "serve"] + self.serve_args() + [
                            "--data-dir", os.path.join(self.work, "data"),
                            "--http", f"127.0.0.1:{self.http}",
                            "--rtmp", f"127.0.0.1:{self.rtmp}"],
                           os.path.join(self.work, "edgerec.log"), env)]
        if not wait_listening([self.http, self.rtmp], 30):
            raise RuntimeError("edgerec did not start listening")

    def after_load(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/metrics", timeout=10) as r:
            self.metrics = r.read().decode()

    def stop(self):
        self.procs[0].stop(signal.SIGTERM, 120)

    def outputs(self, i):
        return sorted(glob.glob(os.path.join(self.work, "data/recordings/live", f"feed{i}", "**", "*.mp4"),
                                recursive=True))

    def extra(self):
        return {"write_latency": histogram_quantiles(self.metrics, "edgerec_write_latency_seconds"),
                "frames_dropped": metric_sum(self.metrics, "edgerec_frames_dropped_total")}


class EdgerecTs(Edgerec):
    """edgerec taking the same feeds as MPEG-TS (the source re-muxed once by ffmpeg,
    `-c copy`): over UDP, one configured input port per feed, or over SRT, one
    listener that every publisher calls with its stream id. Run at the N of
    `--ingest-feeds` only: the ingests' cost beside RTMP's, not a peer."""

    ts = True
    transport = None

    def __init__(self, bins, work, n, settings=None):
        super().__init__(bins, work, n, settings)
        if self.transport == "srt":
            self.srt = free_port()
            self.base = 0
            self.url = f"srt://127.0.0.1:{self.srt}?streamid=live/feed{{i}}"
        else:
            self.base = free_block(n)
            self.url = f"{self.transport}://127.0.0.1:{{port}}"

    def serve_args(self):
        """A config file with the inputs, written here."""
        conf = os.path.join(self.work, "edgerec.toml")
        with open(conf, "w") as fh:
            if self.transport == "srt":
                fh.write(f'[[mpegts.inputs]]\ntransport = "srt"\nlisten = "127.0.0.1:{self.srt}"\n'
                         'stream = "live/default"\n')
            else:
                for i in range(self.n):
                    fh.write(f'[[mpegts.inputs]]\ntransport = "{self.transport}"\n'
                             f'listen = "127.0.0.1:{self.base + i}"\nstream = "live/feed{i}"\n')
        return ["--config", conf]

    def after_load(self):
        if self.transport == "srt":
            # SRT hands data to the application a latency (120 ms) after it
            # arrives: the last publisher's tail is still in the receive buffer
            # when it closes.
            time.sleep(1)
        super().after_load()


class EdgerecUdp(EdgerecTs):
    name = "edgerec-udp"
    transport = "udp"


class EdgerecSrt(EdgerecTs):
    name = "edgerec-srt"
    transport = "srt"


class EdgerecRtp(Edgerec):
    """edgerec taking the same frames as relayed RTP (H.264 + AAC-hbr, what an SFU's
    plain transport sends): each publisher opens a session through the API and
    sends to its two ports. Run at the N of `--ingest-feeds` only, as the TS
    ingests."""

    name = "edgerec-rtp"

    def __init__(self, bins, work, n, settings=None):
        super().__init__(bins, work, n, settings)
        # RTP and RTCP for two tracks per feed, and room to spare.
        self.ports = 4 * n + 16
        self.base = free_block(self.ports)
        self.url = f"rtp://127.0.0.1:{self.http}/live/feed{{i}}"

    def serve_args(self):
        conf = os.path.join(self.work, "edgerec.toml")
        with open(conf, "w") as fh:
            fh.write(f'[rtp]\nlisten_ip = "127.0.0.1"\nport_min = {self.base}\n'
                     f'port_max = {self.base + self.ports - 1}\n')
        return ["--config", conf]


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
error_log {work}/error.log warn;
pid {work}/nginx.pid;
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
events {{ worker_connections 16384; }}
rtmp {{
  server {{
    listen 127.0.0.1:{port};
    chunk_size 4096;
    application live {{
      live on;
{record}
    }}
  }}
}}
"""


def start_nginx(work, port, record):
    os.makedirs(os.path.join(work, "nginx"), exist_ok=True)
    rec = ""
    if record:
        out = os.path.join(work, "out")
        os.makedirs(out, exist_ok=True)
        rec = f"      record all;\n      record_path {out};\n      record_unique off;"
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(work=work, port=port, record=rec))
    p = Proc(["nginx", "-p", os.path.join(work, "nginx"), "-c", conf],
             os.path.join(work, "nginx.log"))
    if not wait_listening([port], 20):
        raise RuntimeError("nginx did not start listening (see nginx.log)")
    return p


class NginxRtmp:
    name = "nginx-rtmp"

    def __init__(self, bins, work, n):
        self.work, self.n = work, n
        self.port = free_port()
        self.url = f"rtmp://127.0.0.1:{self.port}/live/feed{{i}}"

    def start(self):
        self.procs = [start_nginx(self.work, self.port, record=True)]

    def after_load(self):
        pass

    def stop(self):
        self.procs[0].stop(signal.SIGQUIT, 60)

    def outputs(self, i):
        return sorted(glob.glob(os.path.join(self.work, "out", f"feed{i}.flv")))

    def extra(self):
        return {}


class FfmpegPerFeed:
    name = "ffmpeg"

    def __init__(self, bins, work, n):
        self.work, self.n = work, n
        self.base = 30000
        self.url = "rtmp://127.0.0.1:{port}/live/feed{i}"

    def start(self):
        out = os.path.join(self.work, "out")
        os.makedirs(out, exist_ok=True)
        self.procs = []
        for i in range(self.n):
            port = self.base + i
            self.procs.append(Proc(
                ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-listen", "1",
                 "-i", f"rtmp://127.0.0.1:{port}/live/feed{i}", "-c", "copy", "-f", "mp4",
                 os.path.join(out, f"feed{i}.mp4")],
                os.path.join(self.work, f"ffmpeg{i}.log")))
        if not wait_listening([self.base + i for i in range(self.n)], 120):
            raise RuntimeError("not every ffmpeg listener came up")

    def after_load(self):
        pass

    def stop(self):
        # Each ffmpeg finalizes and exits when its publisher leaves.
        deadline = time.time() + 60
        for p in self.procs:
            if not p.reap(max(0.0, deadline - time.time())):
                p.stop(signal.SIGINT, 20)

    def outputs(self, i):
        return sorted(glob.glob(os.path.join(self.work, "out", f"feed{i}.mp4")))

    def extra(self):
        return {}


class Gstreamer:
    """GStreamer has no RTMP server element: rtmp2src plays each feed from an
    nginx-rtmp relay (live, no recording). Only the GStreamer process is measured."""

    name = "gstreamer"

    def __init__(self, bins, work, n):
        self.work, self.n = work, n
        self.port = free_port()
        self.url = f"rtmp://127.0.0.1:{self.port}/live/feed{{i}}"

    def start(self):
        self.relay = start_nginx(self.work, self.port, record=False)
        out = os.path.join(self.work, "out")
        os.makedirs(out, exist_ok=True)
        argv = ["gst-launch-1.0", "-q", "-e"]
        for i in range(self.n):
            argv += ["rtmp2src", f"location=rtmp://127.0.0.1:{self.port}/live/feed{i}", "!",
                     "flvdemux", f"name=d{i}",
                     f"d{i}.video", "!", "queue", "!", "h264parse", "!", "mp4mux", f"name=m{i}", "!",
                     "filesink", f"location={out}/feed{i}.mp4",
                     f"d{i}.audio", "!", "queue", "!", "aacparse", "!", f"m{i}."]
        self.procs = [Proc(argv, os.path.join(self.work, "gst.log"))]
        # Give every rtmp2src time to connect and subscribe before the feeds start.
        deadline = time.time() + 30 + self.n * 0.05
        while time.time() < deadline and self.players() < self.n:
            time.sleep(0.25)

    def players(self):
        # Established connections to the relay from GStreamer's side.
        n = 0
        with open("/proc/net/tcp") as fh:
            next(fh)
            for line in fh:
                parts = line.split()
                if parts[3] == "01" and int(parts[2].rsplit(":", 1)[1], 16) == self.port:
                    n += 1
        return n

    def after_load(self):
        time.sleep(1)

    def stop(self):
        # EOS finalizes every mp4mux: a second or two up to 200 feeds; at 500,
        # where it is already losing frames, over two minutes. Files it has not
        # finished 10 s after the end of the stream count as lost.
        self.procs[0].stop(signal.SIGINT, 10)
        self.relay.stop(signal.SIGQUIT, 30)

    def outputs(self, i):
        return sorted(glob.glob(os.path.join(self.work, "out", f"feed{i}.mp4")))

    def extra(self):
        u = usage([self.relay])
        return {"relay_cpu_s": u.cpu, "relay_rss": u.rss}


class Floor:
    """Not a recorder: `edgerec-floor` takes the publish, then only copies each
    connection's bytes to a file (read every 500 ms as edgerec reads, written
    through the page cache, fdatasync once a second) — the kernel work and wake-ups any recorder of
    this load pays, with no parsing or muxing. Its files are raw chunk streams, so
    it is checked by bytes received against bytes sent, not by frames."""

    name = "floor"
    raw = True
    sync_every_ms = 1000

    def __init__(self, bins, work, n, flags=()):
        self.bins, self.work, self.n = bins, work, n
        self.flags = list(flags)
        self.port = free_port()
        self.url = f"rtmp://127.0.0.1:{self.port}/live/feed{{i}}"

    def start(self):
        self.procs = [Proc([os.path.join(self.bins, "edgerec-floor"),
                            "--listen", f"127.0.0.1:{self.port}",
                            "--dir", os.path.join(self.work, "out"),
                            "--sync-every-ms", str(self.sync_every_ms)] + self.flags,
                           os.path.join(self.work, "floor.log"))]
        if not wait_listening([self.port], 20):
            raise RuntimeError("edgerec-floor did not start listening")

    def after_load(self):
        time.sleep(0.8)  # its last read comes up to --read-every-ms (500) after the feed ends

    def stop(self):
        self.procs[0].stop(signal.SIGTERM, 30)

    def outputs(self, i):
        return sorted(glob.glob(os.path.join(self.work, "out", f"feed{i}.raw")))

    def extra(self):
        return {}


class FloorNoSync(Floor):
    """The floor without fdatasync: what nginx-rtmp, ffmpeg and GStreamer do."""

    name = "floor-nosync"
    sync_every_ms = 0


CLASSES = {c.name: c for c in (Edgerec, NginxRtmp, FfmpegPerFeed, Gstreamer, Floor, FloorNoSync,
                                EdgerecUdp, EdgerecSrt, EdgerecRtp)}
TS_INGESTS = (EdgerecUdp.name, EdgerecSrt.name)
INGESTS = TS_INGESTS + (EdgerecRtp.name,)


def histogram_quantiles(text, name):
    buckets = []
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return {}
    total = buckets[-1][1]
    out = {"count": int(total)}
    for q in (0.5, 0.99):
        out[f"p{int(q * 100)}_le_ms"] = next((le * 1000 for le, c in buckets if c >= q * total), None)
    return out


def metric_sum(text, name):
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith(name) and not l.startswith("#"))


# ---------------------------------------------------------------- one run


COUNT_BATCH = 40


def count_frames_batch(paths):
    """Packets per file, for many files in one `ffmpeg` run: {path: (video, audio)}.

    ffmpeg demuxes every input to the null muxer (`-c copy`) and, at `-v verbose`,
    prints how many packets it read from each input stream — the count
    `ffprobe -count_packets` gives, without starting a process per file (their
    start-up was most of the harness's time at thousands of files). A batch that
    fails, or a file it does not report, is counted by ffprobe alone."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "verbose"]
    for p in paths:
        cmd += ["-i", p]
    for i in range(len(paths)):
        cmd += ["-map", str(i)]
    cmd += ["-c", "copy", "-f", "null", "-"]
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    counts = {}
    if r.returncode == 0:
        current = None
        for line in r.stderr.splitlines():
            m = re.match(r"Input file #(\d+) \(", line)
            if m:
                current = int(m.group(1))
                counts.setdefault(paths[current], [0, 0])
                continue
            m = re.match(r"\s+Input stream #(\d+):\d+ \((\w+)\): (\d+) packets read", line)
            if m and current is not None and int(m.group(1)) == current:
                kind, n = m.group(2), int(m.group(3))
                if kind == "video":
                    counts[paths[current]][0] += n
                elif kind == "audio":
                    counts[paths[current]][1] += n
    return {p: (tuple(counts[p]) if p in counts else count_frames(p)) for p in paths}


def mp4_without_index(path):
    """True for an .mp4 that has neither a `moov` nor a `moof` box at its top level:
    no player can read it (a recorder killed before it finalized). Told from the
    box headers alone, so a run that leaves hundreds of them (GStreamer at 500
    feeds) does not start an ffprobe for each (half a minute)."""
    if not path.endswith(".mp4"):
        return False
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            pos = 0
            while pos + 8 <= size:
                fh.seek(pos)
                head = fh.read(16)
                n, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if kind in (b"moov", b"moof"):
                    return False
                if n == 1 and len(head) == 16:
                    n = int.from_bytes(head[8:16], "big")
                elif n == 0:
                    break
                if n < 8:
                    return False  # not boxes: let ffprobe say what it is
                pos += n
    except OSError:
        return False
    return True


def count_all(paths):
    """{path: (video, audio) or None}, in batches on every core."""
    out = {p: None for p in paths if mp4_without_index(p)}
    paths = [p for p in paths if p not in out]
    batches = [paths[i:i + COUNT_BATCH] for i in range(0, len(paths), COUNT_BATCH)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        for part in ex.map(count_frames_batch, batches):
            out.update(part)
    return out


def count_frames(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-show_entries",
                        "stream=codec_type,nb_read_packets", "-of", "json", path],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None
    v = a = 0
    for s in json.loads(r.stdout).get("streams", []):
        n = int(s.get("nb_read_packets") or 0)
        if s.get("codec_type") == "video":
            v += n
        elif s.get("codec_type") == "audio":
            a += n
    return v, a


def check_system(spec):
    """Refuses, before anything runs, a system that is not known or a variant of
    one that takes no settings (only edgerec does)."""
    base = base_system(spec)
    if base not in CLASSES:
        raise SystemExit(f"unknown system {spec!r} (known: {', '.join(SYSTEMS)})")
    if base not in (Edgerec.name, Floor.name, FloorNoSync.name) + INGESTS and settings_env(spec):
        raise SystemExit(f"{spec!r}: only edgerec and the floor take settings")


def make_system(spec, bins, work, n):
    """The system under test that `spec` names."""
    base = base_system(spec)
    if base == Edgerec.name:
        return Edgerec(bins, work, n, settings_env(spec))
    if base in (Floor.name, FloorNoSync.name):
        return CLASSES[base](bins, work, n, floor_flags(spec))
    if base in INGESTS:
        return CLASSES[base](bins, work, n, settings_env(spec))
    return CLASSES[spec](bins, work, n)


def floor_flags(spec):
    """`floor[read_every_ms=1000]` → `--read-every-ms 1000`."""
    if "[" not in spec:
        return []
    flags = []
    for kv in filter(None, spec.split("[", 1)[1].rstrip("]").split(";")):
        key, _, value = kv.partition("=")
        flags += ["--" + key.strip().replace("_", "-"), value.strip()]
    return flags


def run_one(system, n, args, bins, scratch):
    work = os.path.join(scratch, re.sub(r"[^A-Za-z0-9_.-]+", "_", system) + f"-{n}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    sut = make_system(system, bins, work, n)
    log(f"== {system}, {n} feeds x {args.duration:g} s")
    t0 = time.time()
    sut.start()
    source = args.ts_source if getattr(sut, "ts", False) else args.source
    gen = Proc([os.path.join(bins, "edgerec-loadgen"), "--source", source, "--feeds", str(n),
                "--duration", str(args.duration), "--url", sut.url, "--ramp", str(args.ramp),
                "--give-up", str(GIVE_UP_S), "--base-port", str(getattr(sut, "base", 0)),
                "--api-key", API_KEY],
               os.path.join(work, "loadgen.json"), err_path=os.path.join(work, "loadgen.log"))
    gen.reap(args.duration + args.ramp + 120)
    if gen.rusage is None:
        gen.stop(signal.SIGKILL, 10)
    try:
        sut.after_load()
    except Exception as e:  # a crashed system has no metrics to give
        log(f"  after load: {e}")
    sut.stop()
    wall = time.time() - t0
    with open(os.path.join(work, "loadgen.json")) as fh:
        text = fh.read()
    try:
        lg = json.loads(text)
    except ValueError:
        with open(os.path.join(work, "loadgen.log")) as fh:
            raise RuntimeError(f"load generator failed: {fh.read()[-2000:]}")
    u = usage(sut.procs)
    cpu, rss = u.cpu, u.rss
    gen_cpu = gen.rusage.ru_utime + gen.rusage.ru_stime

    # Every feed's output against what was due (a live source does not wait).
    due_v, due_a = lg["video_scheduled"], lg["audio_scheduled"]
    t_count = time.time()
    files = {i: sut.outputs(i) for i in range(n)}
    lost = extra = unreadable = 0
    out_bytes = 0
    raw_short = None
    if getattr(sut, "raw", False):
        # Raw chunk streams: every byte sent after the publish must be in the file
        # (the handshake and commands, a few KiB, are not written).
        sent = {f["feed"]: f["bytes_sent"] for f in lg["per_feed"]}
        raw_short = 0
        for i in range(n):
            got = sum(os.path.getsize(f) for f in files[i])
            out_bytes += got
            raw_short += max(0, sent.get(i, 0) - got - 8192)
        files = {}
    by_path = count_all([f for i in files for f in files[i]])
    counts = {(i, f): by_path[f] for i in files for f in files[i]}
    for i in files:
        v = a = 0
        for f in files[i]:
            out_bytes += os.path.getsize(f)
            c = counts[(i, f)]
            if c is None:
                unreadable += 1
                continue
            v, a = v + c[0], a + c[1]
        lost += max(0, due_v - v) + max(0, due_a - a)
        extra += max(0, v - due_v) + max(0, a - due_a)
    feed_seconds = n * args.duration
    res = {
        "system": system,
        "feeds": n,
        "duration_s": args.duration,
        "wall_s": round(wall, 1),
        "check_s": round(time.time() - t_count, 1),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_feed_s": round(cpu * 1000 / feed_seconds, 3),
        "cpu_user_ms_per_feed_s": round(u.user * 1000 / feed_seconds, 3),
        "cpu_sys_ms_per_feed_s": round(u.sys * 1000 / feed_seconds, 3),
        "peak_rss_bytes": rss,
        "rss_per_feed_bytes": rss // n,
        "output_bytes_per_feed_s": round(out_bytes / feed_seconds),
        "disk_write_bytes_per_feed_s": round(u.written / feed_seconds),
        "frames_due": 0 if raw_short is not None else n * (due_v + due_a),
        "raw_bytes_short": raw_short,
        "frames_lost": lost,
        "frames_extra": extra,
        "files_unreadable": unreadable,
        "feeds_failed": lg["feeds_failed"],
        "max_lag_ms": lg["max_lag_ms"],
        "loadgen_cpu_s": round(gen_cpu, 3),
        "loadgen_cpu_ms_per_feed_s": round(gen_cpu * 1000 / feed_seconds, 3),
        "loadgen_user_ms_per_feed_s": round(gen.rusage.ru_utime * 1000 / feed_seconds, 3),
        "loadgen_sys_ms_per_feed_s": round(gen.rusage.ru_stime * 1000 / feed_seconds, 3),
        "loadgen_rss_bytes": gen.rusage.ru_maxrss * 1024,
        "sut_exit": [p.p.returncode for p in sut.procs][:3],
    }
    res.update(sut.extra())
    log(f"   cpu {res['cpu_ms_per_feed_s']} ms/feed-s, rss {rss / 2**20:.1f} MiB "
        f"({res['rss_per_feed_bytes'] / 1024:.0f} KiB/feed), lost {lost}/{res['frames_due']}, "
        f"failed feeds {lg['feeds_failed']}, max lag {lg['max_lag_ms']} ms, "
        f"loadgen {res['loadgen_cpu_ms_per_feed_s']} ms/feed-s, {wall:.0f} s, "
        f"outputs checked in {time.time() - t_count:.0f} s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return res


def gen_split(r):
    """The generator's user / sys ms per feed-second ("–" in results before it was kept)."""
    if "loadgen_user_ms_per_feed_s" not in r:
        return "–"
    return f"{r['loadgen_user_ms_per_feed_s']:.2f} / {r['loadgen_sys_ms_per_feed_s']:.2f}"


def fell_over(r):
    if r.get("raw_bytes_short") is not None:
        sent = r["output_bytes_per_feed_s"] * r["feeds"] * r["duration_s"]
        return (r["feeds_failed"] > 0 or r["raw_bytes_short"] > LOSS_LIMIT * max(sent, 1)
                or r["max_lag_ms"] > GIVE_UP_S * 1000)
    return (r["feeds_failed"] > 0 or r["files_unreadable"] > 0
            or r["frames_lost"] > LOSS_LIMIT * r["frames_due"] or r["max_lag_ms"] > GIVE_UP_S * 1000)


# ---------------------------------------------------------------- report


def machine_line():
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} vCPU {cpu}, {mem:.0f} GiB RAM, Linux {platform.release()}"


def versions():
    def first(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except Exception:
            return "?"
    return {"nginx": first(["nginx", "-v"]), "ffmpeg": first(["ffmpeg", "-version"]),
            "gstreamer": first(["gst-launch-1.0", "--version"])}


def ratio(x, y):
    return f"{x / y:.1f}×" if y else "–"


def lost_cell(r):
    if r.get("raw_bytes_short") is not None:
        return f"raw: {r['raw_bytes_short']} bytes short"
    return f"{r['frames_lost']} / {r['frames_due']}"


def run_time_line(results, phases):
    """Where the command's time went: the one figure the issue bounds (15 min)."""
    runs = sum(r["wall_s"] for r in results)
    checks = sum(r.get("check_s", 0) for r in results)
    total = sum(phases.values())
    parts = [f"setup {phases['setup']:.0f} s (apt, build, source)",
             f"{len(results)} load runs {runs:.0f} s", f"output checks {checks:.0f} s"]
    if phases.get("micro"):
        parts.append(f"micro benchmarks {phases['micro']:.0f} s")
    other = total - phases["setup"] - runs - checks - phases.get("micro", 0)
    parts.append(f"the rest {other:.0f} s")
    return f"Run time: **{total / 60:.1f} min** — " + ", ".join(parts) + "."


def report(results, micro, args, out_dir, started, phases):
    by = {(r["system"], r["feeds"]): r for r in results}
    lines = [f"# edgerec bench — {started:%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {machine_line()}. Load: edgerec-loadgen, {args.duration:g} s per feed of "
             f"{args.source_desc}, publishers started over {args.ramp:g} s. "
             f"Build: {args.build_desc or args.profile}.", "", run_time_line(results, phases), "",
             "Per system and number of feeds N: CPU-seconds per feed-second (user+sys of every "
             "process of the system, from wait4), peak resident memory per feed (sum of the "
             "processes' peaks / N), bytes written to disk per feed-second (block writes, from "
             "wait4), frames lost (every output file counted by ffprobe against the frames due), "
             "and ratios to edgerec at the same N (higher = edgerec better).", "",
             "| system | N | CPU ms / feed-s | user / sys | × edgerec | RSS / feed | × edgerec "
             "| disk KB / feed-s | frames lost | generator CPU ms / feed-s (user / sys) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    order = systems_in_order(results)
    for r in sorted(results, key=lambda r: (r["feeds"], order.index(r["system"]))):
        e = by.get(("edgerec", r["feeds"]))
        lines.append(
            f"| {r['system']} | {r['feeds']} | {r['cpu_ms_per_feed_s']:.2f} | "
            f"{r['cpu_user_ms_per_feed_s']:.2f} / {r['cpu_sys_ms_per_feed_s']:.2f} | "
            f"{ratio(r['cpu_ms_per_feed_s'], e['cpu_ms_per_feed_s']) if e else '–'} | "
            f"{r['rss_per_feed_bytes'] / 1024:.0f} KiB | "
            f"{ratio(r['rss_per_feed_bytes'], e['rss_per_feed_bytes']) if e else '–'} | "
            f"{r['disk_write_bytes_per_feed_s'] / 1000:.0f} | "
            f"{lost_cell(r)}{' (fell over)' if fell_over(r) else ''} | "
            f"{r['loadgen_cpu_ms_per_feed_s']:.2f} ({gen_split(r)}) |")
    stopped = sorted({r["system"] for r in results if fell_over(r)})
    lines += ["", f"A system that loses more than {LOSS_LIMIT:.0%} of frames, fails a feed or falls more than "
              f"{GIVE_UP_S:g} s behind is not run at larger N"
              + (f" (stopped: {', '.join(stopped)})." if stopped else "."), ""]
    ed = sorted((r for r in results if r["system"] == "edgerec"), key=lambda r: r["feeds"])
    if ed:
        lines += ["## edgerec write latency (from /metrics, per fragment write)", "",
                  "| N | writes | p50 ≤ | p99 ≤ |", "|---:|---:|---:|---:|"]
        for r in ed:
            w = r.get("write_latency") or {}
            lines.append(f"| {r['feeds']} | {w.get('count', 0)} | {w.get('p50_le_ms')} ms | "
                         f"{w.get('p99_le_ms')} ms |")
        held = [r["feeds"] for r in ed if r["frames_lost"] == 0 and not fell_over(r)]
        lines += ["", "## Scaling", "",
                  f"Largest N run with zero frames lost: **{max(held) if held else 0}** "
                  f"(of {', '.join(str(r['feeds']) for r in ed)}). {scaling_note(ed, results)}", ""]
    g = [r for r in results if r["system"] == "gstreamer"]
    if g:
        lines += ["GStreamer cannot accept an RTMP publish, so it plays each feed from an nginx-rtmp "
                  "relay (`live on`, no recording); only the GStreamer process is counted "
                  "(the relay used " + ", ".join(
                      f"{r['relay_cpu_s'] * 1000 / (r['feeds'] * r['duration_s']):.2f}"
                      for r in g if "relay_cpu_s" in r) + " ms / feed-s).", ""]
    if micro:
        lines += ["## Micro benchmarks (criterion, one core)", "",
                  "The source's 10 s (looped) through each stage alone; throughput counts the "
                  "stage's input bytes; feeds per core = real time / time taken.", "",
                  "| hot path | time per 10 s of one feed | throughput | feeds per core |",
                  "|---|---:|---:|---:|"]
        for m in micro:
            lines.append(f"| {m['id']} | {m['mean_ns'] / 1e3:.1f} µs | {m['mib_per_s']:.0f} MiB/s | "
                         f"{10e9 / m['mean_ns']:,.0f} |")
        lines.append("")
    lines += ["Versions: " + "; ".join(f"{k}: {v}" for k, v in versions().items()), ""]
    with open(os.path.join(out_dir, "results.md"), "w") as fh:
        fh.write("\n".join(lines))
    with open(os.path.join(out_dir, "results.json"), "w") as fh:
        json.dump({"started": started.isoformat(), "machine": machine_line(), "results": results,
                   "micro": micro, "phases_s": {k: round(v, 1) for k, v in phases.items()}},
                  fh, indent=1)
    plot(results, os.path.join(out_dir, "cpu_mem_per_feed.png"))
    log("\n".join(lines))


def scaling_note(ed, results):
    last = ed[-1]
    cores = os.cpu_count() or 1
    # Over the feeds' duration: the load is (nearly) all there.
    busy = (last["cpu_s"] + last["loadgen_cpu_s"]) / (last["duration_s"] * cores)
    rss = last["peak_rss_bytes"] / (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    p99 = (last.get("write_latency") or {}).get("p99_le_ms") or 0
    first = "CPU" if busy > 0.8 else "disk" if p99 >= 500 else "memory" if rss > 0.5 else None
    desc = (f"At N = {last['feeds']}{' (frames lost)' if fell_over(last) else ''}: "
            f"edgerec and the generator kept the {cores} cores "
            f"{busy * 100:.0f}% busy over the run, edgerec's peak RSS was {rss * 100:.1f}% of RAM, "
            f"fragment write p99 ≤ {p99} ms.")
    return desc + (f" First resource to run out: **{first}**." if first else
                   " No resource was exhausted at the largest N run.")


def systems_in_order(results):
    """The systems run, peers in SYSTEMS order, each variant after its base."""
    names = list(dict.fromkeys(r["system"] for r in results))
    return sorted(names, key=lambda s: (SYSTEMS.index(base_system(s)), s != base_system(s)))


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for s in systems_in_order(results):
        rs = sorted((r for r in results if r["system"] == s), key=lambda r: r["feeds"])
        if not rs:
            continue
        ns = [r["feeds"] for r in rs]
        cpu = [r["cpu_ms_per_feed_s"] for r in rs]
        mem = [r["rss_per_feed_bytes"] / 2**20 for r in rs]
        line, = ax1.plot(ns, cpu, marker="o", label=s)
        ax2.plot(ns, mem, marker="o", label=s, color=line.get_color())
        # Where a system fell over its figures are not a recorder's working
        # cost: a large cross marks them.
        bad = [i for i, r in enumerate(rs) if fell_over(r)]
        for ax, ys in ((ax1, cpu), (ax2, mem)):
            ax.plot([ns[i] for i in bad], [ys[i] for i in bad], linestyle="none", marker="X",
                    markersize=11, color=line.get_color())
    for ax, title in ((ax1, "CPU ms per feed-second (X: fell over)"),
                      (ax2, "peak RSS per feed (MiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("concurrent feeds (N)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ---------------------------------------------------------------- micro benchmarks


def micro_benchmarks(args):
    env = dict(os.environ, EDGEREC_BENCH_SOURCE=args.source)
    if args.ts_source:
        env["EDGEREC_BENCH_TS_SOURCE"] = args.ts_source
    # The packages and features bench/run built (`-p edgerec -p edgerec-bench
    # --no-default-features --bins --bench hotpaths`):
    # with another package set cargo unifies features differently and builds the
    # dependencies again (45 s).
    cmd = ["cargo", "bench", "-q", "-p", "edgerec", "-p", "edgerec-bench", "--no-default-features",
           "--bench", "hotpaths", "--",
           "--warm-up-time", "0.5", "--measurement-time", "1"]
    log("== micro benchmarks: " + " ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=sys.stderr)
    out = []
    for f in sorted(glob.glob(os.path.join(ROOT, "target/criterion/*/*/new/benchmark.json"))):
        with open(f) as fh:
            b = json.load(fh)
        with open(os.path.join(os.path.dirname(f), "estimates.json")) as fh:
            mean = json.load(fh)["mean"]["point_estimate"]
        tp = (b.get("throughput") or {}).get("Bytes", 0)
        out.append({"id": b["full_id"], "mean_ns": mean, "bytes": tp,
                    "mib_per_s": tp / (mean / 1e9) / 2**20 if mean else 0})
    return out


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bins", required=True, help="directory with edgerec and edgerec-loadgen")
    ap.add_argument("--profile", default="release")
    ap.add_argument("--build-desc", default="", help="what the results call the build (--profile's name if empty)")
    ap.add_argument("--source", required=True)
    ap.add_argument("--source-desc", default="the source")
    ap.add_argument("--feeds", default="10,50,100,200,500")
    ap.add_argument("--systems", default=",".join(SYSTEMS),
                    help="comma-separated; edgerec[key=value;...] is a variant with those "
                         "settings (e.g. edgerec[storage.o_direct=true]), floor[key=value] one "
                         "with those edgerec-floor flags (e.g. floor-nosync[read_every_ms=1000])")
    # 5 s per feed: long enough that connection set-up is a small part of a
    # feed's figures (docs/design/benchmark.md has what it moves), short enough
    # that a cold `bench/run` stays under 15 min on the slower of this machine's
    # hosts too.
    ap.add_argument("--duration", type=float, default=5.0)
    # Publishers start over 1 s (2000 connections a second at the largest N, which
    # every system here accepts): each run's wall time is ramp + duration.
    ap.add_argument("--ramp", type=float, default=1.0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--micro", action="store_true")
    ap.add_argument("--floor-feeds", default="200",
                    help="the N at which the floors run (comma-separated): a reference, not a "
                         "peer, so by default only at the goal's 200 feeds")
    ap.add_argument("--ingest-feeds", default="200",
                    help="the N at which edgerec-udp, edgerec-srt and edgerec-rtp run (the "
                         "MPEG-TS and RTP ingests beside RTMP's): by default only at the goal's "
                         "200 feeds")
    ap.add_argument("--ts-source",
                    help="the source as MPEG-TS (ffmpeg -c copy -f mpegts -pes_payload_size 0), "
                         "for edgerec-udp and edgerec-srt")
    ap.add_argument("--max-feeds", type=int, default=2000,
                    help="edgerec alone doubles N after the list up to this, until it loses frames")
    ap.add_argument("--keep", action="store_true", help="keep recordings and logs")
    ap.add_argument("--strict", action="store_true",
                    help="fail unless edgerec (every ingest) and the floors ran and edgerec lost "
                         "no frame (the smoke check's bar)")
    ap.add_argument("--setup-s", type=float, default=0.0,
                    help="seconds bench/run spent before the harness (apt, build, source)")
    args = ap.parse_args()
    for a in ("bins", "source", "out", "scratch"):
        setattr(args, a, os.path.abspath(getattr(args, a)))
    started = datetime.datetime.now(datetime.timezone.utc)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.scratch, exist_ok=True)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    systems = args.systems.split(",")
    for s in systems:
        check_system(s)
    if args.ts_source:
        args.ts_source = os.path.abspath(args.ts_source)
    elif any(base_system(s) in TS_INGESTS for s in systems):
        log("== no --ts-source: the MPEG-TS ingests (" + ", ".join(TS_INGESTS) + ") are not run")
        systems = [s for s in systems if base_system(s) not in TS_INGESTS]
    results, stopped = [], set()
    t_load = time.time()
    floor_feeds = {int(x) for x in args.floor_feeds.split(",") if x}
    ingest_feeds = {int(x) for x in args.ingest_feeds.split(",") if x}
    for n in [int(x) for x in args.feeds.split(",")]:
        for s in systems:
            if s in stopped:
                continue
            if base_system(s) in (Floor.name, FloorNoSync.name) and n not in floor_feeds:
                continue
            if base_system(s) in INGESTS and n not in ingest_feeds:
                continue
            prev = [r for r in results if r["system"] == s]
            if prev and prev[-1]["rss_per_feed_bytes"] * n > 0.6 * ram:
                log(f"== {s}, {n} feeds: skipped, would need more than 60% of RAM")
                stopped.add(s)
                continue
            try:
                r = run_one(s, n, args, args.bins, args.scratch)
            except Exception as e:
                log(f"   {s} at {n} feeds failed: {e}")
                stopped.add(s)
                continue
            results.append(r)
            if fell_over(r):
                stopped.add(s)
    # Scaling: edgerec alone on the doubling ladder above the list, up to the cap:
    # the top rung first, and only if it does not hold the rungs below it from the
    # bottom up, until one loses frames. The answer (the largest rung held) is the
    # one climbing from the bottom gives, with one run instead of two when the top
    # holds (2000 feeds: 20 s of a cold run, 2026-12-07).
    ed = [r for r in results if r["system"] == "edgerec"]
    ladder = []
    if ed and not fell_over(ed[-1]):
        n = ed[-1]["feeds"]
        while n * 2 <= args.max_feeds:
            n *= 2
            ladder.append(n)

    def scale_run(n):
        try:
            r = run_one("edgerec", n, args, args.bins, args.scratch)
        except Exception as e:
            log(f"   edgerec at {n} feeds failed: {e}")
            return None
        results.append(r)
        return r

    if ladder:
        top = scale_run(ladder[-1])
        if top is None or fell_over(top):
            for n in ladder[:-1]:
                r = scale_run(n)
                if r is None or fell_over(r):
                    break
    t_micro = time.time()
    micro = micro_benchmarks(args) if args.micro else []
    phases = {"setup": args.setup_s, "load": t_micro - t_load, "micro": time.time() - t_micro}
    report(results, micro, args, args.out, started, phases)
    if not [r for r in results if r["system"] == "edgerec" and r["frames_lost"] == 0]:
        log("edgerec lost frames at every N")
        sys.exit(1)
    if args.strict:
        bad = [f"{r['system']} at {r['feeds']}" for r in results
               if base_system(r["system"]) in (Edgerec.name,) + INGESTS
               and (r["frames_lost"] or r["feeds_failed"])]
        ran = {base_system(r["system"]) for r in results}
        ours = (Edgerec.name, Floor.name, FloorNoSync.name) + INGESTS
        missing = [s for s in systems if base_system(s) in ours and base_system(s) not in ran]
        if bad or missing:
            log("--strict: " + "; ".join([f"frames lost by {b}" for b in bad]
                                         + [f"{m} did not run" for m in missing]))
            sys.exit(1)


if __name__ == "__main__":
    main()
