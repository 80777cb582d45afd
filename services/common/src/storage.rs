//! Opening a service's database: PostgreSQL in production, SQLite for `pos up`, chosen by
//! URL. Each service defines its storage as a trait with one implementation per engine
//! (checked queries in its own crate); this module only hands out the pool of the right
//! engine, applies a service's migrations, and classifies database failures.
//!
//! Every service keeps its own migrations per engine and its own migration table, so
//! several services can share one database or each have their own.

use std::{path::Path, str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::{
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};

use crate::{ApiError, error::Reason};

/// Which database engine serves a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Sqlite,
}

impl Engine {
    pub fn of_url(url: &str) -> Result<Self, StorageError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else {
            Err(StorageError::UnsupportedUrl)
        }
    }
}

/// A connection pool of one engine.
#[derive(Clone, Debug)]
pub enum Database {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A pooled connection idle for longer than this is pinged before it is handed out.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(10);

/// Checks that a connection which sat in the pool for a while is still alive (the
/// database may have restarted, a firewall may have dropped it), so a stale connection is
/// replaced instead of failing a call. One that was in use a moment ago is handed out as
/// it is: pinging every connection on every acquire (sqlx's default) cost a round trip per
/// statement or transaction, several per order. Should a busy connection break anyway, the
/// call fails UNAVAILABLE (retryable) and sqlx drops the connection.
async fn ping_if_idle<C: sqlx::Connection>(
    conn: &mut C,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    if meta.idle_for >= PING_WHEN_IDLE_FOR {
        conn.ping().await?;
    }
    Ok(true)
}

/// A service's migrations for both engines.
pub struct Migrations {
    /// The table that records this service's applied migrations, e.g. `store_migrations`.
    pub table: &'static str,
    pub postgres: fn() -> Migrator,
    pub sqlite: fn() -> Migrator,
}

impl Database {
    /// Connects to `url`. A SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        match Engine::of_url(url)? {
            Engine::Postgres => {
                let options = PgConnectOptions::from_str(url).map_err(StorageError::Connect)?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move { ping_if_idle(conn, meta).await })
                    })
                    .connect_with(options)
                    .await
                    .map_err(StorageError::Connect)?;
                Ok(Self::Postgres(pool))
            }
            Engine::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(StorageError::Connect)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    // One writer at a time is SQLite's model; a few readers share the WAL.
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move { ping_if_idle(conn, meta).await })
                    })
                    .connect_with(options)
                    .await
                    .map_err(StorageError::Connect)?;
                Ok(Self::Sqlite(pool))
            }
        }
    }

    /// Connects to the SQLite file `file` in `dir`, creating both.
    pub async fn sqlite_in_dir(dir: &Path, file: &str) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::Connect(sqlx::Error::Io(e)))?;
        Self::connect(&format!("sqlite://{}", dir.join(file).display())).await
    }

    pub fn engine(&self) -> Engine {
        match self {
            Self::Postgres(_) => Engine::Postgres,
            Self::Sqlite(_) => Engine::Sqlite,
        }
    }

    /// Applies a service's migrations for this engine.
    pub async fn migrate(&self, migrations: &Migrations) -> Result<(), StorageError> {
        match self {
            Self::Postgres(pool) => {
                let mut migrator = (migrations.postgres)();
                migrator.dangerous_set_table_name(migrations.table);
                migrator.run(pool).await?;
            }
            Self::Sqlite(pool) => {
                let mut migrator = (migrations.sqlite)();
                migrator.dangerous_set_table_name(migrations.table);
                migrator.run(pool).await?;
            }
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }

    /// The latest migration of `migrations` this database has applied, and the latest
    /// this build has: a role on an older schema than it needs must not serve.
    pub async fn schema_versions(
        &self,
        migrations: &Migrations,
    ) -> Result<(Option<i64>, Option<i64>), StorageError> {
        let statement = sqlx::AssertSqlSafe(format!(
            "SELECT max(version) FROM {} WHERE success",
            migrations.table
        ));
        let (applied, needed) = match self {
            Self::Postgres(pool) => (
                sqlx::query_scalar::<_, Option<i64>>(statement)
                    .fetch_one(pool)
                    .await,
                (migrations.postgres)().iter().map(|m| m.version).max(),
            ),
            Self::Sqlite(pool) => (
                sqlx::query_scalar::<_, Option<i64>>(statement)
                    .fetch_one(pool)
                    .await,
                (migrations.sqlite)().iter().map(|m| m.version).max(),
            ),
        };
        // No migrations table at all: nothing applied.
        let applied = match applied {
            Ok(version) => version,
            Err(sqlx::Error::Database(_)) => None,
            Err(err) => return Err(err.into()),
        };
        Ok((applied, needed))
    }

    /// Whether the database answers a statement now (readiness).
    pub async fn ping(&self) -> Result<(), StorageError> {
        match self {
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
        }
        Ok(())
    }
}

/// Why storage failed. Callers see domain outcomes (not found, out of stock) as values,
/// never as errors: an error here is always the database's or the data's fault.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database URL must start with postgres://, postgresql:// or sqlite:")]
    UnsupportedUrl,
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database cannot be reached right now (retryable).
    #[error("the database is unreachable")]
    Unavailable(#[source] sqlx::Error),
    /// Lock contention: a deadlock victim, a serialization failure, SQLite still busy
    /// after its timeout (retryable).
    #[error("the database is busy")]
    Contention(#[source] sqlx::Error),
    /// A stored value this build does not understand: a newer schema, or corruption.
    #[error("stored {column} holds a value this build does not know: {value:?}")]
    UnknownValue { column: &'static str, value: String },
    /// Rows contradict each other (a row a constraint promised is missing).
    #[error("storage is inconsistent: {0}")]
    Inconsistent(&'static str),
    #[error("query failed")]
    Query(#[source] sqlx::Error),
}

impl StorageError {
    /// A stored value that does not decode.
    pub fn unknown(column: &'static str, value: impl std::fmt::Display) -> Self {
        Self::UnknownValue {
            column,
            value: value.to_string(),
        }
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StorageError::Unavailable(err),
            sqlx::Error::Database(ref db) if is_contention(db.as_ref()) => {
                StorageError::Contention(err)
            }
            other => StorageError::Query(other),
        }
    }
}

/// Unreachable or busy databases are retryable UNAVAILABLE; anything else is INTERNAL,
/// with the cause kept for the log.
impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Unavailable(_) | StorageError::Contention(_) => {
                ApiError::unavailable("database", err)
            }
            other => ApiError::new(Reason::Internal, "internal error").caused_by(other),
        }
    }
}

impl From<StorageError> for tonic::Status {
    fn from(err: StorageError) -> Self {
        ApiError::from(err).into()
    }
}

/// Whether a database error is lock contention, read by the engine that raised it: the
/// error's own type says which engine that is, never the shape of its code (PostgreSQL's
/// SQLSTATEs can be all digits — 42501, 22021 — and would read as SQLite codes). An error
/// of neither engine is not contention.
fn is_contention(db: &dyn sqlx::error::DatabaseError) -> bool {
    if let Some(postgres) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        postgres_contention(Some(postgres.code()))
    } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        sqlite_contention(db.code().as_deref())
    } else {
        false
    }
}

/// PostgreSQL deadlock (40P01), serialization failure (40001), lock not available (55P03).
fn postgres_contention(sqlstate: Option<&str>) -> bool {
    matches!(sqlstate, Some("40P01" | "40001" | "55P03"))
}

/// SQLite BUSY (5) and LOCKED (6), with their extended codes (the low byte is the
/// primary code).
fn sqlite_contention(code: Option<&str>) -> bool {
    code.and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

/// SQLite has no timestamp type: its tables keep instants as UTC Unix milliseconds.
pub fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// The instant of stored UTC Unix milliseconds.
pub fn from_millis(column: &'static str, millis: i64) -> Result<DateTime<Utc>, StorageError> {
    DateTime::from_timestamp_millis(millis).ok_or_else(|| StorageError::unknown(column, millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_contention_is_retryable() {
        for code in ["40P01", "40001", "55P03"] {
            assert!(postgres_contention(Some(code)), "{code}");
        }
        // Numeric SQLSTATEs are not SQLite codes: 42501 & 0xff is 5, yet it is a
        // permission error.
        for code in ["23505", "42501", "22021", "22022", "5"] {
            assert!(!postgres_contention(Some(code)), "{code}");
        }
        for code in ["5", "517", "6", "262"] {
            assert!(sqlite_contention(Some(code)), "{code}");
        }
        for code in ["19", "2067", "40P01"] {
            assert!(!sqlite_contention(Some(code)), "{code}");
        }
    }

    #[test]
    fn unknown_values_are_internal_errors_that_keep_their_cause() {
        let err: ApiError = StorageError::unknown("products.category", "DESSERT").into();
        assert_eq!(err.reason(), Reason::Internal);
        let cause = std::error::Error::source(&err).expect("cause");
        assert!(cause.to_string().contains("DESSERT"));
    }
}
