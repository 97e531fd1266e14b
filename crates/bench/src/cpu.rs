//! CPU time of a process read from `/proc/<pid>/stat` (Linux).
//!
//! Fields 14 and 15 of that file are the user and system time of all the
//! process's threads so far, in clock ticks of `USER_HZ`, which Linux fixes
//! at 100 per second for user space on every architecture the bench runs
//! on. As with [`crate::rss`], the last reading is the one taken before the
//! process exited, so its final polling interval is missed.

use std::fs;

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`).
const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system time of process `pid` so far, in seconds; `None` if it
/// is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// utime + stime of a stat line, in seconds. The command name (field 2) is
/// in parentheses and may hold spaces or parentheses itself, so fields are
/// counted from the last `)`.
fn parse_stat(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_user_and_system_ticks() {
        let line = "4242 (tokio (rt) w) S 1 4242 4242 0 -1 4194304 1500 0 0 0 250 37 0 0 20 0 \
                    9 0 123456 30000000 2300 18446744073709551615";
        assert_eq!(parse_stat(line), Some(2.87));
        assert_eq!(parse_stat("4242 (node) S 1 2"), None);
    }

    #[test]
    fn reads_own_cpu_time() {
        // Burn a little CPU so at least one tick is on the clock.
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let seconds = cpu_seconds(std::process::id());
        assert!(seconds.is_some_and(|s| s > 0.0), "{seconds:?}");
    }
}
