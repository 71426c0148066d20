//! Enough file descriptors for the connection caps.
//!
//! Every WebSocket, ICE-TCP connection and connection not yet told apart
//! on the HTTPS port is a file descriptor. Most systems start a process
//! with a soft limit of 1024: far below the caps, so the server would run
//! out (accept failing with EMFILE) long before any cap refused anyone. At
//! start the soft limit is raised as far as the hard limit allows (the
//! systemd unit sets `LimitNOFILE`), and a limit still below what the caps
//! need is said once in the log.

use crate::ice_tcp;
use crate::Config;

/// Descriptors beyond the connections: listeners, UDP sockets, the TLS
/// configuration's files, streaming workers' pipes and sockets.
const SPARE: u64 = 512;

/// The descriptors the caps of `config` can take at once.
pub fn needed(config: &Config) -> u64 {
    let connections = config.max_connections + ice_tcp::MAX_CONNECTIONS + ice_tcp::MAX_UNSORTED;
    u64::try_from(connections).unwrap_or(u64::MAX).saturating_add(SPARE)
}

/// Raises the soft limit to the hard one; the soft limit now.
pub fn raise(config: &Config) -> u64 {
    let need = needed(config);
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) => {
            if now < need {
                tracing::warn!(
                    open_files = now,
                    needed = need,
                    "the file descriptor limit is below what the connection caps need: connections will fail \
                     before the caps refuse them (raise LimitNOFILE, or lower --max-connections)"
                );
            }
            now
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read or raise the file descriptor limit");
            0
        }
    }
}
