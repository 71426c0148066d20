//! A live stream cannot make the server connect into its own network: an
//! anonymous moderator's `stream_start` towards loopback — written as an
//! address, as a name, as IPv4 inside IPv6, as a bare number — is refused
//! with its reason, and a listener there sees no connection at all. With
//! the operator's `--stream-allow-private` the same stream does connect,
//! which shows the listener would have seen one. The real worker
//! (`aconfi-stream`, built beside these tests) runs in every case.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use aconfi_core::protocol::PROTOCOL_VERSION;
use aconfi_core::{ClientMsg, ServerMsg, StreamStatus, StreamUrl};
use common::{send, until, Ws};

/// The worker the workspace build put beside this test binary.
fn worker() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    let worker = dir.join("aconfi-stream");
    assert!(worker.is_file(), "build the worker first (cargo build --workspace): {} is missing", worker.display());
    worker
}

async fn moderator(server: &aconfi_server::Server, room: &str) -> Ws {
    let mut ws = common::ws(server).await;
    let join = ClientMsg::Join {
        version: PROTOCOL_VERSION,
        room: room.into(),
        name: None,
        audio_muted: true,
        video_muted: true,
        password: None,
        e2ee: false,
    };
    send(&mut ws, &join).await;
    until(&mut ws, |m| match m {
        ServerMsg::Joined { moderator, stream_unavailable, .. } => {
            assert!(*moderator, "the first in a room moderates");
            assert_eq!(stream_unavailable, &None, "the worker is there and passed its check");
            Some(())
        }
        _ => None,
    })
    .await;
    ws
}

/// Starts a stream to `url` and returns the reason it failed with.
async fn refused(ws: &mut Ws, url: &str) -> String {
    send(ws, &ClientMsg::StreamStart { url: StreamUrl(url.into()) }).await;
    until(ws, |m| match m {
        ServerMsg::StreamState { state: StreamStatus::Failed, reason } => Some(reason.clone().unwrap_or_default()),
        ServerMsg::StreamState { state: StreamStatus::Live, .. } => panic!("{url} went live"),
        _ => None,
    })
    .await
}

fn accepted(listener: &TcpListener) -> bool {
    listener.set_nonblocking(true).unwrap();
    listener.accept().is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_into_the_servers_own_network_are_refused_and_connect_nowhere() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = common::server_with(|c| c.stream_worker = Some(worker())).await;
    let mut ws = moderator(&server, "port-scan").await;
    let literal = [
        format!("rtmp://127.0.0.1:{port}/live/k"),
        format!("rtmp://[::ffff:127.0.0.1]:{port}/live/k"),
        format!("rtmp://user:pw@127.0.0.1:{port}/live/k"),
        "rtmp://169.254.169.254/latest/meta-data".to_string(),
        "rtmps://[fd00::1]/live/k".to_string(),
    ];
    for url in &literal {
        let why = refused(&mut ws, url).await;
        assert!(why.contains("non-public network") && why.contains("--stream-allow-private"), "{url}: {why}");
    }
    let named = [
        format!("rtmp://localhost:{port}/live/k"),
        // getaddrinfo reads a bare number as an IPv4 address: 127.0.0.1.
        format!("rtmp://2130706433:{port}/live/k"),
        format!("rtmps://LocalHost:{port}/live/k"),
    ];
    for url in &named {
        let why = refused(&mut ws, url).await;
        assert!(why.contains("no public address"), "{url}: {why}");
    }
    // A name that does not resolve is told the same as one that resolves
    // privately: nothing to learn about the operator's names.
    assert_eq!(refused(&mut ws, "rtmp://intranet.aconfi.invalid/live/k").await, refused(&mut ws, &named[0]).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!accepted(&listener), "the server's own network saw a connection");
    server.shutdown().await;

    // The operator allows private ingests: the very same stream connects
    // (the worker then waits for an RTMP answer the listener never gives).
    let server = common::server_with(|c| {
        c.stream_worker = Some(worker());
        c.stream_allow_private = true;
    })
    .await;
    let mut ws = moderator(&server, "own-ingest").await;
    send(&mut ws, &ClientMsg::StreamStart { url: StreamUrl(format!("rtmp://localhost:{port}/live/k")) }).await;
    let connected = tokio::time::timeout(Duration::from_secs(20), async {
        while !accepted(&listener) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(connected.is_ok(), "with --stream-allow-private the worker connects");
    server.shutdown().await;
}
