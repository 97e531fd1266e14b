//! Resident memory read from `/proc/<pid>/status` (Linux).
//!
//! `VmHWM` is the kernel's high-water mark of a process's resident set, so
//! polling it until the process exits gives its peak RSS without any tool
//! that a fresh machine may lack. The caveat: the last reading is the one
//! taken before the process exited (a zombie has no memory fields), so
//! growth in the final polling interval would be missed; the processes
//! measured here allocate their peak long before they exit.

use std::fs;

/// A `kB` field of `/proc/<pid>/status` (or `/proc/self/status`), in KiB;
/// `None` if the process is gone or has no such field.
fn status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let text = fs::read_to_string(path).ok()?;
    parse_kib(&text, field)
}

/// The value of `field:` in a status text, e.g. `VmHWM:    9876 kB`.
fn parse_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Peak resident set of process `pid` so far, in KiB.
pub fn peak_kib(pid: u32) -> Option<u64> {
    status_kib(Some(pid), "VmHWM")
}

/// Current resident set of this process, in KiB.
pub fn own_rss_kib() -> Option<u64> {
    status_kib(None, "VmRSS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_fields() {
        let text = "Name:\tnode\nVmPeak:\t  20000 kB\nVmHWM:\t    9876 kB\nVmRSS:\t 9000 kB\n";
        assert_eq!(parse_kib(text, "VmHWM"), Some(9876));
        assert_eq!(parse_kib(text, "VmRSS"), Some(9000));
        assert_eq!(parse_kib(text, "VmSwap"), None);
    }

    #[test]
    fn reads_own_memory() {
        let rss = own_rss_kib();
        assert!(rss.is_some_and(|kib| kib > 0), "{rss:?}");
        assert!(peak_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }
}
