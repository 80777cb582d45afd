//! CPU time of processes, from `/proc/<pid>/stat` (user + system, in clock ticks of
//! 10 ms). Throughput on a shared machine swings with its neighbours; the CPU a call
//! costs does not, so it says more steadily what a change saved, and where the time goes.

use std::{collections::HashMap, time::Duration};

/// CPU time used by process `pid` so far; `None` when it is gone.
pub fn of_process(pid: u32) -> Option<Duration> {
    read(&format!("/proc/{pid}/stat"))
}

/// CPU time used by this process so far.
pub fn of_self() -> Duration {
    read("/proc/self/stat").unwrap_or_default()
}

fn read(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces; the fields after it are space-separated.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// CPU time of a set of processes at one moment, each labelled with what it is part of
/// (a role, `postgres`, `bench`).
#[derive(Debug, Default, Clone)]
pub struct Snapshot(HashMap<u32, (String, Duration)>);

impl Snapshot {
    pub fn take(processes: &[(String, u32)]) -> Self {
        let mut snapshot: HashMap<u32, (String, Duration)> = processes
            .iter()
            .filter_map(|(label, pid)| Some((*pid, (label.clone(), of_process(*pid)?))))
            .collect();
        snapshot.insert(std::process::id(), ("bench".to_string(), of_self()));
        Self(snapshot)
    }

    /// CPU used since `earlier`, per label, largest first. A process that started in
    /// between counts whole.
    pub fn since(&self, earlier: &Snapshot) -> Vec<(String, Duration)> {
        let mut by_label: HashMap<&str, Duration> = HashMap::new();
        for (pid, (label, now)) in &self.0 {
            let before = earlier.0.get(pid).map_or(Duration::ZERO, |(_, cpu)| *cpu);
            *by_label.entry(label).or_default() += now.saturating_sub(before);
        }
        let mut used: Vec<(String, Duration)> = by_label
            .into_iter()
            .map(|(label, cpu)| (label.to_string(), cpu))
            .collect();
        used.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_some_cpu_and_groups_add_up() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(0u64);
        }
        let pid = std::process::id();
        assert!(of_process(pid).is_some());
        let before = Snapshot::take(&[]);
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(100) {
            std::hint::black_box(0u64);
        }
        let used = Snapshot::take(&[]).since(&before);
        assert_eq!(used.len(), 1);
        assert_eq!(used[0].0, "bench");
        assert!(used[0].1 >= Duration::from_millis(50), "{used:?}");
    }
}
