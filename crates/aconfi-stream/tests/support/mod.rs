//! Helpers for the ingest tests: a real nginx RTMP/RTMPS ingest with HTTP
//! hooks, the worker under test, RTP senders made of real encoders, and
//! ffprobe/ffmpeg to read back what was published.
//!
//! Waiting is always for something to happen (a line, a hook call, a port
//! that answers, a process that exits), with a bound, never a fixed sleep.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Tests share two cores: the ones that encode run one at a time (under
/// `cargo test`, through this lock; under cargo nextest, whose tests are
/// each a process, through the `encoders` test group in .config/nextest.toml).
static CPU: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    CPU.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fails (never skips) when a tool the tests need is missing.
pub fn require_tools() {
    for (tool, arg, package) in [
        ("nginx", "-v", "nginx-light libnginx-mod-rtmp libnginx-mod-stream"),
        ("openssl", "version", "openssl"),
        ("ffprobe", "-version", "ffmpeg"),
        ("ffmpeg", "-version", "ffmpeg"),
        ("gst-launch-1.0", "--version", "gstreamer1.0-tools"),
    ] {
        let ok = Command::new(tool).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
        assert!(ok, "`{tool}` is missing: the streaming tests need it (Debian: apt-get install {package})");
    }
    for module in ["ngx_rtmp_module", "ngx_stream_module"] {
        let path = format!("/usr/lib/nginx/modules/{module}.so");
        assert!(
            std::path::Path::new(&path).exists(),
            "{path} is missing (Debian: apt-get install libnginx-mod-rtmp libnginx-mod-stream)"
        );
    }
}

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A stream key no other test uses, random enough to never occur by chance
/// in any output.
pub fn unique_key() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("key{:x}x{:x}x{}", nanos, std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Calls `f` until it returns `Some`, at most until `timeout`.
pub fn poll_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `on_publish` / `on_publish_done` callbacks of the ingest.
pub struct Hooks {
    pub url: String,
    calls: Receiver<(String, String)>,
}

impl Hooks {
    pub fn start() -> Hooks {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, calls) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if let Some(call) = read_hook(stream) {
                    if tx.send(call).is_err() {
                        return;
                    }
                }
            }
        });
        Hooks { url, calls }
    }

    /// Waits for the next call `call` (`publish` or `publish_done`) for `key`.
    pub fn wait(&self, call: &str, key: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.calls.recv_timeout(left) {
                Ok((c, name)) if c == call && name == key => return,
                Ok(_) => continue,
                Err(_) => panic!("no {call} hook for the stream within {timeout:?}"),
            }
        }
    }
}

/// Reads one form POST from nginx-rtmp, answers 200, returns (call, name).
fn read_hook(mut stream: TcpStream) -> Option<(String, String)> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let body = String::from_utf8_lossy(&body);
    let field = |name: &str| {
        body.split('&').find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('='))).map(str::to_string)
    };
    Some((field("call")?, field("name")?))
}

/// nginx with the RTMP module (plain) and a TLS proxy in front (RTMPS).
pub struct Ingest {
    pub rtmp_port: u16,
    pub rtmps_port: u16,
    dir: PathBuf,
    hook: Option<String>,
    child: Option<Child>,
}

impl Ingest {
    pub fn start(hooks: Option<&Hooks>) -> Ingest {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "aconfi-ingest-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let mut ingest = Ingest {
            rtmp_port: free_tcp_port(),
            rtmps_port: free_tcp_port(),
            dir,
            hook: hooks.map(|h| h.url.clone()),
            child: None,
        };
        ingest.restart();
        ingest
    }

    /// (Re)starts nginx on the same ports and waits until both answer.
    pub fn restart(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/ingest/nginx.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(script).arg(&self.dir).arg(self.rtmp_port.to_string()).arg(self.rtmps_port.to_string());
        if let Some(hook) = &self.hook {
            cmd.arg(hook);
        }
        let mut child = cmd.stdin(Stdio::null()).spawn().expect("running tests/ingest/nginx.sh");
        let ports = [self.rtmp_port, self.rtmps_port];
        poll_until(Duration::from_secs(15), "nginx to listen", || {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                panic!("nginx exited with {status}: {log}");
            }
            ports.iter().all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok()).then_some(())
        });
        self.child = Some(child);
    }

    /// Kills nginx outright (SIGKILL: no goodbye to the publisher).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp_port)
    }

    pub fn rtmps_url(&self, key: &str) -> String {
        format!("rtmps://127.0.0.1:{}/live/{key}", self.rtmps_port)
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Lines of one output stream of the worker, kept for later checks.
#[derive(Default)]
struct Lines {
    lines: Mutex<(Vec<String>, bool)>,
    more: Condvar,
}

impl Lines {
    fn collect(self: &Arc<Self>, input: impl Read + Send + 'static) {
        let lines = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(input).lines() {
                let Ok(line) = line else { break };
                lines.lines.lock().unwrap().0.push(line);
                lines.more.notify_all();
            }
            lines.lines.lock().unwrap().1 = true;
            lines.more.notify_all();
        });
    }

    /// Index of the first line at or after `from` that satisfies `pred`.
    fn wait(&self, from: usize, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> usize {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lines.lock().unwrap();
        let mut next = from;
        loop {
            while next < guard.0.len() {
                if pred(&guard.0[next]) {
                    return next;
                }
                next += 1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero() && !guard.1, "no {what} within {timeout:?}; got: {:?}", guard.0);
            guard = self.more.wait_timeout(guard, left).unwrap().0;
        }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().0.join("\n")
    }
}

/// The `ip:port` an `rtmp(s)://ip:port/...` URL names.
pub fn literal_addr(url: &str) -> std::net::SocketAddr {
    let rest = url.split_once("://").expect("a URL").1;
    rest.split('/').next().unwrap().parse().expect("the URL names an address and port")
}

/// The worker under test, with GStreamer and Rust debug logging asked for in
/// its environment (it must ignore that).
pub struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Lines>,
    stderr: Arc<Lines>,
    cursor: usize,
    pub port: u16,
    pub peer_port: u16,
    key: String,
}

impl Worker {
    /// Starts the worker, sends `start` and waits for `ready`. The URL's
    /// host is an address of the test ingest's, which is also where the
    /// server would have told the worker to connect.
    pub fn start(url: &str, key: &str, extra_env: &[(&str, &str)]) -> Worker {
        Worker::start_pinned(url, literal_addr(url), key, extra_env)
    }

    /// Starts the worker for `url`, to connect to `connect` alone (the
    /// address the server checked), and waits for `ready`.
    pub fn start_pinned(url: &str, connect: std::net::SocketAddr, key: &str, extra_env: &[(&str, &str)]) -> Worker {
        let mut worker = Worker::spawn(extra_env, key);
        let peer_port = free_udp_port();
        worker.send(&serde_json::json!({
            "cmd": "start", "url": url, "connect": connect, "peer": format!("127.0.0.1:{peer_port}")
        }));
        let ready = worker.wait_event(Duration::from_secs(20), "ready", |v| v["ev"] == "ready");
        worker.port = ready["port"].as_u64().unwrap() as u16;
        worker.peer_port = peer_port;
        worker
    }

    pub fn spawn(extra_env: &[(&str, &str)], key: &str) -> Worker {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aconfi-stream"));
        cmd.env("GST_DEBUG", "*:6")
            .env("RUST_LOG", "debug")
            .env("G_MESSAGES_DEBUG", "all")
            .env_remove("ACONFI_STREAM_INSECURE_TLS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawning aconfi-stream");
        let (stdout, stderr) = (Arc::new(Lines::default()), Arc::new(Lines::default()));
        stdout.collect(child.stdout.take().unwrap());
        stderr.collect(child.stderr.take().unwrap());
        let stdin = child.stdin.take();
        Worker { child, stdin, stdout, stderr, cursor: 0, port: 0, peer_port: 0, key: key.to_string() }
    }

    pub fn send(&mut self, v: &Value) {
        self.send_raw(format!("{v}\n").as_bytes());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the next event (after the previous one waited for) that
    /// satisfies `pred`.
    pub fn wait_event(&mut self, timeout: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let i =
            self.stdout.wait(self.cursor, timeout, what, |l| serde_json::from_str(l).is_ok_and(|v: Value| pred(&v)));
        self.cursor = i + 1;
        let lines = self.stdout.lines.lock().unwrap();
        serde_json::from_str(&lines.0[i]).unwrap()
    }

    pub fn wait_state(&mut self, state: &str, timeout: Duration) -> Value {
        self.wait_event(timeout, &format!("state {state}"), |v| v["ev"] == "state" && v["state"] == state)
    }

    /// Waits for a line on stderr containing `text`.
    pub fn wait_stderr(&self, text: &str, timeout: Duration) {
        self.stderr.wait(0, timeout, text, |l| l.contains(text));
    }

    /// All events so far.
    pub fn events(&self) -> Vec<Value> {
        self.stdout.lines.lock().unwrap().0.iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = &mut self.child;
        poll_until(timeout, "the worker to exit", || child.try_wait().unwrap())
    }

    /// Everything the worker wrote, stdout then stderr.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout.text(), self.stderr.text())
    }

    /// The stream key must be in nothing the worker wrote.
    pub fn assert_key_not_written(&self) {
        let out = self.output();
        assert!(!out.contains(&self.key), "the stream key leaked into the worker's output:\n{out}");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            self.assert_key_not_written();
        }
    }
}

/// A participant: gst-launch-1.0 with real encoders, sending RTP from the
/// worker's expected peer address.
pub struct Sender(Child);

impl Sender {
    /// A solid-colour 640x480 30 fps VP8 camera (`argb` like 0xffff0000),
    /// plus, if `audio_ssrc` is given, a 440 Hz sine in Opus.
    pub fn start(worker: &Worker, video_ssrc: u32, argb: u32, audio_ssrc: Option<u32>) -> Sender {
        let sink = format!(
            "udpsink host=127.0.0.1 port={} bind-address=127.0.0.1 bind-port={} sync=false",
            worker.port, worker.peer_port
        );
        // keyframe-max-dist=30 stands in for the server, which would answer
        // the worker's keyframe requests with PLIs.
        let mut desc = format!(
            "videotestsrc is-live=true pattern=solid-color foreground-color={argb:#010x} \
             ! video/x-raw,width=640,height=480,framerate=30/1 \
             ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 ssrc={video_ssrc} ! {sink}"
        );
        if let Some(ssrc) = audio_ssrc {
            desc += &format!(
                " audiotestsrc is-live=true wave=sine freq=440 ! opusenc ! rtpopuspay pt=111 ssrc={ssrc} ! {sink}"
            );
        }
        Sender::launch(&desc)
    }

    pub fn launch(desc: &str) -> Sender {
        let child = Command::new("gst-launch-1.0")
            .arg("-q")
            .args(desc.split_whitespace())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning gst-launch-1.0");
        Sender(child)
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn video_source(ssrc: u32, name: &str) -> Value {
    serde_json::json!({"ssrc": ssrc, "person": ssrc, "name": name, "kind": "camera", "codec": "VP8", "pt": 96, "clock_rate": 90000})
}

pub fn audio_source(ssrc: u32, name: &str) -> Value {
    serde_json::json!({"ssrc": ssrc, "person": ssrc, "name": name, "kind": "audio", "codec": "opus", "pt": 111, "clock_rate": 48000})
}

pub fn sources(list: &[Value]) -> Value {
    serde_json::json!({"cmd": "sources", "sources": list})
}

/// Runs a command to completion within `timeout`; returns its stdout and
/// stderr.
pub fn run(cmd: &mut Command, timeout: Duration) -> (Vec<u8>, String) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawning");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.wait();
    (out_thread.join().unwrap(), err_thread.join().unwrap())
}

/// ffprobe's JSON for `url`, reading `seconds` of the stream.
pub fn probe(url: &str, seconds: u32) -> Value {
    let (out, err) = run(
        Command::new("ffprobe").args(["-v", "error", "-of", "json", "-read_intervals"]).arg(format!("%+{seconds}")).args([
            "-show_entries",
            "stream=index,codec_type,codec_name,width,height,avg_frame_rate,sample_rate:packet=stream_index,pts_time,flags",
            url,
        ]),
        Duration::from_secs(seconds as u64 + 20),
    );
    serde_json::from_slice(&out).unwrap_or_else(|_| panic!("ffprobe gave no JSON for the stream: {err}"))
}

/// One decoded frame of the published stream, scaled to 64x36, as RGB.
pub fn grab_frame(url: &str) -> Vec<u8> {
    let (out, err) = run(
        Command::new("ffmpeg")
            .args(["-v", "error", "-i", url, "-frames:v", "1", "-vf", "scale=64:36"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]),
        Duration::from_secs(20),
    );
    assert_eq!(out.len(), 64 * 36 * 3, "no frame from the stream: {err}");
    out
}

/// Pixels that are clearly red and clearly blue.
pub fn count_colours(rgb: &[u8]) -> (usize, usize) {
    let px = rgb.chunks_exact(3);
    let red = px.clone().filter(|p| p[0] > 180 && p[1] < 80 && p[2] < 80).count();
    let blue = px.filter(|p| p[2] > 180 && p[0] < 80 && p[1] < 80).count();
    (red, blue)
}

/// Mean volume in dB of `seconds` of the stream's audio.
pub fn mean_volume(url: &str, seconds: u32) -> f64 {
    let (_, err) = run(
        Command::new("ffmpeg").args(["-v", "info", "-nostats", "-i", url, "-t"]).arg(seconds.to_string()).args([
            "-vn",
            "-af",
            "volumedetect",
            "-f",
            "null",
            "-",
        ]),
        Duration::from_secs(seconds as u64 + 20),
    );
    let line = err.lines().find(|l| l.contains("mean_volume:")).unwrap_or_else(|| panic!("no volumedetect: {err}"));
    let value = line.split("mean_volume:").nth(1).unwrap().trim().trim_end_matches("dB").trim();
    value.parse().unwrap()
}
