//! The access-token deny-list of `pos up` in a SQLite file of its data directory, so a
//! restart forgets no revocation (a logged-out token must not work again because the
//! process restarted). Every entry is kept in memory, which is what checking a token
//! (every call does) reads, and written through to the file. Memory is updated first:
//! if the file cannot be written the denial still holds until the process ends, and the
//! caller hears of the failure. One process owns the file, which is what `pos up` is; a
//! deployment keeps the deny-list in Redis.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use pos_common::{
    auth::{DenyList, DenyListError},
    clock::SharedClock,
    storage::{Database, StorageError, to_millis},
};
use sqlx::{SqlitePool, migrate::Migrator};

/// The file's migrations.
pub fn migrator() -> Migrator {
    sqlx::migrate!("./migrations")
}

/// The table that records the file's applied migrations.
const MIGRATIONS_TABLE: &str = "deny_list_migrations";

pub struct SqliteDenyList {
    pool: SqlitePool,
    clock: SharedClock,
    /// Every unexpired key and when it expires (UTC Unix milliseconds), as in the file.
    denied: Mutex<HashMap<String, i64>>,
}

impl SqliteDenyList {
    /// Opens (creating) `file` in `dir`, drops what has expired and loads the rest.
    pub async fn open(dir: &Path, file: &str, clock: SharedClock) -> Result<Self, StorageError> {
        let Database::Sqlite(pool) = Database::sqlite_in_dir(dir, file).await? else {
            unreachable!("a file in a directory is a SQLite database");
        };
        let mut migrator = migrator();
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&pool).await?;
        let now = to_millis(clock.now());
        sqlx::query!("DELETE FROM denied WHERE expires_at <= ?", now)
            .execute(&pool)
            .await?;
        let denied = sqlx::query!("SELECT key, expires_at FROM denied")
            .fetch_all(&pool)
            .await?
            .into_iter()
            .map(|row| (row.key, row.expires_at))
            .collect();
        Ok(Self {
            pool,
            clock,
            denied: Mutex::new(denied),
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        // The map is only ever replaced entry by entry, so a panic elsewhere cannot have
        // left it half-written.
        self.denied.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl DenyList for SqliteDenyList {
    async fn deny(&self, key: &str, ttl: Duration) -> Result<(), DenyListError> {
        let now = to_millis(self.clock.now());
        let ttl_millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let wanted = now.saturating_add(ttl_millis);
        // A key denied twice stays denied for the longer of the two, in memory and file.
        let expires_at = {
            let mut entries = self.entries();
            entries.retain(|_, until| *until > now);
            let until = entries.entry(key.to_string()).or_insert(wanted);
            *until = (*until).max(wanted);
            *until
        };
        sqlx::query!(
            "INSERT INTO denied (key, expires_at) VALUES (?, ?)
             ON CONFLICT (key) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
            key,
            expires_at
        )
        .execute(&self.pool)
        .await
        .map_err(StorageError::from)?;
        sqlx::query!("DELETE FROM denied WHERE expires_at <= ?", now)
            .execute(&self.pool)
            .await
            .map_err(StorageError::from)?;
        Ok(())
    }

    async fn any_denied(&self, keys: &[String]) -> Result<bool, DenyListError> {
        let now = to_millis(self.clock.now());
        let entries = self.entries();
        Ok(keys
            .iter()
            .any(|key| entries.get(key).is_some_and(|until| *until > now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pos_common::clock::{ManualClock, system};

    #[tokio::test]
    async fn denials_survive_reopening_until_they_expire() {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = ManualClock::new(chrono::Utc::now());
        let open = || SqliteDenyList::open(dir.path(), "revocations.db", clock.clone());
        let keys = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();

        let list = open().await.expect("open");
        assert!(!list.any_denied(&keys(&["a", "b"])).await.expect("check"));
        list.deny("a", Duration::from_secs(60)).await.expect("deny");
        list.deny("b", Duration::from_secs(3600))
            .await
            .expect("deny");
        // Denying again for less does not shorten it.
        list.deny("b", Duration::from_secs(1)).await.expect("deny");
        assert!(list.any_denied(&keys(&["x", "a"])).await.expect("check"));
        list.close().await;

        let list = open().await.expect("reopen");
        assert!(list.any_denied(&keys(&["a"])).await.expect("check"));
        assert!(list.any_denied(&keys(&["b"])).await.expect("check"));
        assert!(!list.any_denied(&keys(&["c"])).await.expect("check"));
        clock.advance(Duration::from_secs(120));
        assert!(!list.any_denied(&keys(&["a"])).await.expect("check"));
        assert!(list.any_denied(&keys(&["b"])).await.expect("check"));
        list.close().await;

        // Expired entries are not loaded, nor kept in the file.
        let list = open().await.expect("reopen");
        assert!(!list.any_denied(&keys(&["a"])).await.expect("check"));
        assert!(list.any_denied(&keys(&["b"])).await.expect("check"));
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM denied")
            .fetch_one(&list.pool)
            .await
            .expect("count");
        assert_eq!(rows, 1);
        clock.advance(Duration::from_secs(3600));
        assert!(!list.any_denied(&keys(&["b"])).await.expect("check"));
        list.close().await;
    }

    /// A denial the file cannot take still holds in this process, and the caller learns
    /// of the failure: a deny-list must not fail open.
    #[tokio::test]
    async fn a_denial_the_file_refuses_still_holds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let list = SqliteDenyList::open(dir.path(), "revocations.db", system())
            .await
            .expect("open");
        list.pool.close().await;
        assert!(list.deny("c", Duration::from_secs(60)).await.is_err());
        assert!(list.any_denied(&["c".to_string()]).await.expect("check"));
    }
}
