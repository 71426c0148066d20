//! This node as one of a cluster (issue 14): which node a room lives on,
//! kept in the room directory in Redis ([`crate::directory`]).
//!
//! - A `join` for a room that is on no shard here asks [`Cluster::home`]:
//!   the room is claimed for this node, or for a live node with fewer
//!   participants, unless another node holds it already. A room held by a
//!   node that stopped announcing itself is taken over. When the home is
//!   another node the client is sent there (`moved`, close 4015).
//! - Every [`ANNOUNCE_EVERY`] the node says it is alive, with its load, for
//!   [`NODE_TTL`], and reads which other nodes are alive (their URLs go
//!   into the pages' Content-Security-Policy and the `Origin`s allowed).
//! - Every [`RENEW_EVERY`] it renews the lease of each room on its shards;
//!   one that is no longer its own (Redis lost it, or another node took it
//!   while this one could not reach Redis) is claimed again, or, if another
//!   node has it now, its participants are sent there.
//! - A room whose last participant left is released at once.
//!
//! Redis unreachable: meetings go on; a new room is made here, with one
//! warning; once Redis answers again the node announces itself and claims
//! its rooms again. Nothing here logs a room's name.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aconfi_core::RoomName;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{public_origin, Config};
use crate::directory::{Canary, Directory, Home, Node};
use crate::metrics::ClusterGauges;
use crate::shards::Shards;

/// How often a node says it is alive and reads who else is.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(1);
/// How long a node counts as alive after it last said so: a killed node's
/// rooms may be taken over this long after it died.
pub const NODE_TTL: Duration = Duration::from_secs(3);
/// How long a room's lease holds unless renewed.
pub const LEASE: Duration = Duration::from_secs(15);
/// How often the leases of the rooms here are renewed.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
/// Most other nodes remembered as part of the cluster.
pub const MAX_SEEN: usize = 4096;
/// How long any one call to Redis may take.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Where a room lives, as far as a joining client is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Where {
    /// Here (claimed here, or Redis could not be asked).
    Here,
    /// At the node of this public URL.
    There(String),
}

fn wrong_secret() -> anyhow::Error {
    anyhow::anyhow!(
        "this node's --cluster-secret is not the one the other nodes of this Redis use (its canary, \
         aconfi:canary, does not verify under it): give every node the same secret"
    )
}

/// Participants of `room` (of every room, for `None`) are to go to `url`.
#[derive(Debug, Clone)]
pub struct Move {
    pub room: Option<RoomName>,
    pub url: String,
}

/// This node's part in the cluster.
pub struct Cluster {
    dir: Directory,
    shards: Arc<Shards>,
    /// The other live nodes, least loaded first, as last read.
    others: Mutex<Vec<Node>>,
    /// Every other node seen alive since this one started (at most
    /// [`MAX_SEEN`]): pages they served may connect here even once they
    /// died, as their clients come here.
    seen: Mutex<HashSet<String>>,
    /// Whether the last call to Redis was answered (for the warnings).
    reachable: AtomicBool,
    /// Stopping: no new room is made here.
    draining: AtomicBool,
    moves: broadcast::Sender<Move>,
    gauges: ClusterGauges,
}

impl Cluster {
    /// The cluster `config` names (`--redis-url`), if it names one. Does
    /// not connect yet: a node starts even while Redis is down.
    pub fn new(config: &Config, shards: Arc<Shards>, gauges: ClusterGauges) -> anyhow::Result<Option<Arc<Self>>> {
        let (Some(redis), Some(url), Some(secret)) = (&config.redis_url, &config.public_url, &config.cluster_secret)
        else {
            return Ok(None);
        };
        let dir = Directory::new(redis, url.as_str(), secret.as_bytes(), LEASE, REDIS_TIMEOUT)?;
        let (moves, _) = broadcast::channel(64);
        Ok(Some(Arc::new(Cluster {
            dir,
            shards,
            others: Mutex::new(Vec::new()),
            seen: Mutex::new(HashSet::new()),
            reachable: AtomicBool::new(true),
            draining: AtomicBool::new(false),
            moves,
            gauges,
        })))
    }

    /// This node's public URL.
    pub fn url(&self) -> &str {
        self.dir.url()
    }

    fn others_lock(&self) -> std::sync::MutexGuard<'_, Vec<Node>> {
        self.others.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The other live nodes' public URLs.
    pub fn others(&self) -> Vec<String> {
        self.others_lock().iter().map(|n| n.url.clone()).collect()
    }

    /// Where this node's pages may be sent: itself (a page served through
    /// a balancer has the balancer as its origin) and the other live nodes.
    pub fn connectable(&self) -> Vec<String> {
        let mut urls = vec![self.url().to_owned()];
        urls.extend(self.others());
        urls
    }

    /// Whether `origin` is a node of this cluster, alive or seen alive
    /// before: its pages may open our WebSocket (their clients were sent
    /// here, or come here because their node died).
    pub fn is_node_origin(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        origin == self.url() || self.seen.lock().unwrap_or_else(|e| e.into_inner()).contains(&origin)
    }

    /// Whether the last call to Redis was answered.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Moves of rooms to other nodes, for the WebSocket tasks.
    pub fn subscribe(&self) -> broadcast::Receiver<Move> {
        self.moves.subscribe()
    }

    /// Where a room that is on no shard here lives: claimed for this node
    /// (or for a less loaded one, or any other while this one drains) if
    /// no live node holds it. Here when Redis cannot be asked.
    pub async fn home(&self, room: &RoomName) -> Where {
        // Known to be down: no join waits for it (the announcements, every
        // second, find out when it is back).
        if !self.reachable.load(Ordering::Relaxed) {
            return Where::Here;
        }
        let target = self.target();
        let found = tokio::time::timeout(REDIS_TIMEOUT * 2, async {
            let home = self.dir.claim_for(room.as_str(), &target).await?;
            let owner = match home {
                Home::Here => return Ok(Where::Here),
                Home::There(owner) => owner,
            };
            if owner == target || self.others_lock().iter().any(|n| n.url == owner) {
                return Ok(Where::There(owner));
            }
            // Its home stopped announcing itself (or started a moment ago:
            // the script checks in Redis, not in our copy).
            if self.dir.take_over(room.as_str(), &owner, &target).await? {
                return Ok(if target == self.url() { Where::Here } else { Where::There(target) });
            }
            Ok(match self.dir.claim_for(room.as_str(), &target).await? {
                Home::Here => Where::Here,
                Home::There(url) => self.live_or_here(url),
            })
        })
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("Redis did not answer in time")));
        match found {
            Ok(w) => {
                self.answered();
                w
            }
            Err(e) => {
                self.failed(&e);
                Where::Here
            }
        }
    }

    /// `url` if it is a node alive in the cluster (announced, under the
    /// secret, within the last seconds); else here. Clients are never sent
    /// to a URL only the directory names: whoever can write the directory
    /// (a node with the secret, compromised, say) could otherwise send them
    /// to a site of its choosing, and their pages with them.
    fn live_or_here(&self, url: String) -> Where {
        if url == self.url() {
            return Where::Here;
        }
        if self.others_lock().iter().any(|n| n.url == url) {
            return Where::There(url);
        }
        warn!("the room directory names a node that is not alive in the cluster: the room stays here");
        Where::Here
    }

    /// Where a new room goes: here, unless another live node has fewer
    /// participants (the least loaded of them), or any other one while this
    /// node drains.
    fn target(&self) -> String {
        let others = self.others_lock();
        let draining = self.draining.load(Ordering::Relaxed);
        let mine = self.shards.connections() as u64;
        match others.first() {
            Some(n) if draining || n.load < mine => n.url.clone(),
            _ => self.url().to_owned(),
        }
    }

    fn answered(&self) {
        self.gauges.redis_reachable.set(1);
        if !self.reachable.swap(true, Ordering::Relaxed) {
            info!("Redis answers again: this node is registered in the cluster");
        }
    }

    fn failed(&self, e: &anyhow::Error) {
        self.gauges.redis_reachable.set(0);
        if self.reachable.swap(false, Ordering::Relaxed) {
            warn!(error = %e, "the cluster's Redis cannot be used: meetings go on, new rooms are made on this node alone");
        }
    }

    /// At start: whether this node's cluster secret is the one the other
    /// nodes of this Redis use (the canary verifies under it). A node with
    /// another secret would see every valid lease as foreign and take it
    /// over: it must not run. Redis not answering yet is no answer: the
    /// announcements check again.
    pub async fn check_secret(&self) -> anyhow::Result<()> {
        match tokio::time::timeout(REDIS_TIMEOUT * 2, self.dir.check_canary()).await {
            Ok(Ok(Canary::Differs)) => Err(wrong_secret()),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                warn!(error = %e, "Redis unreachable at start: the cluster secret is checked once it answers");
                Ok(())
            }
            Err(_) => {
                warn!("Redis unreachable at start: the cluster secret is checked once it answers");
                Ok(())
            }
        }
    }

    /// Says this node is alive and reads who else is; first checks the
    /// canary (it may have started while Redis was down, or Redis came
    /// back empty and the canary is written again).
    async fn announce(&self) -> anyhow::Result<()> {
        if self.dir.check_canary().await? == Canary::Differs {
            return Err(wrong_secret());
        }
        if !self.draining.load(Ordering::Relaxed) {
            self.dir.announce(self.shards.connections() as u64, NODE_TTL).await?;
        }
        let me = self.url();
        // A URL from Redis goes into headers: only plain origins are taken.
        let others = self
            .dir
            .live_nodes()
            .await?
            .into_iter()
            .filter(|n| n.url != me && public_origin(&n.url).as_deref() == Some(n.url.as_str()))
            .collect::<Vec<_>>();
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            for n in &others {
                if seen.len() < MAX_SEEN {
                    seen.insert(n.url.clone());
                }
            }
        }
        self.gauges.nodes.set(i64::try_from(others.len() + 1).unwrap_or(i64::MAX));
        *self.others_lock() = others;
        Ok(())
    }

    /// Renews the lease of every room here; claims again a room whose lease
    /// is gone; sends the participants of a room another node holds now to
    /// that node.
    async fn renew(&self) -> anyhow::Result<()> {
        for room in self.shards.rooms() {
            if self.dir.renew(room.as_str()).await? {
                continue;
            }
            // Gone from Redis, or taken while this node could not renew. Its
            // participants go only to a node alive in the cluster: a lease
            // naming anywhere else (written by whoever holds the cluster
            // secret) keeps the room here, and the next renewal tries again.
            if let Home::There(url) = self.dir.claim(room.as_str()).await? {
                if let Where::There(url) = self.live_or_here(url) {
                    let _ = self.moves.send(Move { room: Some(room), url });
                }
            }
        }
        Ok(())
    }

    /// Gives up the lease of a room that emptied, unless someone is in it
    /// again already.
    async fn release(&self, room: &RoomName) -> anyhow::Result<()> {
        if self.shards.shard_of(room).is_none() {
            self.dir.release(room.as_str()).await?;
        }
        Ok(())
    }

    /// Keeps this node's entries in Redis until `cancel`: announcements,
    /// renewals and releases (see the module's documentation).
    pub async fn run(self: Arc<Self>, mut emptied: mpsc::UnboundedReceiver<RoomName>, cancel: CancellationToken) {
        let mut announce = tokio::time::interval(ANNOUNCE_EVERY);
        let mut renew = tokio::time::interval(RENEW_EVERY);
        announce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let result = tokio::select! {
                _ = cancel.cancelled() => return,
                _ = announce.tick() => {
                    let was = self.reachable.load(Ordering::Relaxed);
                    let r = self.announce().await;
                    // Back after an outage: claim this node's rooms again now.
                    if r.is_ok() && !was {
                        renew.reset_immediately();
                    }
                    r
                }
                _ = renew.tick() => self.renew().await,
                Some(room) = emptied.recv() => self.release(&room).await,
            };
            match result {
                Ok(()) => self.answered(),
                Err(e) => self.failed(&e),
            }
        }
    }

    /// Starts draining: no new room here, and other nodes no longer see
    /// this one as alive.
    pub async fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
        if let Err(e) = self.dir.withdraw().await {
            self.failed(&e);
        }
    }

    /// Hands every room here over: releases their leases and sends their
    /// participants to the least loaded other node, if there is one. False
    /// if there is none (they are then closed as the node stops, and come
    /// back through whatever address they first used).
    pub async fn hand_over(&self) -> bool {
        let Some(url) = self.others_lock().first().map(|n| n.url.clone()) else { return false };
        self.leave().await;
        let _ = self.moves.send(Move { room: None, url });
        true
    }

    /// Removes this node from Redis: its announcement and its rooms'
    /// leases, so that other nodes take its rooms at once.
    pub async fn leave(&self) {
        let rooms: HashSet<RoomName> = self.shards.rooms().into_iter().collect();
        let done = tokio::time::timeout(REDIS_TIMEOUT * 2, async {
            self.dir.withdraw().await?;
            for room in &rooms {
                self.dir.release(room.as_str()).await?;
            }
            anyhow::Ok(())
        })
        .await;
        if let Ok(Err(e)) = done {
            self.failed(&e);
        }
    }
}
