//! The CronJobs are the schedule `pos up` runs: the chart's `files/schedule.yaml` is what
//! `pos batch schedule` prints, and every rendering has one CronJob per entry, at its
//! time, in the stores' zone, never two at once; sharded, each run is an Indexed Job.

use pos_batch::schedule::SCHEDULE;
use serde_json::{Value, json};

use super::{Case, cases, chart_dir, every_rendering, kind, name, render};

#[test]
fn the_charts_schedule_is_the_binarys() {
    let file = std::fs::read_to_string(chart_dir().join("files/schedule.yaml"))
        .expect("helm/pos-mesh/files/schedule.yaml");
    assert_eq!(
        file,
        pos::batch::schedule_yaml(),
        "the chart's schedule differs from the binary's: run `cargo xtask manifests`"
    );
}

#[test]
fn one_cronjob_per_scheduled_job_in_the_stores_zone() {
    for (case, objects) in every_rendering() {
        let crons = kind(&objects, "CronJob");
        assert_eq!(crons.len(), SCHEDULE.len(), "{case}");
        for entry in SCHEDULE {
            let cron = crons
                .iter()
                .find(|c| name(c).ends_with(&format!("-{}", entry.name())))
                .unwrap_or_else(|| panic!("{case}: no CronJob for {}", entry.name()));
            let spec = &cron["spec"];
            let at = format!("{case}: CronJob {}", name(cron));
            assert_eq!(spec["schedule"], entry.cron(), "{at}");
            assert_eq!(spec["timeZone"], "Asia/Seoul", "{at}");
            assert_eq!(spec["concurrencyPolicy"], "Forbid", "{at}");
            for field in [
                "startingDeadlineSeconds",
                "successfulJobsHistoryLimit",
                "failedJobsHistoryLimit",
            ] {
                assert!(spec[field].is_u64(), "{at}: {field}");
            }
            let job = &spec["jobTemplate"]["spec"];
            for field in ["activeDeadlineSeconds", "ttlSecondsAfterFinished"] {
                assert!(job[field].is_u64(), "{at}: {field}");
            }
            assert!(
                job["backoffLimit"].is_u64() || job["backoffLimitPerIndex"].is_u64(),
                "{at}: a backoff limit"
            );
            let container = &job["template"]["spec"]["containers"][0];
            assert_eq!(container["name"], "batch", "{at}");
            assert_eq!(
                container["args"],
                json!([
                    "batch",
                    "run",
                    "--job",
                    entry.job.as_str(),
                    "--term",
                    entry.term.as_str()
                ]),
                "{at}"
            );
            let labels = &cron["metadata"]["labels"];
            assert_eq!(labels["pos-mesh.io/job"], entry.job.as_str(), "{at}");
            assert_eq!(labels["pos-mesh.io/term"], entry.term.as_str(), "{at}");
        }
    }
}

/// The value of `variable` in `container`'s env.
fn env<'a>(container: &'a Value, variable: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == variable)
        .map(|e| &e["value"])
}

#[test]
fn a_sharded_batch_runs_as_indexed_jobs() {
    let production = cases()
        .into_iter()
        .find(|case| case.name == "production")
        .expect("the production example");
    for version in super::KUBE_VERSIONS {
        let objects = render(&production, version, &[]);
        for cron in kind(&objects, "CronJob") {
            let job = &cron["spec"]["jobTemplate"]["spec"];
            let at = format!("production at {version}: {}", name(cron));
            assert_eq!(job["completionMode"], "Indexed", "{at}");
            assert_eq!(job["completions"], 4, "{at}");
            assert_eq!(job["parallelism"], 4, "{at}");
            assert!(
                job["backoffLimitPerIndex"].is_u64(),
                "{at}: per-index retries"
            );
            assert!(job["backoffLimit"].is_null(), "{at}");
            let container = &job["template"]["spec"]["containers"][0];
            assert_eq!(env(container, "POS_SHARD_COUNT"), Some(&json!("4")), "{at}");
        }
    }
    // Unsharded, a run is one pod.
    let default = Case {
        name: "default".into(),
        values: None,
    };
    for cron in kind(&render(&default, "1.30.0", &[]), "CronJob") {
        let job = &cron["spec"]["jobTemplate"]["spec"];
        assert!(job["completionMode"].is_null(), "{}", name(cron));
        assert!(job["backoffLimit"].is_u64(), "{}", name(cron));
        let container = &job["template"]["spec"]["containers"][0];
        assert_eq!(env(container, "POS_SHARD_COUNT"), None, "{}", name(cron));
    }
}

#[test]
fn the_zone_comes_from_values() {
    let default = Case {
        name: "default".into(),
        values: None,
    };
    let objects = render(&default, "1.30.0", &["config.timeZone=Europe/Berlin"]);
    for cron in kind(&objects, "CronJob") {
        assert_eq!(cron["spec"]["timeZone"], "Europe/Berlin", "{}", name(cron));
    }
    let config = &kind(&objects, "ConfigMap")[0];
    assert_eq!(config["data"]["POS_TIME_ZONE"], "Europe/Berlin");
}
