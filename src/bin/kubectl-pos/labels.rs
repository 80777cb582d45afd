//! The labels and annotations the pos-mesh chart puts on its objects, and the label
//! selectors built from them.

pub const PART_OF: &str = "app.kubernetes.io/part-of";
pub const COMPONENT: &str = "app.kubernetes.io/component";
pub const INSTANCE: &str = "app.kubernetes.io/instance";
pub const JOB: &str = "pos-mesh.io/job";
pub const TERM: &str = "pos-mesh.io/term";
pub const MESH: &str = "pos-mesh";
pub const BATCH: &str = "batch";

/// What `kubectl create job --from=cronjob/…` marks its Jobs with.
pub const INSTANTIATE: &str = "cronjob.kubernetes.io/instantiate";
pub const MANUAL: &str = "manual";

/// Every object of the mesh.
pub fn mesh() -> String {
    format!("{PART_OF}={MESH}")
}

/// The mesh's batch Jobs and CronJobs.
pub fn batch() -> String {
    format!("{PART_OF}={MESH},{COMPONENT}={BATCH}")
}

/// The CronJob of one job and term, in one Helm release if given.
pub fn cronjob(job: &str, term: &str, instance: Option<&str>) -> String {
    let mut selector = format!("{},{JOB}={job},{TERM}={term}", batch());
    if let Some(instance) = instance {
        selector.push_str(&format!(",{INSTANCE}={instance}"));
    }
    selector
}
