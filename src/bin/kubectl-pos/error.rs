//! The failures `kubectl pos` reports on purpose, each with its exit code; anything else
//! (the API unreachable, a denied request) is an `anyhow` error with context, exit 1.

use std::process::ExitCode;

/// Exit codes: 0 done; 1 an error, or a `--wait`ed Job that failed; 2 a usage error
/// (clap's own); 3 refused because a Job of the same CronJob is still running.
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_BUSY: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("no pos-mesh Deployments in namespace `{namespace}` (label selector `{selector}`)")]
    NoDeployments { namespace: String, selector: String },

    #[error("no CronJob in namespace `{namespace}` matches label selector `{selector}`")]
    NoCronJob { namespace: String, selector: String },

    #[error(
        "{count} CronJobs in namespace `{namespace}` match label selector `{selector}`: \
         {listing}; choose one with --instance <release>"
    )]
    AmbiguousCronJob {
        namespace: String,
        selector: String,
        count: usize,
        listing: String,
    },

    #[error(
        "Job `{job}` of CronJob `{cronjob}` is still running; wait for it or pass --force \
         to start another anyway"
    )]
    JobActive { cronjob: String, job: String },

    #[error("CronJob `{cronjob}` has no container named `batch` to pass --date to")]
    NoBatchContainer { cronjob: String },

    #[error("CronJob `{cronjob}` has no spec.jobTemplate.spec")]
    NoJobTemplate { cronjob: String },
}

impl PluginError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::JobActive { .. } => EXIT_BUSY,
            _ => EXIT_FAILURE,
        }
    }
}

/// The exit code for an error that ends the command.
pub fn exit_code(error: &anyhow::Error) -> ExitCode {
    ExitCode::from(
        error
            .downcast_ref::<PluginError>()
            .map_or(EXIT_FAILURE, PluginError::exit_code),
    )
}
