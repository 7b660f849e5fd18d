//! CPU time and resident memory of another process, from `/proc` (Linux).

use std::fs;

/// Kernel clock ticks per second for `/proc/PID/stat` times (`getconf CLK_TCK`; 100 on Linux).
const CLOCK_TICKS_PER_SEC: u64 = 100;

#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User plus system CPU time, in microseconds.
    pub cpu_us: u64,
    /// Of which user time (the process's own code; the rest is the kernel's work for it).
    pub user_us: u64,
    /// Resident set size, in bytes.
    pub rss_bytes: u64,
}

/// Reads the process's CPU time and RSS; `None` if it cannot be read.
pub fn usage(pid: u32) -> Option<Usage> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let ticks: u64 = user + fields.get(12)?.parse::<u64>().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(Usage {
        cpu_us: ticks * 1_000_000 / CLOCK_TICKS_PER_SEC,
        user_us: user * 1_000_000 / CLOCK_TICKS_PER_SEC,
        rss_bytes: rss_kib * 1024,
    })
}

/// The sum over `pids`; `None` if the list is empty or one of them cannot be read.
pub fn total_usage(pids: &[u32]) -> Option<Usage> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().try_fold(
        Usage {
            cpu_us: 0,
            user_us: 0,
            rss_bytes: 0,
        },
        |sum, &pid| {
            let u = usage(pid)?;
            Some(Usage {
                cpu_us: sum.cpu_us + u.cpu_us,
                user_us: sum.user_us + u.user_us,
                rss_bytes: sum.rss_bytes + u.rss_bytes,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    /// Reading our own process gives a plausible RSS and CPU time.
    #[test]
    fn reads_own_process() {
        let usage = super::usage(std::process::id()).expect("readable on Linux");
        assert!(usage.rss_bytes > 1 << 20);
        let _ = usage.cpu_us;
    }
}
