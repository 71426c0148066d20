//! `aconfi-tap`: a silent participant that prints what the server forwards
//! to it, as JSON lines on stdout: every whole media frame (with its
//! sender and track), every chat message and every key exchange message,
//! exactly as received. The end-to-end encryption tests use it as the
//! server's view of a meeting: what an operator could capture.
//!
//! ```text
//! {"joined":{"you":4}}
//! {"frame":{"participant":1,"kind":"video","screen":false,"data":"<hex>"}}
//! {"message":{"type":"chat",...}}            (chat, e2ee, participant_left)
//! {"closed":"<reason>"}
//! ```
//! It runs until `--seconds` pass, stdin closes, or the server closes it.
//! It accepts any TLS certificate: a test tool, never for real use.

#![forbid(unsafe_code)]

#[path = "../tls.rs"]
mod tls;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aconfi_core::{Kind, ServerMsg};
use aconfi_testpeer::{ClientOutput, ClientPeer};
use anyhow::Context;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::Connector;

/// A silent participant that prints what the server forwards to it.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Signaling URL of the A-Confi server.
    #[arg(long, default_value = "wss://localhost:8443/ws")]
    url: String,
    /// Room to join.
    #[arg(long)]
    room: String,
    /// Join as a client whose link has an end-to-end key (it has none).
    #[arg(long)]
    e2ee: bool,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Local address to receive media on.
    #[arg(long, default_value = "127.0.0.1")]
    local_ip: std::net::IpAddr,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sock = UdpSocket::bind(SocketAddr::new(args.local_ip, 0)).await?;
    let local = sock.local_addr()?;
    let req = args.url.as_str().into_client_request()?;
    let (mut ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(req, None, false, Some(Connector::Rustls(tls::accept_any())))
            .await
            .context("connecting to A-Confi")?;
    let mut peer = ClientPeer::new_viewer(&args.room, local, Instant::now());
    peer.set_e2ee(args.e2ee);
    peer.enable_capture();
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 2048];
    let mut stdin = tokio::io::stdin();
    let mut stdin_buf = [0u8; 64];
    let end = tokio::time::sleep(Duration::from_secs(args.seconds));
    tokio::pin!(end);
    let closed = loop {
        while let Some(o) = peer.poll_output() {
            match o {
                ClientOutput::Transmit(d) => {
                    let _ = sock.send_to(&d.contents, d.destination).await;
                }
                ClientOutput::Signal(m) => ws.send(Message::Text(serde_json::to_string(&m)?.into())).await?,
            }
        }
        while let Some((track, data)) = peer.poll_frame() {
            let kind = if track.kind == Kind::Video { "video" } else { "audio" };
            let line = json!({ "frame": {
                "participant": track.participant.0, "kind": kind, "screen": track.screen, "data": hex(&data),
            }});
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        let deadline = tokio::time::Instant::from_std(peer.poll_timeout());
        tokio::select! {
            _ = &mut end => break "time".to_string(),
            n = stdin.read(&mut stdin_buf) => if matches!(n, Ok(0) | Err(_)) { break "stdin closed".to_string() },
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let msg: ServerMsg = serde_json::from_str(t.as_str())?;
                    match &msg {
                        ServerMsg::Joined { you, .. } => writeln!(out, "{}", json!({ "joined": { "you": you.0 } }))?,
                        ServerMsg::Chat { .. } | ServerMsg::E2ee { .. } | ServerMsg::ParticipantLeft { .. } => {
                            writeln!(out, "{}", json!({ "message": msg }))?;
                        }
                        _ => {}
                    }
                    if let Err(e) = peer.handle_server_msg(msg, Instant::now()) {
                        break e.to_string();
                    }
                }
                Some(Ok(Message::Close(f))) => break format!("server closed: {f:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "server went away".to_string(),
            },
            r = sock.recv_from(&mut buf) => {
                let (n, from) = r?;
                peer.handle_receive(from, local, &buf[..n], Instant::now())?;
            }
            _ = tokio::time::sleep_until(deadline) => peer.handle_timeout(Instant::now())?,
        }
    };
    writeln!(out, "{}", json!({ "closed": closed }))?;
    let _ = ws.close(None).await;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
