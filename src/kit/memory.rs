//! Peak memory of this process: the high-water mark of its resident set (`VmHWM` in
//! `/proc/self/status`, Linux), for `run.json` and `--stats`. Elsewhere, or when the file
//! cannot be read, it is "unavailable", never a guess.

use serde::Serialize;

/// The peak resident set so far, as `run.json` records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PeakMemory {
    /// `None`: unavailable on this platform.
    pub resident_bytes: Option<u64>,
    /// Where the number comes from (`VmHWM` of `/proc/self/status`), or why there is none.
    pub source: &'static str,
}

/// The process's peak resident set so far.
pub fn peak() -> PeakMemory {
    match std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| vm_hwm(&s))
    {
        Some(bytes) => PeakMemory {
            resident_bytes: Some(bytes),
            source: "VmHWM of /proc/self/status",
        },
        None => PeakMemory {
            resident_bytes: None,
            source: "unavailable (no VmHWM in /proc/self/status on this platform)",
        },
    }
}

/// The `--stats` line: `peak memory       12.3 MiB (resident)`, or "unavailable".
pub fn stats_line() -> String {
    match peak().resident_bytes {
        Some(b) => format!(
            "peak memory       {:.1} MiB (resident)\n",
            b as f64 / 1048576.0
        ),
        None => "peak memory       unavailable on this platform\n".to_string(),
    }
}

/// `VmHWM:   1234 kB` in a `/proc/<pid>/status` text, in bytes (the kernel's "kB" is KiB).
fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut words = line["VmHWM:".len()..].split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    (words.next()? == "kB").then_some(kib.checked_mul(1024)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_high_water_mark() {
        let status =
            "Name:\tglassbox\nVmPeak:\t  20000 kB\nVmHWM:\t    1536 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(vm_hwm(status), Some(1536 * 1024));
        assert_eq!(vm_hwm("VmRSS:\t 1000 kB\n"), None);
        assert_eq!(vm_hwm("VmHWM:\t 12 MB\n"), None);
        assert_eq!(vm_hwm("VmHWM:\t x kB\n"), None);
    }

    /// On Linux this process has a resident set of at least a page and well under a TiB.
    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_plausible_peak() {
        let b = peak().resident_bytes.expect("Linux has VmHWM");
        assert!((4096..1 << 40).contains(&b), "{b}");
        assert!(stats_line().contains("MiB (resident)"));
    }
}
