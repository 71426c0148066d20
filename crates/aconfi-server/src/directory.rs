//! The room directory of a cluster of A-Confi nodes, in Redis (issue 14):
//! which node is a room's home, and which nodes are alive with how much
//! load. The calls to Redis only; when to make them is [`crate::cluster`]'s.
//!
//! What Redis holds, and for how long:
//! - `aconfi:room:<hex HMAC-SHA256(cluster secret, room name)>` → the home
//!   node's public URL, with a lease of [`Directory::lease`] that the home
//!   node renews while the room lives, and deletes when it ends. Never the
//!   room's name: without the cluster secret the key says nothing about it.
//! - `aconfi:node:<public URL>` → the node's load (participants) and when
//!   the announcement ends (in Redis's clock, under the tag: a value copied
//!   back without its expiry is dead all the same), expiring unless the node
//!   announces itself again.
//! - `aconfi:canary` → a value tagged under the cluster secret: a node whose
//!   secret does not verify it is not of this cluster, and refuses to run.
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

/// Replaces a value only while it is still ARGV[1] and, when a second key
/// is given, while that key still holds ARGV[4] (`''`: does not exist): a
/// room handed over from a dead node (its announcement gone, or seen
/// expired and not renewed since), or a value that is not the cluster's.
const REPLACE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] and (KEYS[2] == nil or (redis.call('GET', KEYS[2]) or '') == ARGV[4]) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"#;

/// The key of the cluster's canary.
const CANARY_KEY: &str = "aconfi:canary";

/// What the canary said of this node's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canary {
    /// Redis held one tagged under our secret.
    Matches,
    /// Redis held none: ours is there now.
    Written,
    /// Redis holds one our secret does not verify: another cluster's
    /// secret, or a wrong one in this node's settings.
    Differs,
}

/// Deletes the lease only while it is still this node's.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
}

/// The Redis key saying the node at `url` is alive.
fn node_key(url: &str) -> String {
    format!("aconfi:node:{url}")
}

/// The Redis key of `room` under the cluster's HMAC key.
fn room_key(key: &hmac::Key, room: &str) -> String {
    format!("aconfi:room:{}", hex(hmac::sign(key, room.as_bytes()).as_ref()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    /// The directory in the Redis at `redis_url`, for the node reachable at
    /// `public_url`, keying rooms with `cluster_secret` (the same on every
    /// node), without connecting yet: the first call does. Every call fails
    /// within `timeout` while Redis is unreachable, and the connection is
    /// made again by itself when Redis is back. Fails only on a bad URL.
    pub fn new(
        redis_url: &str,
        public_url: &str,
        cluster_secret: &[u8],
        lease: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(redis_url).context("--redis-url")?;
        let redis = ConnectionManager::new_lazy_with_config(client, manager_config(timeout)).context("--redis-url")?;
        Ok(Self { redis, key: hmac::Key::new(hmac::HMAC_SHA256, cluster_secret), url: public_url.to_owned(), lease })
    }

    /// Like [`Directory::new`], and connected: fails if Redis does not
    /// answer within `timeout`.
    pub async fn connect(
        redis_url: &str,
        public_url: &str,
        cluster_secret: &[u8],
        lease: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(redis_url).context("--redis-url")?;
        let redis = tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, manager_config(timeout)))
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
        self.claim_for(room, &self.url.clone()).await
    }

    /// Claims `room` for the node at `url` (this one, or a less loaded one
    /// the room is sent to) if nobody holds it; else says whose it is. A
    /// lease that is not the cluster's (no valid tag) is replaced.
    pub async fn claim_for(&self, room: &str, url: &str) -> anyhow::Result<Home> {
        let key = self.room_key(room);
        let value = self.lease_value(&key, url);
        let mut redis = self.redis.clone();
        // Three times at most: the owner's lease may end between SET and
        // GET, or a foreign value be replaced meanwhile.
        for _ in 0..3 {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("NX")
                .arg("PX")
                .arg(self.lease_ms())
                .query_async(&mut redis)
                .await?;
            if set.is_some() {
                return Ok(if url == self.url { Home::Here } else { Home::There(url.to_owned()) });
            }
            let Some(held) = redis.get::<_, Option<String>>(&key).await? else { continue };
            match self.lease_owner(&key, &held) {
                Some(owner) if owner == self.url => return Ok(Home::Here),
                Some(owner) => return Ok(Home::There(owner.to_owned())),
                None => {
                    let _: i64 = Script::new(REPLACE)
                        .key(&key)
                        .arg(&held)
                        .arg(&value)
                        .arg(self.lease_ms())
                        .arg("")
                        .invoke_async(&mut redis)
                        .await?;
                }
            }
        }
        anyhow::bail!("the room's lease changed hands while claiming it")
    }

    /// A room lease's value: the owner's URL and a tag binding it to the key.
    fn lease_value(&self, key: &str, url: &str) -> String {
        format!("{url} {}", self.tag(&["room", key, url]))
    }

    /// The owner a lease's value names, if its tag is the cluster's.
    fn lease_owner<'v>(&self, key: &str, value: &'v str) -> Option<&'v str> {
        let (url, tag) = value.split_once(' ')?;
        (self.tag(&["room", key, url]) == tag).then_some(url)
    }

    /// A node announcement's value: its load, when it ends (milliseconds
    /// in Redis's clock) and a tag over both.
    fn node_value(&self, url: &str, load: u64, until_ms: u64) -> String {
        let (load, until) = (load.to_string(), until_ms.to_string());
        format!("{load} {until} {}", self.tag(&["node", url, &load, &until]))
    }

    /// The load an announcement says, if its tag is the cluster's and it
    /// has not ended by `now_ms`.
    fn node_load(&self, url: &str, value: &str, now_ms: u64) -> Option<u64> {
        let mut parts = value.splitn(3, ' ');
        let (load, until, tag) = (parts.next()?, parts.next()?, parts.next()?);
        if self.tag(&["node", url, load, until]) != tag || until.parse::<u64>().ok()? < now_ms {
            return None;
        }
        load.parse().ok()
    }

    /// Redis's clock, in milliseconds: the one clock every node shares.
    async fn now_ms(&self) -> anyhow::Result<u64> {
        let mut redis = self.redis.clone();
        let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut redis).await?;
        Ok(secs * 1000 + micros / 1000)
    }

    /// Checks this node's secret against the cluster's canary, writing one
    /// where Redis holds none (the first node, or Redis restarted empty).
    pub async fn check_canary(&self) -> anyhow::Result<Canary> {
        let mut redis = self.redis.clone();
        let mine = format!("v1 {}", self.tag(&["canary", "the secret of this A-Confi cluster"]));
        let set: Option<String> =
            redis::cmd("SET").arg(CANARY_KEY).arg(&mine).arg("NX").query_async(&mut redis).await?;
        if set.is_some() {
            return Ok(Canary::Written);
        }
        let held: Option<String> = redis.get(CANARY_KEY).await?;
        Ok(if held.as_deref() == Some(mine.as_str()) { Canary::Matches } else { Canary::Differs })
    }

    /// HMAC-SHA256 under the cluster secret of `parts` (each length-prefixed,
    /// so no two lists give the same input), hex.
    fn tag(&self, parts: &[&str]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p.as_bytes());
        }
        hex(ctx.sign().as_ref())
    }

    /// Renews this node's lease on `room`; false if it is no longer ours
    /// (it expired, and another node may have it now).
    pub async fn renew(&self, room: &str) -> anyhow::Result<bool> {
        let mut redis = self.redis.clone();
        let key = self.room_key(room);
        let n: i64 = Script::new(RENEW)
            .arg(self.lease_value(&key, &self.url))
            .key(key)
            .arg(self.lease_ms())
            .invoke_async(&mut redis)
            .await?;
        Ok(n == 1)
    }

    /// Takes `room` over from the node at `dead` for the node at `url`, if
    /// its lease still names `dead` and `dead` no longer announces itself
    /// (one script: checked and set at once). True if taken.
    pub async fn take_over(&self, room: &str, dead: &str, url: &str) -> anyhow::Result<bool> {
        let mut redis = self.redis.clone();
        // Its announcement, as Redis holds it now: alive if it verifies and
        // has not ended. Anything else (gone, ended, or not the cluster's:
        // a value copied back without its expiry, say) is no sign of life,
        // and the takeover happens only if it is still exactly that.
        let seen: Option<String> = redis.get(node_key(dead)).await?;
        let now = self.now_ms().await?;
        if seen.as_deref().is_some_and(|v| self.node_load(dead, v, now).is_some()) {
            return Ok(false);
        }
        let key = self.room_key(room);
        let n: i64 = Script::new(REPLACE)
            .arg(self.lease_value(&key, dead))
            .arg(self.lease_value(&key, url))
            .key(key)
            .key(node_key(dead))
            .arg(self.lease_ms())
            .arg(seen.unwrap_or_default())
            .invoke_async(&mut redis)
            .await?;
        Ok(n == 1)
    }

    /// Gives `room` up (it ended here), if it is still ours.
    pub async fn release(&self, room: &str) -> anyhow::Result<()> {
        let mut redis = self.redis.clone();
        let key = self.room_key(room);
        let _: i64 =
            Script::new(RELEASE).arg(self.lease_value(&key, &self.url)).key(key).invoke_async(&mut redis).await?;
        Ok(())
    }

    /// Says this node is alive with `load`, for `ttl`.
    pub async fn announce(&self, load: u64, ttl: Duration) -> anyhow::Result<()> {
        let mut redis = self.redis.clone();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let until = self.now_ms().await?.saturating_add(ttl_ms);
        let _: () = redis::cmd("SET")
            .arg(node_key(&self.url))
            .arg(self.node_value(&self.url, load, until))
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut redis)
            .await?;
        Ok(())
    }

    /// Stops saying this node is alive (it is draining or stopping): no new
    /// room is sent here, and rooms it holds may be taken over.
    pub async fn withdraw(&self) -> anyhow::Result<()> {
        let mut redis = self.redis.clone();
        let _: i64 = redis.del(node_key(&self.url)).await?;
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
        let now = self.now_ms().await?;
        let mut nodes = Vec::with_capacity(keys.len());
        for key in keys {
            // Gone between SCAN and GET: expired, so not live.
            let value: Option<String> = redis.get(&key).await?;
            let Some(url) = key.strip_prefix("aconfi:node:") else { continue };
            // Not the cluster's (no valid tag): not a node.
            if let Some(load) = value.and_then(|v| self.node_load(url, &v, now)) {
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
