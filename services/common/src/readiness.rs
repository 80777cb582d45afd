//! Readiness: whether a role can do its work now, as Kubernetes' readiness probe asks
//! the gRPC health service. A role whose database or Redis does not answer reports
//! NOT_SERVING (its replicas are taken out of their Service until it does again), as does
//! a role whose database has not applied every migration this build has (a rollout ahead
//! of its migration Job), and a role that is stopping, so callers go elsewhere while it
//! drains.

use std::time::Duration;

use crate::{
    ephemeral::SharedEphemeral,
    storage::{Database, Migrations},
};

/// How often the dependencies are asked, and how long each may take to answer.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What a role needs to answer its calls.
#[derive(Clone, Default)]
pub struct Dependencies {
    pub database: Option<Database>,
    /// The role's migrations: its database must have applied the latest of them.
    pub migrations: Option<&'static Migrations>,
    pub shared_state: Option<SharedEphemeral>,
}

/// A dependency that did not answer.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("the database does not answer: {0}")]
    Database(String),
    #[error("Redis does not answer: {0}")]
    SharedState(String),
    #[error(
        "the database schema is older than this build needs (migration {applied} applied, \
         {needed} needed): run `pos migrate` for this role"
    )]
    SchemaBehind { applied: i64, needed: i64 },
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
            if let Some(migrations) = self.migrations {
                let versions =
                    tokio::time::timeout(CHECK_TIMEOUT, database.schema_versions(migrations));
                match versions.await {
                    Ok(Ok((applied, Some(needed)))) if applied.unwrap_or(0) < needed => {
                        return Err(NotReady::SchemaBehind {
                            applied: applied.unwrap_or(0),
                            needed,
                        });
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return Err(NotReady::Database(err.to_string())),
                    Err(_) => return Err(NotReady::Database("timed out".into())),
                }
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
