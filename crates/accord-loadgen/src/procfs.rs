//! CPU time and memory from `/proc` (no `unsafe`, no libc).

use std::fs;

/// Clock ticks per second for `utime`/`stime` in `/proc/*/stat`. Linux has
/// reported USER_HZ = 100 on every mainstream architecture for decades.
const TICKS_PER_SECOND: u64 = 100;

/// `utime + stime` from a `/proc/.../stat` line, in microseconds.
fn cpu_us_from_stat(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces; fields after the last
    // ')' are space separated: state is field 3, utime 14, stime 15.
    let after = stat.rsplit_once(')')?.1;
    let mut fields = after.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / TICKS_PER_SECOND)
}

/// CPU time of the whole process (all threads, live and exited), µs.
pub fn process_cpu_us() -> u64 {
    fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| cpu_us_from_stat(&s))
        .unwrap_or(0)
}

/// CPU time of the live threads whose name starts with one of `prefixes`,
/// µs, one sum per prefix.
pub fn threads_cpu_us(prefixes: &[&str]) -> Vec<u64> {
    let mut sums = vec![0u64; prefixes.len()];
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return sums;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let Ok(comm) = fs::read_to_string(path.join("comm")) else {
            continue;
        };
        let comm = comm.trim_end();
        for (prefix, sum) in prefixes.iter().zip(sums.iter_mut()) {
            if comm.starts_with(prefix)
                && let Some(us) = fs::read_to_string(path.join("stat"))
                    .ok()
                    .and_then(|s| cpu_us_from_stat(&s))
            {
                *sum += us;
            }
        }
    }
    sums
}

/// `(VmRSS, VmHWM)` of this process in KiB.
pub fn rss_kib() -> (u64, u64) {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak RSS (VmHWM) to the current RSS, so each run reports its
/// own peak. Returns false where the kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_name() {
        let line = "42 (a b) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(cpu_us_from_stat(line), Some(3_000_000));
    }

    #[test]
    fn reads_own_figures() {
        let _ = process_cpu_us();
        let (rss, _) = rss_kib();
        assert!(rss > 0);
    }
}
