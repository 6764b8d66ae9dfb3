//! What Linux says about a process (`/proc`, `getrusage`): CPU time and context switches,
//! for the per-request costs the benchmarks print beside their figures.

use std::time::Duration;

/// CPU time (user + system) a process has used so far, from `/proc` (Linux).
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Clock ticks are 100 per second on every Linux configuration we run on.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// CPU time of a process and its descendants: its own, its children's that
/// it waited for (`cutime`, `cstime`: a PostgreSQL backend that exited), and
/// every live descendant's, from `/proc` (Linux).
pub fn tree_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = (11..=14)
        .map(|i| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    let mut total = Duration::from_millis(ticks * 10);
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let parent = std::fs::read_to_string(format!("/proc/{child}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string))
            })
            .and_then(|p| p.parse::<u32>().ok());
        if parent == Some(pid) {
            total += tree_cpu(child).unwrap_or_default();
        }
    }
    Some(total)
}

/// Context switches (voluntary + involuntary) of all of a process's live
/// threads so far: what `perf stat -e context-switches` counts, without perf.
pub fn context_switches(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(status) = std::fs::read_to_string(task.ok()?.path().join("status")) else {
            continue; // the thread exited meanwhile
        };
        for line in status.lines() {
            if let Some(n) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += n.trim().parse::<u64>().ok()?;
            }
        }
    }
    Some(total)
}

/// Context switches of this process so far, including its threads that have
/// exited (`getrusage`; `/proc` forgets a thread when it exits).
pub fn own_context_switches() -> Option<u64> {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    Some((usage.ru_nvcsw + usage.ru_nivcsw) as u64)
}

/// Bytes a process caused to be written to storage (`write_bytes` of
/// `/proc/PID/io`: what reached the disk, fsyncs and write-back included).
pub fn disk_writes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        // A process of one sleeping thread has switched at least once. (Not
        // this process: the test harness's other threads end while it runs,
        // and an ended thread's switches leave the sum.)
        let mut sleeper = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while context_switches(sleeper.id()).unwrap_or(0) == 0 {
            assert!(std::time::Instant::now() < deadline, "no switch read");
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        let own = own_context_switches().expect("getrusage");
        std::thread::spawn(|| std::thread::sleep(Duration::from_millis(5)))
            .join()
            .unwrap();
        assert!(own_context_switches().expect("getrusage") > own);
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {}
        assert!(process_cpu(me).expect("cpu") > Duration::ZERO);
    }
}
