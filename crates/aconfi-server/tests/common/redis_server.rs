//! A real Redis from Debian (`redis-server`) for the cluster tests, on a
//! free loopback port, persisting nothing.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Redis server of its own, persisting nothing, stopped on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    pub fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server) runs");
        let redis = Redis { child, port };
        // Ready when it answers PING.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ping = redis::Client::open(redis.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if ping.is_ok() {
                return redis;
            }
            assert!(Instant::now() < deadline, "redis-server did not answer in 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Redis::start_on(port)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Every key and value Redis holds.
    pub fn dump(&self) -> Vec<(String, String)> {
        let mut c = redis::Client::open(self.url()).unwrap().get_connection().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
        keys.into_iter()
            .map(|k| {
                let v: String = redis::cmd("GET").arg(&k).query(&mut c).unwrap_or_default();
                (k, v)
            })
            .collect()
    }

    /// Deletes `key`.
    pub fn del(&self, key: &str) {
        let mut c = redis::Client::open(self.url()).unwrap().get_connection().unwrap();
        let _: i64 = redis::cmd("DEL").arg(key).query(&mut c).unwrap();
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
