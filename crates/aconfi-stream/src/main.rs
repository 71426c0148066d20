//! `aconfi-stream`: the live-streaming worker of A-Confi.
//!
//! The server spawns one per live meeting, with stdin and stdout piped, and
//! sends it plain RTP over loopback UDP. The worker composes the video into
//! 1280x720 at 30 fps with names, mixes the audio, encodes H.264 + AAC and
//! publishes FLV to an RTMP or RTMPS ingest. See `README.md` beside this
//! crate's `Cargo.toml` for the control protocol.
//!
//! The ingest URL holds the stream key, so it comes on stdin (argv is
//! visible to every local user) and nothing the worker writes may contain
//! it: GStreamer's logging is switched off before it starts, and our own
//! output is fixed texts and fixed JSON events.

#![forbid(unsafe_code)]

mod check;
mod layout;
mod pin;
mod pipeline;
mod protocol;
mod rtp;
mod worker;

use gstreamer as gst;
use gstreamer::glib;
use protocol::{read_line, Command, Emitter, Line, Reason, State};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use worker::{log, Exit, Worker};

const USAGE: &str = "usage: aconfi-stream [--check | --version]
  (no arguments)  run as a streaming worker: JSON-lines commands on stdin, events on stdout
  --check         print `ok` if this machine can stream, or what is missing
  --version       print the version";

/// Set to `1` by tests only: accept any TLS certificate from an `rtmps://`
/// ingest (the test ingest has a self-signed one).
const INSECURE_TLS_ENV: &str = "ACONFI_STREAM_INSECURE_TLS";

/// A registry path that can never be written: `/dev/null` is not a
/// directory. GStreamer then scans the plugins in its helper process at each
/// start (about half a second here with a warm disk cache) instead of writing
/// a cache file into the home directory.
const REGISTRY: &str = "/dev/null/aconfi-stream-registry.bin";

fn main() -> ExitCode {
    // Not `env::args()`, which panics on an argument that is not UTF-8.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // Before any thread exists: changing the environment later is unsound.
    quiet_environment();
    let pin = match pin::Pin::bind().and_then(|pin| pin.proxy_url().map(|url| (pin, url))) {
        Ok((pin, url)) => {
            route_gio_through(&url);
            pin
        }
        Err(_) => {
            println!("could not open a loopback port for the ingest connection");
            return ExitCode::FAILURE;
        }
    };
    match args.iter().map(|a| a.to_str().unwrap_or("\u{fffd}")).collect::<Vec<_>>().as_slice() {
        [] => run(pin),
        ["--check"] => {
            silence_logging();
            match check::check().and_then(|()| pin::self_test(pin)) {
                Ok(()) => {
                    println!("ok");
                    ExitCode::SUCCESS
                }
                Err(reason) => {
                    println!("{reason}");
                    ExitCode::FAILURE
                }
            }
        }
        ["--version" | "-V"] => {
            println!("aconfi-stream {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        ["--help" | "-h"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Removes every variable that makes GStreamer or GLib print, trace or dump
/// (their output can contain the ingest URL), and points the registry at a
/// path that is never written.
fn quiet_environment() {
    // Where plugins are found stays under the user's control.
    const KEEP: &[&str] = &[
        "GST_PLUGIN_PATH",
        "GST_PLUGIN_PATH_1_0",
        "GST_PLUGIN_SYSTEM_PATH",
        "GST_PLUGIN_SYSTEM_PATH_1_0",
        "GST_PLUGIN_SCANNER",
        "GST_PLUGIN_SCANNER_1_0",
    ];
    const DROP: &[&str] =
        &["G_MESSAGES_DEBUG", "G_DEBUG", "G_TLS_GNUTLS_DEBUG", "GNUTLS_DEBUG_LEVEL", "GIO_USE_TLS_DEBUG", "ORC_DEBUG"];
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if (name.starts_with("GST_") && !KEEP.contains(&name)) || DROP.contains(&name) {
            std::env::remove_var(name);
        }
    }
    std::env::set_var("GST_REGISTRY", REGISTRY);
    // GIO's proxy lookup for the RTMP connection reads GSettings, whose
    // default backend (dconf) creates ~/.cache/dconf/user: keep settings in
    // memory (the defaults: no desktop proxy).
    std::env::set_var("GSETTINGS_BACKEND", "memory");
}

/// Makes GIO (and so `rtmp2sink`) connect through our proxy for every
/// host: its proxy resolver (glib-networking's libproxy module) reads these
/// variables. Anything that would exempt a host goes.
fn route_gio_through(proxy: &str) {
    for name in ["no_proxy", "NO_PROXY"] {
        std::env::remove_var(name);
    }
    for name in ["http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        std::env::set_var(name, proxy);
    }
    std::env::set_var("GIO_USE_PROXY_RESOLVER", "libproxy");
}

/// Switches off GStreamer's logging (which would print the URL at debug
/// levels) and replaces GLib's with fixed texts. Must run before `gst::init`
/// for the default GStreamer log function never to be installed.
fn silence_logging() {
    gst::log::remove_default_log_function();
    glib::log_set_default_handler(|_, level, _| {
        if matches!(level, glib::LogLevel::Error | glib::LogLevel::Critical) {
            log("a library reported an internal error (details withheld)");
        }
    });
    glib::log_set_writer_func(|level, _| {
        if matches!(level, glib::LogLevel::Error | glib::LogLevel::Critical) {
            log("a library reported an internal error (details withheld)");
        }
        glib::LogWriterOutput::Handled
    });
}

fn run(pin: pin::Pin) -> ExitCode {
    silence_logging();
    let emitter = Arc::new(Emitter::new(Box::new(std::io::stdout())));

    // Stdin is read on its own thread so the controller can wait on commands
    // and on the pipeline at once. Dropping the sender at end of input is
    // how the controller learns of it.
    let (tx, rx) = mpsc::channel::<Line>();
    let reader = std::thread::Builder::new().name("stdin".into()).spawn(move || {
        let mut stdin = std::io::stdin().lock();
        while let Some(line) = read_line(&mut stdin) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    if reader.is_err() {
        log("could not start the stdin reader");
        return ExitCode::FAILURE;
    }

    // Initialised before `start` arrives: the plugin scan overlaps with the
    // server's own setup.
    if gst::init().is_err() || !check::version_ok() {
        emitter.state(State::Failed, Some(Reason::PipelineFailed));
        return ExitCode::FAILURE;
    }

    // Wait for `start`; `sources` may come first and is kept.
    let mut sources = Vec::new();
    let (url, connect, peer) = loop {
        match rx.recv() {
            Ok(Line::Text(text)) => match Command::parse(&text) {
                Ok(Command::Start { url, connect, peer }) => break (url, connect, peer),
                Ok(Command::Sources { sources: s }) => sources = protocol::validate_sources(s),
                Ok(Command::Stop) => return ExitCode::SUCCESS,
                Err(_) => log("ignored a malformed control line"),
            },
            Ok(Line::Bad) => log("ignored an oversized or non-UTF-8 control line"),
            // End of input before any start: nothing to stop.
            Err(_) => return ExitCode::SUCCESS,
        }
    };

    if !peer.ip().is_loopback() {
        emitter.state(State::Failed, Some(Reason::BadPeer));
        return ExitCode::FAILURE;
    }
    // Connections go to the address the server checked, and only for the
    // URL's own host and port.
    let Some(target) = pin::Target::of(&url, connect) else {
        emitter.state(State::Failed, Some(Reason::BadUrl));
        return ExitCode::FAILURE;
    };
    pin.allow(target);
    if pin.spawn().is_err() {
        emitter.state(State::Failed, Some(Reason::SocketFailed));
        return ExitCode::FAILURE;
    }
    let socket = match rtp::open(peer) {
        Ok(socket) => socket,
        Err(_) => {
            emitter.state(State::Failed, Some(Reason::SocketFailed));
            return ExitCode::FAILURE;
        }
    };
    let port = match socket.local_addr() {
        Ok(addr) => addr.port(),
        Err(_) => {
            emitter.state(State::Failed, Some(Reason::SocketFailed));
            return ExitCode::FAILURE;
        }
    };
    let routes = Arc::new(RwLock::new(Default::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let Ok(rtp_thread) = rtp::spawn_reader(socket, routes.clone(), emitter.clone(), stop.clone()) else {
        emitter.state(State::Failed, Some(Reason::SocketFailed));
        return ExitCode::FAILURE;
    };
    emitter.ready(port);

    let insecure_tls = std::env::var(INSECURE_TLS_ENV).is_ok_and(|v| v == "1");
    let exit = Worker::new(emitter, routes, url, insecure_tls, sources).run(rx);

    stop.store(true, Ordering::Relaxed);
    let _ = rtp_thread.join();
    match exit {
        Exit::Stopped => ExitCode::SUCCESS,
        Exit::Failed => ExitCode::FAILURE,
    }
}
