//! Readiness: whether a role can do its work now, as Kubernetes' readiness probe asks
//! the gRPC health service. A role whose database or Redis does not answer reports
//! NOT_SERVING (its replicas are taken out of their Service until it does again), and so
//! does a role that is stopping, so callers go elsewhere while it drains.

use std::time::Duration;

use crate::{ephemeral::SharedEphemeral, storage::Database};

/// How often the dependencies are asked, and how long each may take to answer.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What a role needs to answer its calls.
#[derive(Clone, Default)]
pub struct Dependencies {
    pub database: Option<Database>,
    pub shared_state: Option<SharedEphemeral>,
}

/// A dependency that did not answer.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("the database does not answer: {0}")]
    Database(String),
    #[error("Redis does not answer: {0}")]
    SharedState(String),
}

impl Dependencies {
    /// Asks each dependency once, each within [`CHECK_TIMEOUT`].
    pub async fn check(&self) -> Result<(), NotReady> {
        if let Some(database) = &self.database {
            match tokio::time::timeout(CHECK_TIMEOUT, database.ping()).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => return Err(NotReady::Database(err.to_string())),
                Err(_) => return Err(NotReady::Database("timed out".into())),
            }
        }
        if let Some(state) = &self.shared_state {
            // Any read answers whether Redis is there; the key need not exist.
            let key = ["readiness-probe".to_string()];
            let probe = state.exists_any(&key);
            match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => return Err(NotReady::SharedState(err.to_string())),
                Err(_) => return Err(NotReady::SharedState("timed out".into())),
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.database.is_none() && self.shared_state.is_none()
    }
}
