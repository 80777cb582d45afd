//! Process metrics read from /proc when scraped, named as Prometheus's own clients name
//! them: `process_resident_memory_bytes`, `process_cpu_seconds_total` (user and system
//! time) and `process_open_fds`. Off Linux, or when /proc cannot be read, a metric is
//! left out of the scrape rather than reported as zero.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
    registry::{Registry, Unit},
};

/// Registers the process collector in `registry`.
pub fn register(registry: &mut Registry) {
    registry.register_collector(Box::new(ProcessCollector));
}

/// Reads /proc/self on every scrape.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(bytes) = resident_memory_bytes() {
            let gauge = ConstGauge::new(bytes);
            let metric = encoder.encode_descriptor(
                "process_resident_memory",
                "Resident memory size in bytes.",
                Some(&Unit::Bytes),
                gauge.metric_type(),
            )?;
            gauge.encode(metric)?;
        }
        if let Some(seconds) = cpu_seconds() {
            let counter = ConstCounter::new(seconds);
            let metric = encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent in seconds.",
                Some(&Unit::Seconds),
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        if let Some(fds) = open_fds() {
            let gauge = ConstGauge::new(fds);
            let metric = encoder.encode_descriptor(
                "process_open_fds",
                "Number of open file descriptors.",
                None,
                gauge.metric_type(),
            )?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

/// Resident pages (`/proc/self/statm`, second field) times the page size.
#[cfg(target_os = "linux")]
fn resident_memory_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * i64::try_from(rustix::param::page_size()).ok()?)
}

/// utime + stime of `/proc/self/stat` (fields 14 and 15), in clock ticks.
#[cfg(target_os = "linux")]
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_seconds_from(&stat, rustix::param::clock_ticks_per_second())
}

/// Parses `stat`: the command name (field 2) is in parentheses and may hold spaces, so
/// fields are counted from after its closing parenthesis (field 3 on).
fn cpu_seconds_from(stat: &str, ticks_per_second: u64) -> Option<f64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    (ticks_per_second > 0).then(|| (user + system) as f64 / ticks_per_second as f64)
}

/// Entries of `/proc/self/fd` (the directory being read counts as one, as in other
/// Prometheus clients).
#[cfg(target_os = "linux")]
fn open_fds() -> Option<i64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    i64::try_from(entries.count()).ok()
}

#[cfg(not(target_os = "linux"))]
fn resident_memory_bytes() -> Option<i64> {
    None
}

#[cfg(not(target_os = "linux"))]
fn cpu_seconds() -> Option<f64> {
    None
}

#[cfg(not(target_os = "linux"))]
fn open_fds() -> Option<i64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_counted_after_a_command_name_with_spaces() {
        let stat = "42 (pos serve) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1 2 3";
        assert_eq!(cpu_seconds_from(stat, 100), Some(3.0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_scrape_reports_memory_cpu_and_open_files() {
        let mut registry = Registry::default();
        register(&mut registry);
        let text = crate::metrics::encode(&registry).expect("encode");
        assert!(
            text.contains("# TYPE process_resident_memory_bytes gauge"),
            "{text}"
        );
        assert!(text.contains("process_cpu_seconds_total "), "{text}");
        assert!(text.contains("process_open_fds "), "{text}");
        let rss = text
            .lines()
            .find_map(|line| line.strip_prefix("process_resident_memory_bytes "))
            .and_then(|value| value.parse::<f64>().ok())
            .expect("an RSS sample");
        assert!(rss > 0.0);
    }
}
