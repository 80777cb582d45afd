//! Peak resident memory of processes (`VmHWM` in `/proc/<pid>/status`): what a role
//! needed at most during a run, the figure its Kubernetes memory request and limit are
//! set from.

/// The most memory process `pid` has held resident so far, in KiB; `None` when it is gone.
pub fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The peak of each labelled process, by label (the largest of a label's processes).
pub fn peaks(processes: &[(String, u32)]) -> Vec<(String, u64)> {
    let mut by_label: std::collections::BTreeMap<&str, u64> = Default::default();
    for (label, pid) in processes {
        if let Some(kib) = peak_kib(*pid) {
            let peak = by_label.entry(label).or_default();
            *peak = (*peak).max(kib);
        }
    }
    by_label
        .into_iter()
        .map(|(label, kib)| (label.to_string(), kib))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_a_peak() {
        let kib = super::peak_kib(std::process::id()).expect("our own status");
        assert!(kib > 0);
        // Another test thread may grow the peak in between: it never shrinks.
        let peaks = super::peaks(&[("bench".into(), std::process::id())]);
        assert_eq!(peaks.len(), 1);
        assert_eq!(peaks[0].0, "bench");
        assert!(peaks[0].1 >= kib, "{peaks:?} after {kib}");
    }
}
