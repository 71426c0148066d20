//! The load generator against a real A-Confi server on loopback: four
//! participants for a few seconds, everyone receives everyone, no packet
//! lost. No timing is asserted; that is the benchmark's job.

use std::process::Command;

use aconfi_server::{start, Config};
use serde_json::Value;

fn run_load(port: u16, scenario: &str, n: usize) -> Value {
    let dir = std::env::temp_dir().join(format!("aconfi-load-smoke-{}-{scenario}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_aconfi-load"))
        .args(["--url", &format!("wss://localhost:{port}/ws")])
        .args(["--scenario", scenario, "--participants", &n.to_string(), "--seconds", "3"])
        // No --server-pid: the server runs inside this test process, so its
        // CPU and memory figures would include the test harness.
        .args(["--room", &format!("smoke-{scenario}")])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("load generator runs");
    assert!(out.status.success(), "load generator failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_without_loss_through_a_real_server() {
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.media_port = 0;
    config.media_bind = Some("127.0.0.1".parse().unwrap());
    let server = start(config).await.expect("server starts");
    let port = server.https_addr.port();

    let nxn = tokio::task::spawn_blocking(move || run_load(port, "nxn", 4)).await.unwrap();
    // 4 participants × 3 others × (audio + video).
    assert_eq!(nxn["tracks"], 24, "{nxn}");
    assert_eq!(nxn["loss_percent"], 0.0, "{nxn}");
    assert!(nxn["forwarded_packets"].as_u64().unwrap() > 1000, "{nxn}");
    assert!(nxn["latency_us"]["samples"].as_u64().unwrap() > 500, "{nxn}");
    assert_eq!(nxn["join_ms"]["tracks"], 24, "{nxn}");

    let fanout = tokio::task::spawn_blocking(move || run_load(port, "fanout", 5)).await.unwrap();
    assert_eq!(fanout["tracks"], 10, "{fanout}");
    assert_eq!(fanout["loss_percent"], 0.0, "{fanout}");
    server.shutdown().await;
}
