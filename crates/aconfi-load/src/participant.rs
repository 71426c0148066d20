//! One simulated participant as a task: its sockets, its signaling
//! connection, its client state machine; it reports progress through a
//! watch channel and returns its receive statistics when cancelled.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aconfi_core::{ClientMsg, ServerMsg};
use aconfi_testpeer::janus::{JanusOutput, JanusParticipant, Leg};
use aconfi_testpeer::{ClientOutput, ClientPeer, MediaConfig, MediaPeer};
use anyhow::{anyhow, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::Connector;
use tokio_util::sync::CancellationToken;

use crate::report::TrackResult;

/// Progress a participant reports while running.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Remote tracks that delivered at least one packet.
    pub tracks_receiving: usize,
    /// Packets received so far (all tracks).
    pub packets: u64,
    /// Payload bytes received so far.
    pub bytes: u64,
    /// Janus: our feed id once published.
    pub feed: Option<u64>,
}

/// What a participant hands back.
pub struct Outcome {
    /// Every remote track it received.
    pub tracks: Vec<TrackResult>,
    /// When its signaling connection opened.
    pub opened: Instant,
    /// Its id as others see it as a publisher (A-Confi participant id,
    /// Janus feed id), if it got one.
    pub me: Option<u64>,
}

/// Everything a participant needs.
#[derive(Clone)]
pub struct Setup {
    /// Signaling URL.
    pub url: String,
    /// A-Confi room name.
    pub room: String,
    /// Janus room number.
    pub janus_room: u64,
    /// Publish media (false: viewer).
    pub publish: bool,
    /// Feeds a Janus viewer subscribes to.
    pub feeds: Vec<u64>,
    /// Clock origin shared by all participants.
    pub epoch: Instant,
    /// Media shape.
    pub media: MediaConfig,
    /// Seed for frame-size jitter.
    pub seed: u64,
    /// TLS for wss:// (A-Confi).
    pub tls: Arc<rustls::ClientConfig>,
    /// Local address for media sockets.
    pub local_ip: std::net::IpAddr,
}

const REPORT_EVERY: Duration = Duration::from_millis(100);

async fn udp(ip: std::net::IpAddr) -> anyhow::Result<(UdpSocket, SocketAddr)> {
    let s = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    let a = s.local_addr()?;
    Ok((s, a))
}

/// An A-Confi participant.
pub async fn run_aconfi(
    setup: Setup,
    progress: watch::Sender<Progress>,
    mut reset: watch::Receiver<u64>,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    let (sock, local) = udp(setup.local_ip).await?;
    let req = setup.url.as_str().into_client_request()?;
    let (mut ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(req, None, false, Some(Connector::Rustls(setup.tls.clone())))
            .await
            .context("connecting to A-Confi")?;
    let opened = Instant::now();
    let mut peer =
        ClientPeer::with_media(&setup.room, None, local, opened, setup.epoch, setup.media, setup.publish, setup.seed);
    let mut buf = vec![0u8; 2048];
    let mut tick = tokio::time::interval(REPORT_EVERY);
    loop {
        while let Some(o) = peer.poll_output() {
            match o {
                ClientOutput::Transmit(d) => {
                    let _ = sock.send_to(&d.contents, d.destination).await;
                }
                ClientOutput::Signal(m) => ws.send(Message::Text(serde_json::to_string(&m)?.into())).await?,
            }
        }
        let deadline = tokio::time::Instant::from_std(peer.poll_timeout());
        tokio::select! {
            _ = cancel.cancelled() => {
                // Leave as a client does, then close.
                let _ = ws.send(Message::Text(serde_json::to_string(&ClientMsg::Leave {})?.into())).await;
                let _ = ws.close(None).await;
                break;
            }
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let msg: ServerMsg = serde_json::from_str(t.as_str())?;
                    peer.handle_server_msg(msg, Instant::now())?;
                }
                Some(Ok(Message::Close(f))) => return Err(anyhow!("server closed: {f:?}")),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err(anyhow!("server went away")),
            },
            r = sock.recv_from(&mut buf) => {
                let (n, from) = r?;
                peer.handle_receive(from, local, &buf[..n], Instant::now())?;
            }
            _ = tokio::time::sleep_until(deadline) => peer.handle_timeout(Instant::now())?,
            _ = tick.tick() => { progress.send_replace(progress_of(peer.media(), None)); }
            _ = reset.changed() => peer.media_mut().start_window(),
        }
    }
    let tracks = peer.media().recv_stats().iter().map(|(mid, (_, s))| {
        let publisher = peer.track(*mid).map(|t| t.participant.0);
        (publisher, s)
    });
    Ok(outcome(tracks, opened, peer.id().map(|id| id.0)))
}

/// A Janus VideoRoom participant (publisher + subscriber handles).
pub async fn run_janus(
    setup: Setup,
    progress: watch::Sender<Progress>,
    mut reset: watch::Receiver<u64>,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    let (pub_sock, pub_local) = udp(setup.local_ip).await?;
    let (sub_sock, sub_local) = udp(setup.local_ip).await?;
    let mut req = setup.url.as_str().into_client_request()?;
    req.headers_mut().insert("sec-websocket-protocol", "janus-protocol".parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.context("connecting to Janus")?;
    let opened = Instant::now();
    let publisher = setup.publish.then(|| MediaPeer::new(pub_local, opened, setup.epoch, setup.media, setup.seed));
    let subscriber = MediaPeer::new(sub_local, opened, setup.epoch, setup.media, setup.seed ^ 0x5555);
    let mut p = JanusParticipant::new(setup.janus_room, publisher, subscriber, &setup.feeds);
    let (mut pbuf, mut sbuf) = (vec![0u8; 2048], vec![0u8; 2048]);
    let mut tick = tokio::time::interval(REPORT_EVERY);
    let mut keepalive = tokio::time::interval(Duration::from_secs(20));
    // ACONFI_LOAD_TRACE=1 prints the Janus signaling, for debugging an adapter.
    let trace = std::env::var_os("ACONFI_LOAD_TRACE").is_some();
    loop {
        while let Some(o) = p.poll_output() {
            match o {
                JanusOutput::Ws(text) => {
                    if trace {
                        eprintln!("-> {text}");
                    }
                    ws.send(Message::Text(text.into())).await?
                }
                JanusOutput::Transmit(Leg::Publish, d) => {
                    let _ = pub_sock.send_to(&d.contents, d.destination).await;
                }
                JanusOutput::Transmit(Leg::Subscribe, d) => {
                    let _ = sub_sock.send_to(&d.contents, d.destination).await;
                }
            }
        }
        let deadline = tokio::time::Instant::from_std(p.poll_timeout());
        tokio::select! {
            _ = cancel.cancelled() => break,
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    if trace {
                        eprintln!("<- {}", t.as_str());
                    }
                    p.handle_ws(t.as_str(), Instant::now())?
                }
                Some(Ok(Message::Close(f))) => return Err(anyhow!("janus closed: {f:?}")),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err(anyhow!("janus went away")),
            },
            r = pub_sock.recv_from(&mut pbuf) => {
                let (n, from) = r?;
                p.handle_receive(Leg::Publish, from, pub_local, &pbuf[..n], Instant::now())?;
            }
            r = sub_sock.recv_from(&mut sbuf) => {
                let (n, from) = r?;
                p.handle_receive(Leg::Subscribe, from, sub_local, &sbuf[..n], Instant::now())?;
            }
            _ = tokio::time::sleep_until(deadline) => p.handle_timeout(Instant::now())?,
            _ = tick.tick() => {
                let feed = p.feed();
                progress.send_replace(progress_of(p.subscriber_mut(), feed));
            }
            _ = keepalive.tick() => p.keepalive(),
            _ = reset.changed() => p.subscriber_mut().start_window(),
        }
    }
    let feed = p.feed();
    Ok(outcome(p.recv_stats().map(|(feed, _, s)| (Some(feed), s)), opened, feed))
}

fn progress_of(media: &MediaPeer, feed: Option<u64>) -> Progress {
    let mut pr = Progress { feed, ..Default::default() };
    for (_, st) in media.recv_stats().values() {
        pr.tracks_receiving += usize::from(st.packets > 0);
        pr.packets += st.packets;
        pr.bytes += st.bytes;
    }
    pr
}

/// `stats`: each received track with its publisher, if known.
fn outcome<'a>(
    stats: impl Iterator<Item = (Option<u64>, &'a aconfi_testpeer::TrackStats)>,
    opened: Instant,
    me: Option<u64>,
) -> Outcome {
    Outcome {
        tracks: stats
            .filter(|(_, s)| s.packets > 0 || s.expected() > 0)
            .map(|(publisher, s)| TrackResult { stats: s.clone(), publisher })
            .collect(),
        opened,
        me,
    }
}
