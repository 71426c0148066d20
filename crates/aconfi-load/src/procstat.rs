//! Server CPU time and memory, read from /proc.

use std::path::PathBuf;

/// CPU time (user + system) and resident memory of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// utime + stime, in microseconds.
    pub cpu_us: u64,
    /// Resident set size, in KiB.
    pub rss_kib: u64,
}

/// Reads /proc/<pid>/stat and /proc/<pid>/status.
pub fn sample(pid: u32, clk_tck: u64) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(PathBuf::from(format!("/proc/{pid}/stat"))).ok()?;
    let status = std::fs::read_to_string(PathBuf::from(format!("/proc/{pid}/status"))).ok()?;
    Some(ProcSample { cpu_us: cpu_us_from_stat(&stat, clk_tck)?, rss_kib: rss_kib_from_status(&status)? })
}

/// utime + stime from a /proc/<pid>/stat line. The command name in field 2
/// may contain spaces and parentheses, so fields are counted from the last ')'.
pub fn cpu_us_from_stat(stat: &str, clk_tck: u64) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / clk_tck.max(1))
}

/// VmRSS in KiB from /proc/<pid>/status.
pub fn rss_kib_from_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`), 100 if unknown.
pub fn clk_tck() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_time_even_with_odd_process_names() {
        let stat = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 130 0 0 20 0 8 0 100 0 0";
        // utime 250 + stime 130 ticks at 100 Hz = 3.8 s.
        assert_eq!(cpu_us_from_stat(stat, 100), Some(3_800_000));
    }

    #[test]
    fn parses_rss() {
        let status = "Name:\tjanus\nVmPeak:\t  200000 kB\nVmRSS:\t   51234 kB\nThreads:\t9\n";
        assert_eq!(rss_kib_from_status(status), Some(51234));
    }

    #[test]
    fn resident_memory_follows_what_a_process_touches() {
        let before = sample(std::process::id(), clk_tck()).expect("own /proc entry");
        // 64 MiB, every page written, so it is resident.
        let block = vec![1u8; 64 << 20];
        let after = sample(std::process::id(), clk_tck()).expect("own /proc entry");
        std::hint::black_box(&block);
        let grown = after.rss_kib.saturating_sub(before.rss_kib);
        assert!(grown >= 48 << 10, "VmRSS grew by {grown} KiB, not about 64 MiB: {before:?} → {after:?}");
    }
}
