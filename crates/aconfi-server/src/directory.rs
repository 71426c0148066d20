//! The room directory of a cluster of A-Confi nodes, in Redis (issue 14):
//! which node is a room's home, and which nodes are alive with how much
//! load. This is the building block; wiring it into the signaling (sending
//! a client on to its room's home node) comes with it next.
//!
//! What Redis holds, and for how long:
//! - `aconfi:room:<hex HMAC-SHA256(cluster secret, room name)>` → the home
//!   node's public URL, with a lease of [`Directory::lease`] that the home
//!   node renews while the room lives, and deletes when it ends. Never the
//!   room's name: without the cluster secret the key says nothing about it.
//! - `aconfi:node:<public URL>` → the node's load (participants), expiring
//!   unless the node announces itself again.
//!
//! Nothing else: no participant, no name, nothing that outlives a meeting
//! by more than a lease. Two nodes never both own a room: a claim is
//! `SET … NX PX`, a renewal or release only acts if the key still names
//! the node (one server-side script each, so check and act are atomic).

use std::time::Duration;

use anyhow::Context;
use aws_lc_rs::hmac;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

/// Where a room lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Home {
    /// On this node: it holds the lease now.
    Here,
    /// On another node, at this public URL.
    There(String),
}

/// A live node as it announced itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its public URL.
    pub url: String,
    /// Its load (participants), as last announced.
    pub load: u64,
}

/// Renews the lease only while it is still this node's.
const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

/// Deletes the lease only while it is still this node's.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// The Redis key of `room` under the cluster's HMAC key.
fn room_key(key: &hmac::Key, room: &str) -> String {
    let tag = hmac::sign(key, room.as_bytes());
    let mut out = String::with_capacity(12 + 64);
    out.push_str("aconfi:room:");
    for b in tag.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// One node's view of the cluster's directory.
#[derive(Clone)]
pub struct Directory {
    redis: ConnectionManager,
    key: hmac::Key,
    url: String,
    lease: Duration,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of every debug print.
        f.debug_struct("Directory").field("url", &self.url).field("lease", &self.lease).finish_non_exhaustive()
    }
}

impl Directory {
    /// Connects to Redis at `redis_url` as the node reachable at
    /// `public_url`, keying rooms with `cluster_secret` (the same on every
    /// node). Every call fails within `timeout` while Redis is unreachable,
    /// and the connection is made again by itself when Redis is back.
    pub async fn connect(
        redis_url: &str,
        public_url: &str,
        cluster_secret: &[u8],
        lease: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(redis_url).context("--redis-url")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let redis = tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, config))
            .await
            .context("connecting to Redis timed out")?
            .context("connecting to Redis")?;
        Ok(Self { redis, key: hmac::Key::new(hmac::HMAC_SHA256, cluster_secret), url: public_url.to_owned(), lease })
    }

    /// This node's public URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How long a claim holds without renewal.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The Redis key of a room: an HMAC of its name, never the name.
    pub fn room_key(&self, room: &str) -> String {
        room_key(&self.key, room)
    }

    fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// Claims `room` for this node if nobody holds it; else says whose it
    /// is. A node asking again for a room it holds gets `Here`.
    pub async fn claim(&self, room: &str) -> anyhow::Result<Home> {
        let key = self.room_key(room);
        let mut redis = self.redis.clone();
        // Twice at most: the owner's lease may end between SET and GET.
        for _ in 0..2 {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&self.url)
                .arg("NX")
                .arg("PX")
                .arg(self.lease_ms())
                .query_async(&mut redis)
                .await?;
            if set.is_some() {
                return Ok(Home::Here);
            }
            let owner: Option<String> = redis.get(&key).await?;
            match owner {
                Some(url) if url == self.url => return Ok(Home::Here),
                Some(url) => return Ok(Home::There(url)),
                None => continue,
            }
        }
        anyhow::bail!("the room's lease changed hands twice while claiming it")
    }

    /// Renews this node's lease on `room`; false if it is no longer ours
    /// (it expired, and another node may have it now).
    pub async fn renew(&self, room: &str) -> anyhow::Result<bool> {
        let mut redis = self.redis.clone();
        let n: i64 = Script::new(RENEW)
            .key(self.room_key(room))
            .arg(&self.url)
            .arg(self.lease_ms())
            .invoke_async(&mut redis)
            .await?;
        Ok(n == 1)
    }

    /// Gives `room` up (it ended here), if it is still ours.
    pub async fn release(&self, room: &str) -> anyhow::Result<()> {
        let mut redis = self.redis.clone();
        let _: i64 = Script::new(RELEASE).key(self.room_key(room)).arg(&self.url).invoke_async(&mut redis).await?;
        Ok(())
    }

    /// Says this node is alive with `load`, for `ttl`.
    pub async fn announce(&self, load: u64, ttl: Duration) -> anyhow::Result<()> {
        let mut redis = self.redis.clone();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let _: () = redis::cmd("SET")
            .arg(format!("aconfi:node:{}", self.url))
            .arg(load)
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut redis)
            .await?;
        Ok(())
    }

    /// The nodes that announced themselves and have not expired, least
    /// loaded first (ties by URL, so every node picks the same).
    pub async fn live_nodes(&self) -> anyhow::Result<Vec<Node>> {
        let mut redis = self.redis.clone();
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("aconfi:node:*")
                .arg("COUNT")
                .arg(100)
                .query_async(&mut redis)
                .await?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let mut nodes = Vec::with_capacity(keys.len());
        for key in keys {
            // Gone between SCAN and GET: expired, so not live.
            let load: Option<u64> = redis.get(&key).await?;
            if let (Some(load), Some(url)) = (load, key.strip_prefix("aconfi:node:")) {
                nodes.push(Node { url: url.to_owned(), load });
            }
        }
        nodes.sort_by(|a, b| a.load.cmp(&b.load).then_with(|| a.url.cmp(&b.url)));
        Ok(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_keys_are_an_hmac_of_the_name_under_the_secret() {
        let key = |secret: &[u8], room: &str| room_key(&hmac::Key::new(hmac::HMAC_SHA256, secret), room);
        let a = key(b"secret one", "kelomari-tusefopa");
        assert!(a.starts_with("aconfi:room:") && a.len() == "aconfi:room:".len() + 64, "{a}");
        assert!(!a.contains("kelomari"));
        assert_eq!(a, key(b"secret one", "kelomari-tusefopa"), "the same on every node");
        assert_ne!(a, key(b"secret two", "kelomari-tusefopa"), "another cluster, another key");
        assert_ne!(a, key(b"secret one", "kelomari-tusefopb"));
    }
}
