//! Server tests against the real binary's code: HTTPS + WebSocket on
//! loopback, media over real UDP, clients built on str0m (aconfi-testpeer).

#![allow(dead_code)]

pub mod redis_server;

/// A child process (the real binary) that is killed when the test ends,
/// passed or failed: a failing test leaves no server running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aconfi_core::{ClientMsg, Kind, ParticipantId, ServerMsg, TrackInfo};
use aconfi_server::{start, Config, Server};
use aconfi_testpeer::{ClientOutput, ClientPeer};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// Sends one signaling message as JSON text.
pub async fn send(ws: &mut Ws, msg: &ClientMsg) {
    ws.send(Message::Text(serde_json::to_string(msg).unwrap().into())).await.unwrap();
}

/// The next server message that `f` picks out (others are skipped), within
/// 10 s; panics if the connection ends first.
pub async fn until<T>(ws: &mut Ws, mut f: impl FnMut(&ServerMsg) -> Option<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if let Some(v) = serde_json::from_str(t.as_str()).ok().as_ref().and_then(&mut f) {
                        return v;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("connection ended: {other:?}"),
            }
        }
    })
    .await
    .expect("an answer within 10 s")
}

/// A server on free loopback ports.
pub async fn server() -> Server {
    server_with(|_| {}).await
}

/// A server on free loopback ports, with some settings changed.
pub async fn server_with(change: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.media_port = 0;
    config.media_bind = Some("127.0.0.1".parse().unwrap());
    change(&mut config);
    start(config).await.expect("server starts")
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket to the server that trusts exactly its generated certificate.
pub async fn ws(server: &Server) -> Ws {
    ws_with_origin(server, None).await.expect("websocket connects")
}

/// Like [`ws`], sending an `Origin` header as a browser would.
pub async fn ws_with_origin(
    server: &Server,
    origin: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let tls = tls_config(server.cert_der.clone());
    let mut req = format!("wss://localhost:{}/ws", server.https_addr.port()).into_client_request()?;
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().expect("valid header value"));
    }
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(req, None, false, Some(Connector::Rustls(tls))).await?;
    Ok(ws)
}

/// A WebSocket to a server on `port` (not started in this process) that
/// trusts exactly the certificate `cert_der`, valid for localhost.
pub async fn ws_at(port: u16, cert_der: Vec<u8>) -> Ws {
    let tls = tls_config(Some(cert_der));
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        format!("wss://localhost:{port}/ws"),
        None,
        false,
        Some(Connector::Rustls(tls)),
    )
    .await
    .expect("websocket connects");
    ws
}

/// Reads until the server closes; returns the close code (and the
/// `error` message's code, if one came first).
pub async fn close_code(ws: &mut Ws) -> (Option<u16>, Option<u16>) {
    let mut error = None;
    let res = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Text(t)) => {
                    if let Ok(ServerMsg::Error { code, .. }) = serde_json::from_str(t.as_str()) {
                        error = Some(code);
                    }
                }
                Ok(Message::Close(Some(f))) => return Some(u16::from(f.code)),
                Ok(Message::Close(None)) => return Some(u16::from(WsCloseCode::Status)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("server closes within 10 s");
    (res, error)
}

/// What a running peer has seen so far.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub id: Option<ParticipantId>,
    pub received: HashMap<(ParticipantId, Kind), u64>,
    pub participants: Vec<ParticipantId>,
    pub tracks: Vec<TrackInfo>,
    pub left: Vec<ParticipantId>,
    pub closed: Option<u16>,
    /// What went wrong on the client's side: a server message it could not
    /// take, a send that failed. A test waiting on it fails with these.
    pub errors: Vec<String>,
}

impl Snapshot {
    pub fn got(&self, from: ParticipantId, kind: Kind) -> u64 {
        self.received.get(&(from, kind)).copied().unwrap_or(0)
    }
}

/// A str0m client peer driven over a real WebSocket and UDP socket in its
/// own task; the test watches its [`Snapshot`].
pub struct RealPeer {
    pub state: watch::Receiver<Snapshot>,
    leave: tokio::sync::mpsc::Sender<()>,
    pub task: tokio::task::JoinHandle<()>,
}

impl RealPeer {
    pub async fn join(server: &Server, room: &str, name: Option<&str>) -> RealPeer {
        Self::join_from(server, room, name, "127.0.0.1".parse().unwrap()).await
    }

    /// Joins with media from a UDP socket on `ip`.
    pub async fn join_from(server: &Server, room: &str, name: Option<&str>, ip: std::net::IpAddr) -> RealPeer {
        let mut ws = ws(server).await;
        let udp = UdpSocket::bind((ip, 0)).await.unwrap();
        let local = udp.local_addr().unwrap();
        let mut peer = ClientPeer::new(room, name, local, Instant::now());
        let (tx, rx) = watch::channel(Snapshot::default());
        let (leave_tx, mut leave_rx) = tokio::sync::mpsc::channel(1);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut snap = Snapshot::default();
            loop {
                flush(&mut peer, &mut ws, &udp, &mut snap.errors).await;
                snap.id = peer.id();
                snap.received = peer.received_counts().clone();
                snap.participants = peer.participants().keys().copied().collect();
                snap.tracks = peer.tracks().cloned().collect();
                tx.send_replace(snap.clone());
                let deadline = tokio::time::Instant::from_std(peer.poll_timeout());
                tokio::select! {
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Text(t))) => {
                            let m: ServerMsg = serde_json::from_str(t.as_str()).expect("server sends valid messages");
                            if let ServerMsg::ParticipantLeft { id } = &m { snap.left.push(*id); }
                            if let Err(e) = peer.handle_server_msg(m, Instant::now()) {
                                snap.errors.push(format!("the client could not take a server message: {e:?}"));
                            }
                        }
                        Some(Ok(Message::Close(f))) => {
                            snap.closed = Some(f.map(|f| u16::from(f.code)).unwrap_or(1005));
                            tx.send_replace(snap.clone());
                            return;
                        }
                        Some(Ok(_)) => {}
                        _ => { snap.closed = Some(1006); tx.send_replace(snap.clone()); return; }
                    },
                    r = udp.recv_from(&mut buf) => if let Ok((n, from)) = r {
                        peer.handle_receive(from, local, &buf[..n], Instant::now()).expect("client takes datagram");
                    },
                    _ = tokio::time::sleep_until(deadline) => {
                        peer.handle_timeout(Instant::now()).expect("client timeout");
                    }
                    _ = leave_rx.recv() => {
                        let m = serde_json::to_string(&aconfi_core::ClientMsg::Leave {}).unwrap();
                        if let Err(e) = ws.send(Message::Text(m.into())).await {
                            snap.errors.push(format!("sending leave failed: {e}"));
                        }
                    }
                }
            }
        });
        RealPeer { state: rx, leave: leave_tx, task }
    }

    /// Waits (event-driven) until the snapshot satisfies `cond`.
    pub async fn wait_for(&mut self, what: &str, cond: impl FnMut(&Snapshot) -> bool) -> Snapshot {
        let mut cond = cond;
        let res =
            tokio::time::timeout(Duration::from_secs(20), self.state.wait_for(|s| !s.errors.is_empty() || cond(s)))
                .await
                .map(|r| r.map(|s| s.clone()));
        match res {
            Ok(Ok(s)) if s.errors.is_empty() => s,
            Ok(Ok(s)) => panic!("while waiting for {what}, the client failed: {:?}", s.errors),
            _ => panic!("timed out waiting for {what}; last: {:?}", self.state.borrow()),
        }
    }

    pub fn id(&self) -> ParticipantId {
        self.state.borrow().id.expect("joined")
    }

    pub async fn leave(&self) {
        let _ = self.leave.send(()).await;
    }
}

async fn flush(peer: &mut ClientPeer, ws: &mut Ws, udp: &UdpSocket, errors: &mut Vec<String>) {
    while let Some(o) = peer.poll_output() {
        match o {
            ClientOutput::Transmit(d) => {
                if let Err(e) = udp.send_to(&d.contents, d.destination).await {
                    errors.push(format!("sending a datagram failed: {e}"));
                }
            }
            ClientOutput::Signal(m) => {
                let text = serde_json::to_string(&m).unwrap();
                if let Err(e) = ws.send(Message::Text(text.into())).await {
                    errors.push(format!("sending {} failed: {e}", m.type_name()));
                }
            }
        }
    }
}

pub fn media_addr(server: &Server) -> SocketAddr {
    server.media_addrs[0]
}

fn tls_config(server_cert: Option<Vec<u8>>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(server_cert.expect("generated cert"))).unwrap();
    Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

static CERT: std::sync::OnceLock<std::sync::Mutex<HashMap<u16, Vec<u8>>>> = std::sync::OnceLock::new();

/// Remembers a server's certificate by port for the plain HTTPS helpers.
pub fn remember_cert(server: &Server) {
    CERT.get_or_init(Default::default)
        .lock()
        .unwrap()
        .insert(server.https_addr.port(), server.cert_der.clone().unwrap());
}

/// A minimal HTTP/1.1 request over TLS; returns (status, headers, body).
pub async fn https_request(port: u16, method: &str, path: &str) -> (u16, HashMap<String, String>, String) {
    https_request_with(port, method, path, "").await
}

/// Like [`https_request`], with extra header lines (each ending in \r\n).
pub async fn https_request_with(
    port: u16,
    method: &str,
    path: &str,
    extra_headers: &str,
) -> (u16, HashMap<String, String>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cert = CERT.get().and_then(|m| m.lock().unwrap().get(&port).cloned());
    let connector = tokio_rustls::TlsConnector::from(tls_config(cert));
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra_headers}\r\n");
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// Like [`https_request`], for a server with a certificate of the test's
/// own making (valid for localhost).
pub async fn https_request_with_cert(
    port: u16,
    cert: &[u8],
    method: &str,
    path: &str,
) -> (u16, HashMap<String, String>, String) {
    CERT.get_or_init(Default::default).lock().unwrap().insert(port, cert.to_vec());
    https_request(port, method, path).await
}

pub async fn https_get(port: u16, path: &str) -> (u16, String) {
    let (s, _, b) = https_request(port, "GET", path).await;
    (s, b)
}

pub async fn https_head(port: u16, path: &str) -> (u16, HashMap<String, String>) {
    let (s, h, _) = https_request(port, "GET", path).await;
    (s, h)
}

/// GET /metrics over plain HTTP: the body.
pub async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{head}");
    body.to_string()
}

/// Sample name → value (the exposition's data lines).
pub fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}
