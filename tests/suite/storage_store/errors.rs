//! Database failures are classified by the engine that raised them, from real errors of
//! real databases: PostgreSQL's all-digit SQLSTATEs (22021 a NUL byte, 42501 permission
//! denied) are not SQLite's BUSY, and only lock contention is retryable.

use std::{str::FromStr, time::Duration};

use pos_common::{
    ApiError, Reason,
    storage::{Database, StorageError},
};
use sqlx::{
    ConnectOptions, Connection, Executor,
    sqlite::{SqliteConnectOptions, SqliteJournalMode},
};

use crate::support::{Engine, TestDb};

fn classify(err: sqlx::Error) -> StorageError {
    StorageError::from(err)
}

fn is_retryable(err: StorageError) -> bool {
    ApiError::from(err).reason() == Reason::DependencyUnavailable
}

#[tokio::test]
async fn postgres_errors_with_numeric_codes_are_not_contention() {
    let (test_db, database) = TestDb::create(Engine::Postgres).await;
    let Database::Postgres(pool) = &database else {
        panic!("a PostgreSQL database");
    };
    // 22021: a string PostgreSQL cannot hold (NUL), as a store name once reached it.
    let nul = sqlx::query("SELECT $1::text")
        .bind("Ca\0fe")
        .fetch_one(pool)
        .await
        .expect_err("PostgreSQL refuses NUL");
    let raise = |code: &'static str| async move {
        pool.execute(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '{code}'; END $$"
        )))
        .await
        .expect_err("raised")
    };
    for (err, code) in [
        (nul, "22021"),
        (raise("42501").await, "42501"),
        (raise("22022").await, "22022"),
    ] {
        let db_code = err
            .as_database_error()
            .and_then(|db| db.code())
            .map(|c| c.into_owned());
        assert_eq!(db_code.as_deref(), Some(code));
        let classified = classify(err);
        assert!(
            matches!(classified, StorageError::Query(_)),
            "{code}: {classified:?}"
        );
        assert!(!is_retryable(classified), "{code}");
    }
    for code in ["40P01", "40001", "55P03"] {
        let classified = classify(raise(code).await);
        assert!(
            matches!(classified, StorageError::Contention(_)),
            "{code}: {classified:?}"
        );
        assert!(is_retryable(classified), "{code}");
    }
    database.close().await;
    test_db.drop_database().await;
}

#[tokio::test]
async fn sqlite_busy_is_contention_and_other_sqlite_errors_are_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteConnectOptions::from_str(&format!(
        "sqlite://{}",
        dir.path().join("busy.db").display()
    ))
    .expect("options")
    .create_if_missing(true)
    .journal_mode(SqliteJournalMode::Wal);
    let mut holder = options.connect().await.expect("connect");
    holder
        .execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        .await
        .expect("create");
    holder.execute("BEGIN IMMEDIATE").await.expect("write lock");
    // Another writer that does not wait: SQLITE_BUSY (5) at once.
    let mut impatient = options
        .clone()
        .busy_timeout(Duration::ZERO)
        .connect()
        .await
        .expect("connect");
    let busy = impatient
        .execute("INSERT INTO t (id) VALUES (1)")
        .await
        .expect_err("busy");
    let code = busy
        .as_database_error()
        .and_then(|db| db.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("5"));
    let classified = classify(busy);
    assert!(
        matches!(classified, StorageError::Contention(_)),
        "{classified:?}"
    );
    assert!(is_retryable(classified));
    holder.execute("COMMIT").await.expect("commit");

    // A constraint violation (2067, SQLITE_CONSTRAINT_UNIQUE) is not contention.
    impatient
        .execute("INSERT INTO t (id) VALUES (1)")
        .await
        .expect("insert");
    let unique = impatient
        .execute("INSERT INTO t (id) VALUES (1)")
        .await
        .expect_err("duplicate");
    let classified = classify(unique);
    assert!(
        matches!(classified, StorageError::Query(_)),
        "{classified:?}"
    );
    impatient.close().await.ok();
    holder.close().await.ok();
}
