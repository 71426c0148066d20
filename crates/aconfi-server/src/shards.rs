//! The room → shard map the signaling side routes by (each shard, one SFU
//! core on a thread of its own with its own media port and rooms, is
//! `crate::shard`), and the shards' counts summed for the metrics.
//!
//! A WebSocket does not know its room until its `join`; then
//! [`Shards::place`] finds the room's shard, or picks the least loaded live
//! one for a room that is on none, and counts the connection in. A room's
//! entry lives exactly as long as some connection placed in it: the last
//! [`Placement`] dropped (after its WebSocket task has told the shard that
//! it closed) removes it. So a room that empties and is re-created at once
//! can never be on two shards with people in both: whoever joins while
//! anyone placed there is still connected goes to the same shard; once
//! nobody is, the old room has nobody left (its shard has only their
//! `Closed` still to read) and the new one may go anywhere. The shards do
//! not report rooms ending: a report would race with a join already on its
//! way to the shard.
//!
//! In a cluster, [`crate::cluster`] decides first whether a room that is
//! on no shard here belongs on this node at all, renews the leases of the
//! rooms in this map, and gives up each room's lease when its entry goes
//! ([`Shards::on_empty`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use aconfi_core::RoomName;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::metrics::Metrics;
use crate::shard::{CoreCmd, ShardStats, GAUGES_EVERY, SUMMARY_EVERY};

/// One shard as the signaling side sees it.
struct Core {
    tx: mpsc::Sender<CoreCmd>,
    stats: Arc<ShardStats>,
}

/// Rooms per shard and connections placed in each.
#[derive(Default)]
struct Map {
    rooms: HashMap<RoomName, Entry>,
    load: Vec<Load>,
}

struct Entry {
    shard: usize,
    connections: usize,
}

#[derive(Default, Clone, Copy)]
struct Load {
    rooms: usize,
    connections: usize,
}

/// Every shard, and which room is on which.
pub struct Shards {
    cores: Vec<Core>,
    map: Mutex<Map>,
    /// Told each room whose entry went (nobody placed in it any more).
    emptied: OnceLock<mpsc::UnboundedSender<RoomName>>,
    /// Woken whenever a connection leaves its room (for draining).
    left: tokio::sync::Notify,
}

/// A connection counted in its room's entry until dropped.
pub struct Placement {
    shards: Arc<Shards>,
    room: RoomName,
    shard: usize,
}

impl Placement {
    /// The room's shard.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// The room placed in.
    pub fn room(&self) -> &RoomName {
        &self.room
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        let mut map = self.shards.lock();
        let Map { rooms, load } = &mut *map;
        load[self.shard].connections -= 1;
        if let Some(e) = rooms.get_mut(&self.room) {
            e.connections -= 1;
            if e.connections == 0 {
                rooms.remove(&self.room);
                load[self.shard].rooms -= 1;
                if let Some(tx) = self.shards.emptied.get() {
                    let _ = tx.send(self.room.clone());
                }
            }
        }
        drop(map);
        self.shards.left.notify_waiters();
    }
}

impl Shards {
    /// The shards behind these channels, reporting to these stats.
    pub fn new(cores: Vec<(mpsc::Sender<CoreCmd>, Arc<ShardStats>)>) -> Self {
        let load = vec![Load::default(); cores.len()];
        Shards {
            cores: cores.into_iter().map(|(tx, stats)| Core { tx, stats }).collect(),
            map: Mutex::new(Map { rooms: HashMap::new(), load }),
            emptied: OnceLock::new(),
            left: tokio::sync::Notify::new(),
        }
    }

    /// Waits until no connection is placed in any room here.
    pub async fn until_empty(&self) {
        loop {
            let left = self.left.notified();
            tokio::pin!(left);
            // Registered before looking, so a leave in between still wakes it.
            left.as_mut().enable();
            if self.connections() == 0 {
                return;
            }
            left.await;
        }
    }

    /// From now on, every room whose last placed connection goes is sent
    /// here (once; later calls are ignored).
    pub fn on_empty(&self, tx: mpsc::UnboundedSender<RoomName>) {
        let _ = self.emptied.set(tx);
    }

    /// The rooms anyone is placed in, on any shard.
    pub fn rooms(&self) -> Vec<RoomName> {
        self.lock().rooms.keys().cloned().collect()
    }

    /// Connections placed in rooms, over every shard: this node's load.
    pub fn connections(&self) -> usize {
        self.lock().load.iter().map(|l| l.connections).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        // Counts stay consistent whatever panicked while holding it: every
        // change under the lock is a few integer updates.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many shards there are.
    pub fn len(&self) -> usize {
        self.cores.len()
    }

    /// Whether there are none (never, for a started server).
    pub fn is_empty(&self) -> bool {
        self.cores.is_empty()
    }

    /// Counts a connection into `room`: on the room's shard if it is on
    /// one; else on `prefer` if given and alive, else on the live shard with
    /// the fewest connections (then rooms) placed.
    pub fn place(self: &Arc<Self>, room: &RoomName, prefer: Option<usize>) -> Placement {
        let mut map = self.lock();
        let Map { rooms, load } = &mut *map;
        let shard = match rooms.get_mut(room) {
            Some(e) => {
                e.connections += 1;
                e.shard
            }
            None => {
                let alive = |i: &usize| self.cores[*i].stats.alive();
                let shard = prefer.filter(alive).unwrap_or_else(|| {
                    (0..self.cores.len())
                        .filter(alive)
                        .min_by_key(|i| (load[*i].connections, load[*i].rooms, *i))
                        .unwrap_or(0)
                });
                rooms.insert(room.clone(), Entry { shard, connections: 1 });
                load[shard].rooms += 1;
                shard
            }
        };
        load[shard].connections += 1;
        Placement { shards: self.clone(), room: room.clone(), shard }
    }

    /// The shard a room is on, if anyone is placed in it.
    pub fn shard_of(&self, room: &RoomName) -> Option<usize> {
        self.lock().rooms.get(room).map(|e| e.shard)
    }

    /// The shard for a connection that names no valid room (its first
    /// message is not a `join`, or names no valid room): the core answers
    /// it as it answers any such connection. The first live one.
    pub fn unplaced(&self) -> usize {
        (0..self.cores.len()).find(|i| self.cores[*i].stats.alive()).unwrap_or(0)
    }

    /// The channel to shard `i`'s core.
    pub fn core(&self, i: usize) -> &mpsc::Sender<CoreCmd> {
        &self.cores[i].tx
    }

    /// Whether the meeting of this name is being streamed live: asked of
    /// its shard (or, for a room on none, any live shard, which has no such
    /// room).
    pub async fn is_streaming(&self, room: &RoomName) -> bool {
        // A room on no shard is asked about too (a shard says it has no
        // such room): the answer takes the same path and time whether the
        // room exists or not, so it tells nobody that.
        let shard = self.shard_of(room).unwrap_or_else(|| self.unplaced());
        let (tx, rx) = oneshot::channel();
        if self.cores[shard].tx.send(CoreCmd::IsStreaming(room.as_str().to_string(), tx)).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Rooms on each shard, as the shards last reported (once per
    /// [`GAUGES_EVERY`]): counts only, no names.
    pub fn rooms_per_shard(&self) -> Vec<usize> {
        self.cores.iter().map(|c| c.stats.counts().0).collect()
    }

    /// Rooms, participants and streams over every shard.
    fn totals(&self) -> (usize, usize, usize) {
        self.cores.iter().fold((0, 0, 0), |(r, p, s), c| {
            let (rooms, participants, streams) = c.stats.counts();
            (r + rooms, p + participants, s + streams)
        })
    }
}

/// Sums the shards' counts into the metrics' gauges every [`GAUGES_EVERY`],
/// and logs them every [`SUMMARY_EVERY`] (the only thing logged about
/// meetings at the default level), until `cancel`.
pub async fn report(shards: Arc<Shards>, metrics: Metrics, cancel: CancellationToken) {
    let mut gauges = tokio::time::interval(GAUGES_EVERY);
    let mut summary = tokio::time::interval_at(tokio::time::Instant::now() + SUMMARY_EVERY, SUMMARY_EVERY);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = gauges.tick() => {
                let (rooms, participants, streams) = shards.totals();
                metrics.rooms.set(rooms as i64);
                metrics.participants.set(participants as i64);
                metrics.streams.set(streams as i64);
            }
            _ = summary.tick() => {
                let (rooms, participants, _) = shards.totals();
                info!(rooms, participants, "in use");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(n: usize) -> (Arc<Shards>, Vec<mpsc::Receiver<CoreCmd>>) {
        let (cores, rxs) = (0..n)
            .map(|_| {
                let (tx, rx) = mpsc::channel(8);
                ((tx, Arc::new(ShardStats::default())), rx)
            })
            .unzip();
        (Arc::new(Shards::new(cores)), rxs)
    }

    fn name(s: &str) -> RoomName {
        RoomName::parse(s).expect("a valid name")
    }

    #[test]
    fn rooms_spread_and_stay_on_their_shard_while_anyone_is_placed() {
        let (s, _rx) = shards(2);
        let a1 = s.place(&name("room-a"), None);
        let b1 = s.place(&name("room-b"), None);
        assert_ne!(a1.shard(), b1.shard(), "the second room goes to the empty shard");
        let a2 = s.place(&name("room-a"), Some(b1.shard()));
        assert_eq!(a2.shard(), a1.shard(), "an existing room keeps its shard, whatever is preferred");
        // The room outlives its first connection, and ends with its last.
        drop(a1);
        assert_eq!(s.shard_of(&name("room-a")), Some(a2.shard()));
        let shard = a2.shard();
        drop(a2);
        assert_eq!(s.shard_of(&name("room-a")), None);
        // Re-created: placed afresh (the least loaded is the one it left).
        assert_eq!(s.place(&name("room-a"), None).shard(), shard);
    }

    #[test]
    fn a_dead_shard_gets_no_new_room() {
        let (s, _rx) = shards(2);
        s.cores[0].stats.dead();
        for i in 0..4 {
            assert_eq!(s.place(&name(&format!("room-{i}")), Some(0)).shard(), 1);
        }
        assert_eq!(s.unplaced(), 1);
    }
}
