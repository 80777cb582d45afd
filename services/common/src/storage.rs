//! One storage handle for PostgreSQL (production) and SQLite (embedded default), chosen
//! by URL, through sqlx's `Any` driver so each query is written once. Queries use `$N`
//! placeholders, which both backends accept. Each service keeps its own migrations per
//! backend and its own migration table, so several services can share one database.

use std::{path::Path, time::Duration};

use sqlx::{
    AnyPool, Executor,
    any::{AnyPoolOptions, install_default_drivers},
    migrate::Migrator,
};

/// Which database engine a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Self, StorageError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            Err(StorageError::UnsupportedUrl)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database URL must start with postgres://, postgresql:// or sqlite:")]
    UnsupportedUrl,
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A service's migrations for both backends.
pub struct Migrations {
    /// The table that records this service's applied migrations, e.g. `store_migrations`.
    pub table: &'static str,
    pub postgres: Migrator,
    pub sqlite: Migrator,
}

/// A connection pool and the backend behind it.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// Connects to `url`. A SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        install_default_drivers();
        let backend = Backend::of_url(url)?;
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            Backend::Postgres => options.max_connections(16).connect(url).await,
            Backend::Sqlite => {
                options
                    // One writer at a time is SQLite's model; a few readers share WAL.
                    .max_connections(4)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&sqlite_url_creating_file(url))
                    .await
            }
        }
        .map_err(StorageError::Connect)?;
        Ok(Self { pool, backend })
    }

    /// Connects to a SQLite file in `dir`, creating the directory.
    pub async fn sqlite_in_dir(dir: &Path, file: &str) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::Connect(sqlx::Error::Io(e)))?;
        Self::connect(&format!("sqlite://{}", dir.join(file).display())).await
    }

    /// Applies the service's migrations for this backend.
    pub async fn migrate(&self, migrations: Migrations) -> Result<(), StorageError> {
        let mut migrator = match self.backend {
            Backend::Postgres => migrations.postgres,
            Backend::Sqlite => migrations.sqlite,
        };
        migrator.dangerous_set_table_name(migrations.table);
        migrator.run(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Adds `mode=rwc` so a missing SQLite file is created rather than refused.
fn sqlite_url_creating_file(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}
