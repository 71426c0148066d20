//! `aconfi`: run a meeting server. `aconfi --help` lists every option.

use aconfi_server::{start, Config};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let drain = std::time::Duration::from_secs(config.drain_seconds);
    // Our crates log at the chosen level; dependencies only warnings, since
    // their debug output may carry addresses.
    let filter = aconfi_server::log_filter(&config.log);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    aconfi_server::fd_limit::raise(&config);
    let server = start(config).await?;
    let port = server.https_addr.port();
    // The banner names no address: the operator knows where they run it.
    tracing::info!(
        https_port = port,
        media_port = server.media_addrs.first().map(|a| a.port()).unwrap_or(0),
        shards = server.shard_count,
        "A-Confi is running: open https://localhost:{port}"
    );
    shutdown_signal().await;
    if server.cluster_url().is_some() {
        tracing::info!(seconds = drain.as_secs(), "draining: new rooms go to other nodes; stopping once the meetings here end (a second signal stops at once)");
        tokio::select! {
            _ = server.drain(drain) => {}
            _ = shutdown_signal() => {}
        }
    }
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
