//! `aconfi-load`: simulated participants against A-Confi or Janus, with
//! real WebRTC (str0m) and encoder-shaped media; measures loss, one-way
//! latency, join time, and the server's CPU and memory from /proc.
//!
//! Scenarios: `nxn` (everyone publishes and receives everyone),
//! `fanout` (one publisher, N viewers), and `churn` (a soak: rooms with
//! people joining, leaving and vanishing, garbage on the media port).

#![forbid(unsafe_code)]

mod churn;
mod participant;
mod procstat;
mod report;
mod tls;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aconfi_testpeer::MediaConfig;
use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use participant::{Outcome, Progress, Setup};
use report::RunReport;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    Aconfi,
    Janus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Everyone publishes audio and video and receives everyone else.
    Nxn,
    /// One publisher, `--participants` viewers.
    Fanout,
    /// `--rooms` rooms for `--seconds`: every second each room gains or
    /// loses someone (leaving, or vanishing without a word); garbage
    /// datagrams go to `--garbage-to`. A soak for leaks and panics.
    Churn,
}

/// Load generator for A-Confi (and Janus, for comparison).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Which server speaks at --url.
    #[arg(long, value_enum, default_value = "aconfi")]
    target: Target,
    /// Signaling URL: wss://localhost:8443/ws (A-Confi) or ws://127.0.0.1:8188 (Janus).
    #[arg(long, default_value = "wss://localhost:8443/ws")]
    url: String,
    #[arg(long, value_enum, default_value = "nxn")]
    scenario: Scenario,
    /// Participants (nxn) or viewers (fanout).
    #[arg(long, default_value_t = 4)]
    participants: usize,
    /// Measurement window after everyone receives everything.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds between everyone receiving everything and the window: 1
    /// measures the first seconds of a meeting too (each subscriber's
    /// bandwidth estimate still climbing); more, the meeting settled.
    #[arg(long, default_value_t = 1)]
    settle: u64,
    /// Video bitrate per publisher, kbit/s (of the top layer with
    /// --simulcast).
    #[arg(long, default_value_t = 500)]
    video_kbps: u32,
    /// Publishers send video in three simulcast layers (q, h, f at a tenth,
    /// a third and all of --video-kbps), as the web client does; receivers
    /// report no tile sizes, so they get the top layer.
    #[arg(long)]
    simulcast: bool,
    /// Server process to sample CPU time and memory of.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A-Confi room name.
    #[arg(long, default_value = "load-test-room")]
    room: String,
    /// Janus VideoRoom room number.
    #[arg(long, default_value_t = 1234)]
    janus_room: u64,
    /// Give up if media does not flow everywhere within this many seconds.
    #[arg(long, default_value_t = 60)]
    join_timeout: u64,
    /// Local address the simulated participants send media from (must
    /// reach the server: 127.0.0.1, or the host side of a test namespace).
    #[arg(long, default_value = "127.0.0.1")]
    local_ip: std::net::IpAddr,
    /// Delay between participants joining, ms.
    #[arg(long, default_value_t = 20)]
    stagger_ms: u64,
    /// Rooms kept busy (churn).
    #[arg(long, default_value_t = 20)]
    rooms: usize,
    /// The server's media port, for garbage datagrams (churn).
    #[arg(long)]
    garbage_to: Option<std::net::SocketAddr>,
}

struct Running {
    progress: watch::Receiver<Progress>,
    task: JoinHandle<anyhow::Result<Outcome>>,
}

fn spawn(args: &Args, setup: Setup, reset: &watch::Receiver<u64>, cancel: &CancellationToken) -> Running {
    let (tx, rx) = watch::channel(Progress::default());
    let (reset, cancel) = (reset.clone(), cancel.clone());
    let task = match args.target {
        Target::Aconfi => tokio::spawn(participant::run_aconfi(setup, tx, reset, cancel)),
        Target::Janus => tokio::spawn(participant::run_janus(setup, tx, reset, cancel)),
    };
    Running { progress: rx, task }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One thread: the generator is pinned to one core beside the server.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if args.scenario == Scenario::Churn {
        let report = rt.block_on(run_churn(&args))?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let report = rt.block_on(run(&args))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

async fn run_churn(args: &Args) -> anyhow::Result<churn::ChurnReport> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let epoch = Instant::now();
    let media = MediaConfig { video_bitrate: args.video_kbps * 1000, simulcast: args.simulcast, ..Default::default() };
    let tls = tls::accept_any();
    churn::run(args.rooms, args.seconds, args.garbage_to, args.server_pid, |i, room, publish| Setup {
        url: args.url.clone(),
        room,
        janus_room: args.janus_room,
        publish,
        feeds: vec![],
        epoch,
        media,
        seed: 0x1234_5678 + i as u64,
        tls: tls.clone(),
        local_ip: args.local_ip,
    })
    .await
}

async fn run(args: &Args) -> anyhow::Result<RunReport> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tck = procstat::clk_tck();
    let sample = |pid: Option<u32>| pid.and_then(|p| procstat::sample(p, tck));
    let baseline = sample(args.server_pid);
    let epoch = Instant::now();
    let cancel = CancellationToken::new();
    let (reset_tx, reset_rx) = watch::channel(0u64);
    let media = MediaConfig { video_bitrate: args.video_kbps * 1000, simulcast: args.simulcast, ..Default::default() };
    let setup = |i: usize, publish: bool, feeds: Vec<u64>| Setup {
        url: args.url.clone(),
        room: args.room.clone(),
        janus_room: args.janus_room,
        publish,
        feeds,
        epoch,
        media,
        seed: 0x1234_5678 + i as u64,
        tls: tls::accept_any(),
        local_ip: args.local_ip,
    };

    let n = args.participants.max(1);
    let mut all: Vec<Running> = Vec::new();
    // Tracks each receiving participant must get before measuring.
    let (receivers, want): (std::ops::Range<usize>, usize) = match args.scenario {
        Scenario::Nxn => {
            for i in 0..n {
                all.push(spawn(args, setup(i, true, vec![]), &reset_rx, &cancel));
                tokio::time::sleep(Duration::from_millis(args.stagger_ms)).await;
            }
            (0..n, 2 * (n - 1))
        }
        Scenario::Churn => bail!("churn runs by itself"),
        Scenario::Fanout => {
            let mut p = spawn(args, setup(0, true, vec![]), &reset_rx, &cancel);
            // Janus viewers need the publisher's feed id.
            let feeds = if args.target == Target::Janus {
                let pr = tokio::time::timeout(
                    Duration::from_secs(args.join_timeout),
                    p.progress.wait_for(|p| p.feed.is_some()),
                )
                .await
                .context("the publisher did not publish")??;
                vec![pr.feed.unwrap_or_default()]
            } else {
                vec![]
            };
            all.push(p);
            for i in 1..=n {
                all.push(spawn(args, setup(i, false, feeds.clone()), &reset_rx, &cancel));
                tokio::time::sleep(Duration::from_millis(args.stagger_ms)).await;
            }
            (1..n + 1, 2)
        }
    };

    // Wait until every receiver gets every remote track.
    let deadline = Instant::now() + Duration::from_secs(args.join_timeout);
    loop {
        let ready = receivers.clone().filter(|&i| all[i].progress.borrow().tracks_receiving >= want).count();
        if ready == receivers.len() {
            break;
        }
        if let Some(done) = all.iter().position(|r| r.task.is_finished()) {
            let r = all.remove(done);
            let err = match r.task.await {
                Ok(Err(e)) => e.to_string(),
                Ok(Ok(_)) => "ended early".into(),
                Err(e) => e.to_string(),
            };
            bail!("a participant failed: {err}");
        }
        if Instant::now() > deadline {
            bail!(
                "only {ready} of {} participants receive all {want} tracks after {} s",
                receivers.len(),
                args.join_timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Settle, then measure a window.
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let totals = |all: &[Running]| {
        all.iter().fold((0u64, 0u64), |(p, b), r| {
            let pr = r.progress.borrow();
            (p + pr.packets, b + pr.bytes)
        })
    };
    reset_tx.send_replace(1);
    // Progress is published every 100 ms: wait one period so the
    // start totals and the latency reset line up.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (p0, b0) = totals(&all);
    let cpu0 = sample(args.server_pid);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let (p1, b1) = totals(&all);
    let cpu1 = sample(args.server_pid);
    let window = t0.elapsed();
    cancel.cancel();

    // Each track with its receiver's opening; each publisher's opening.
    let mut tracks = Vec::new();
    let mut opened = std::collections::HashMap::new();
    for r in all {
        match r.task.await {
            Ok(Ok(o)) => {
                if let Some(me) = o.me {
                    opened.insert(me, o.opened);
                }
                tracks.extend(o.tracks.into_iter().map(|t| (o.opened, t)));
            }
            Ok(Err(e)) => bail!("a participant failed: {e}"),
            Err(e) => bail!("a participant panicked: {e}"),
        }
    }
    let stats: Vec<_> = tracks.iter().map(|(_, t)| &t.stats).collect();
    let joins = report::join_from_receiver(&tracks);
    let joins_after_both = report::join_after_both(&tracks, &opened);
    let forwarded = p1.saturating_sub(p0);
    let cpu = cpu0.zip(cpu1).map(|(a, b)| b.cpu_us.saturating_sub(a.cpu_us));
    Ok(RunReport {
        target: format!("{:?}", args.target).to_lowercase(),
        scenario: format!("{:?}", args.scenario).to_lowercase(),
        participants: n,
        tracks: tracks.len(),
        window_s: window.as_secs_f64(),
        forwarded_packets: forwarded,
        forwarded_bytes: b1.saturating_sub(b0),
        loss_percent: report::loss_percent(stats.iter().copied()),
        latency_us: report::latency(stats.iter().copied()),
        join_ms: report::join_times(&joins),
        join_after_both_ms: report::join_times(&joins_after_both),
        cpu_us_per_packet: cpu.filter(|_| forwarded > 0).map(|c| c as f64 / forwarded as f64),
        cpu_percent: cpu.map(|c| c as f64 / window.as_micros() as f64 * 100.0),
        rss_kib: cpu1.map(|s| s.rss_kib),
        rss_kib_per_subscriber: baseline
            .zip(cpu1)
            .map(|(a, b)| b.rss_kib.saturating_sub(a.rss_kib) as f64 / receivers.len() as f64),
        video_layer_frames: args.simulcast.then(|| {
            stats.iter().fold([0; 3], |mut sum, s| {
                for (n, l) in sum.iter_mut().zip(s.layer_frames) {
                    *n += l;
                }
                sum
            })
        }),
    })
}
