//! The same synthetic participant, speaking Janus's VideoRoom API instead
//! of ours, so the benchmark feeds both servers identical media. Sans-IO:
//! JSON messages for Janus's WebSocket transport out, events in.
//!
//! A Janus participant has two peer connections: a publisher handle for
//! what it sends and a subscriber handle (multistream) for what it
//! receives. It subscribes by itself to every feed it learns of.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use aconfi_core::str0m::media::Mid;
use aconfi_core::{Datagram, Kind};
use serde_json::{json, Value};

use crate::peer::MediaPeer;
use crate::ClientError;

/// Which of the two peer connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The publisher handle's connection.
    Publish,
    /// The subscriber handle's connection.
    Subscribe,
}

/// What the shell must do.
#[derive(Debug)]
pub enum JanusOutput {
    /// Send this JSON on the Janus WebSocket.
    Ws(String),
    /// Send a datagram from the given leg's socket.
    Transmit(Leg, Datagram),
}

/// A VideoRoom participant.
pub struct JanusParticipant {
    room: u64,
    publisher: Option<MediaPeer>,
    subscriber: MediaPeer,
    session: Option<u64>,
    pub_handle: Option<u64>,
    sub_handle: Option<u64>,
    /// Our feed id, once published.
    feed: Option<u64>,
    known_feeds: HashSet<u64>,
    subscribed: HashSet<u64>,
    /// A subscription request is out and its offer not yet answered.
    sub_busy: bool,
    /// Subscriber m-line → (feed, kind).
    streams: HashMap<Mid, (u64, Kind)>,
    out: VecDeque<String>,
    next_tx: u64,
    /// Transactions awaiting a synchronous `success`.
    awaiting: HashMap<String, &'static str>,
}

impl JanusParticipant {
    /// A participant that publishes (`publisher` is Some) and subscribes to
    /// every other feed, or a viewer (`publisher` None) of `feeds`.
    pub fn new(room: u64, publisher: Option<MediaPeer>, subscriber: MediaPeer, feeds: &[u64]) -> Self {
        let mut p = JanusParticipant {
            room,
            publisher,
            subscriber,
            session: None,
            pub_handle: None,
            sub_handle: None,
            feed: None,
            known_feeds: feeds.iter().copied().collect(),
            subscribed: HashSet::new(),
            sub_busy: false,
            streams: HashMap::new(),
            out: VecDeque::new(),
            next_tx: 1,
            awaiting: HashMap::new(),
        };
        p.send(json!({"janus": "create"}), "create");
        p
    }

    /// Our feed id once the publisher joined.
    pub fn feed(&self) -> Option<u64> {
        self.feed
    }

    /// Receive statistics per subscribed m-line, with the feed and kind.
    pub fn recv_stats(&self) -> impl Iterator<Item = (u64, Kind, &crate::TrackStats)> {
        self.subscriber
            .recv_stats()
            .iter()
            .filter_map(|(mid, (_, st))| self.streams.get(mid).map(|(feed, kind)| (*feed, *kind, st)))
    }

    /// The subscriber leg (statistics reset, etc.).
    pub fn subscriber_mut(&mut self) -> &mut MediaPeer {
        &mut self.subscriber
    }

    /// A keep-alive for the session (Janus drops idle sessions).
    pub fn keepalive(&mut self) {
        if let Some(s) = self.session {
            self.send(json!({"janus": "keepalive", "session_id": s}), "keepalive");
        }
    }

    fn send(&mut self, mut msg: Value, what: &'static str) {
        let tx = format!("t{}", self.next_tx);
        self.next_tx += 1;
        msg["transaction"] = Value::String(tx.clone());
        if let Some(s) = self.session {
            msg["session_id"] = json!(s);
        }
        self.awaiting.insert(tx, what);
        self.out.push_back(msg.to_string());
    }

    fn message(&mut self, handle: u64, body: Value, jsep: Option<Value>, what: &'static str) {
        let mut m = json!({"janus": "message", "handle_id": handle, "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        self.send(m, what);
    }

    /// Next output.
    pub fn poll_output(&mut self) -> Option<JanusOutput> {
        if let Some(m) = self.out.pop_front() {
            return Some(JanusOutput::Ws(m));
        }
        if let Some(d) = self.publisher.as_mut().and_then(|p| p.poll_transmit()) {
            return Some(JanusOutput::Transmit(Leg::Publish, d));
        }
        self.subscriber.poll_transmit().map(|d| JanusOutput::Transmit(Leg::Subscribe, d))
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Instant {
        let s = self.subscriber.poll_timeout();
        self.publisher.as_ref().map(|p| p.poll_timeout().min(s)).unwrap_or(s)
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ClientError> {
        if let Some(p) = self.publisher.as_mut() {
            if p.poll_timeout() <= now {
                p.handle_timeout(now)?;
            }
        }
        if self.subscriber.poll_timeout() <= now {
            self.subscriber.handle_timeout(now)?;
        }
        Ok(())
    }

    /// A datagram on one leg's socket.
    pub fn handle_receive(
        &mut self,
        leg: Leg,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
        now: Instant,
    ) -> Result<(), ClientError> {
        match (leg, self.publisher.as_mut()) {
            (Leg::Publish, Some(p)) => p.handle_receive(source, destination, contents, now),
            (Leg::Publish, None) => Ok(()),
            (Leg::Subscribe, _) => self.subscriber.handle_receive(source, destination, contents, now),
        }
    }

    /// A JSON message from Janus.
    pub fn handle_ws(&mut self, text: &str, now: Instant) -> Result<(), ClientError> {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return Err(ClientError::Unexpected("janus sent non-JSON"));
        };
        let kind = v["janus"].as_str().unwrap_or("");
        let tx = v["transaction"].as_str().unwrap_or("").to_string();
        match kind {
            "success" => {
                let what = self.awaiting.remove(&tx).unwrap_or("");
                let id = v["data"]["id"].as_u64();
                match (what, id) {
                    ("create", Some(id)) => {
                        self.session = Some(id);
                        let first = if self.publisher.is_some() { "attach-pub" } else { "attach-sub" };
                        self.send(json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}), first);
                    }
                    ("attach-pub", Some(h)) => {
                        self.pub_handle = Some(h);
                        let sdp = self.publisher.as_mut().map(|p| p.create_offer(true, now)).transpose()?;
                        // Our simulcast offer lists the rids lowest first
                        // (q;h;f); Janus takes them for highest first unless
                        // told, and would make q its substream 2.
                        let jsep =
                            sdp.map(|sdp| json!({"type": "offer", "sdp": sdp, "trickle": false, "rid_order": "lmh"}));
                        let body = json!({"request": "joinandconfigure", "room": self.room, "ptype": "publisher",
                            "display": "load", "audio": true, "video": true});
                        self.message(h, body, jsep, "publish");
                    }
                    ("attach-sub", Some(h)) => {
                        self.sub_handle = Some(h);
                        self.sub_busy = false;
                        self.maybe_subscribe();
                    }
                    _ => {}
                }
            }
            "error" => {
                let reason = v["error"]["reason"].as_str().unwrap_or("janus error").to_string();
                return Err(ClientError::Server {
                    code: v["error"]["code"].as_u64().unwrap_or(0) as u16,
                    message: reason,
                });
            }
            "event" => self.handle_event(&v, now)?,
            _ => {} // ack, webrtcup, media, slowlink, keepalive answers
        }
        Ok(())
    }

    fn handle_event(&mut self, v: &Value, now: Instant) -> Result<(), ClientError> {
        let sender = v["sender"].as_u64();
        let data = &v["plugindata"]["data"];
        if let Some(err) = data["error"].as_str() {
            return Err(ClientError::Server {
                code: data["error_code"].as_u64().unwrap_or(0) as u16,
                message: err.to_string(),
            });
        }
        let jsep_sdp = v["jsep"]["sdp"].as_str();
        if let Some(list) = data["publishers"].as_array() {
            for p in list {
                if let Some(id) = p["id"].as_u64() {
                    self.known_feeds.insert(id);
                }
            }
        }
        if sender.is_some() && sender == self.pub_handle {
            if data["videoroom"] == "joined" {
                self.feed = data["id"].as_u64();
            }
            if let (Some(sdp), Some(p)) = (jsep_sdp, self.publisher.as_mut()) {
                p.accept_answer(sdp, now)?;
            }
        } else if sender.is_some() && sender == self.sub_handle {
            if let Some(streams) = data["streams"].as_array() {
                for s in streams {
                    let (Some(mid), Some(feed)) = (s["mid"].as_str(), s["feed_id"].as_u64()) else { continue };
                    let kind = if s["type"] == "video" { Kind::Video } else { Kind::Audio };
                    self.streams.insert(Mid::from(mid), (feed, kind));
                }
            }
            if let Some(sdp) = jsep_sdp {
                let answer = self.subscriber.accept_offer(sdp, now)?;
                let h = self.sub_handle.unwrap_or_default();
                let jsep = json!({"type": "answer", "sdp": answer, "trickle": false});
                self.message(h, json!({"request": "start"}), Some(jsep), "start");
                self.sub_busy = false;
            }
        }
        self.maybe_subscribe();
        Ok(())
    }

    /// Subscribes to feeds we know of and do not receive yet.
    fn maybe_subscribe(&mut self) {
        if self.sub_busy || self.session.is_none() {
            return;
        }
        // Publishers subscribe once they are published themselves.
        if self.publisher.is_some() && self.feed.is_none() {
            return;
        }
        let own = self.feed;
        let new: Vec<u64> =
            self.known_feeds.iter().copied().filter(|f| Some(*f) != own && !self.subscribed.contains(f)).collect();
        if new.is_empty() {
            return;
        }
        let Some(h) = self.sub_handle else {
            self.sub_busy = true;
            self.send(json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}), "attach-sub");
            return;
        };
        // The top simulcast layer, as A-Confi gives a receiver that reports
        // no tile size on an unlimited link (also Janus's default).
        let streams: Vec<Value> = new.iter().map(|f| json!({"feed": f, "substream": 2})).collect();
        let body = if self.subscribed.is_empty() {
            json!({"request": "join", "room": self.room, "ptype": "subscriber", "streams": streams})
        } else {
            json!({"request": "subscribe", "streams": streams})
        };
        self.subscribed.extend(new);
        self.sub_busy = true;
        self.message(h, body, None, "subscribe");
    }
}
