//! The contract of `UserStorage`: the same cases against the PostgreSQL and the SQLite
//! implementation, straight through the trait.

use std::sync::Arc;

use pos_common::{
    clock,
    domain::{Grade, SettlementDay, StoreId, StoreName, StoreRequest, UserId},
    storage::{Database, StorageError},
};
use pos_user::storage::{Email, Phone, ProviderProfile, UserName, UserStorage};
use sqlx::Executor;

use crate::support::{Engine, TestDb};

crate::on_both_engines!(
    owners_are_found_by_identity_id_and_email,
    an_email_or_identity_is_taken_once,
    a_pending_store_is_kept_until_completed,
    unknown_stored_values_are_errors_not_defaults,
);

async fn open(engine: Engine) -> (TestDb, Database, Arc<dyn UserStorage>) {
    let (test_db, database) = TestDb::create(engine).await;
    database
        .migrate(&pos_user::MIGRATIONS)
        .await
        .expect("migrate");
    let storage = pos_user::open_storage(&database, clock::system());
    (test_db, database, storage)
}

fn profile(subject: &str, email: &str, phone: Option<&str>) -> ProviderProfile {
    ProviderProfile {
        provider: "kakao".into(),
        subject: subject.into(),
        email: Email::parse(email).expect("email"),
        name: UserName::parse("Kim").expect("name"),
        phone: phone.map(|p| Phone::parse(p).expect("phone")),
    }
}

fn wanted() -> StoreRequest {
    StoreRequest {
        name: StoreName::parse("Kim's Kitchen").expect("name"),
        grade: Grade::Silver,
        settlement_day: SettlementDay::parse(15).expect("day"),
    }
}

async fn owners_are_found_by_identity_id_and_email(engine: Engine) {
    let (test_db, database, storage) = open(engine).await;
    let kim = profile("4242", "kim@example.com", Some("010-1234-5678"));
    let user = storage
        .insert_pending(&kim, &wanted())
        .await
        .expect("insert")
        .expect("new");
    assert_eq!(user.profile, kim);
    assert_eq!(user.store_id, None);
    assert_eq!(
        storage.by_identity("kakao", "4242").await.expect("read"),
        Some(user.clone())
    );
    assert_eq!(
        storage.by_id(user.id).await.expect("read"),
        Some(user.clone())
    );
    assert_eq!(
        storage
            .by_email(&Email::parse("KIM@example.com").expect("email"))
            .await
            .expect("read"),
        Some(user.clone())
    );
    assert_eq!(
        storage.by_identity("dev", "4242").await.expect("read"),
        None
    );
    assert_eq!(
        storage.by_id(UserId::from_stored(999)).await.expect("read"),
        None
    );
    // No phone shared: none kept.
    let quiet = profile("7", "quiet@example.com", None);
    let user = storage
        .insert_pending(&quiet, &wanted())
        .await
        .expect("insert")
        .expect("new");
    assert_eq!(user.profile.phone, None);
    database.close().await;
    test_db.drop_database().await;
}

async fn an_email_or_identity_is_taken_once(engine: Engine) {
    let (test_db, database, storage) = open(engine).await;
    let kim = profile("4242", "kim@example.com", None);
    assert!(
        storage
            .insert_pending(&kim, &wanted())
            .await
            .expect("insert")
            .is_some()
    );
    for taken in [
        kim.clone(),
        profile("other-subject", "kim@example.com", None),
        profile("4242", "other@example.com", None),
    ] {
        assert_eq!(
            storage
                .insert_pending(&taken, &wanted())
                .await
                .expect("insert"),
            None
        );
    }
    database.close().await;
    test_db.drop_database().await;
}

async fn a_pending_store_is_kept_until_completed(engine: Engine) {
    let (test_db, database, storage) = open(engine).await;
    let user = storage
        .insert_pending(&profile("1", "a@example.com", None), &wanted())
        .await
        .expect("insert")
        .expect("new");
    assert_eq!(user.pending_store, Some(wanted()));
    storage
        .complete_store(user.id, StoreId::from_stored(77))
        .await
        .expect("complete");
    let done = storage.by_id(user.id).await.expect("read").expect("user");
    assert_eq!(
        (done.store_id, done.pending_store),
        (Some(StoreId::from_stored(77)), None)
    );
    database.close().await;
    test_db.drop_database().await;
}

async fn unknown_stored_values_are_errors_not_defaults(engine: Engine) {
    let (test_db, database, storage) = open(engine).await;
    let user = storage
        .insert_pending(&profile("1", "a@example.com", None), &wanted())
        .await
        .expect("insert")
        .expect("new");
    // A grade this build does not know, as a newer release could have written it.
    match &database {
        Database::Postgres(pool) => {
            pool.execute("ALTER TABLE users DROP CONSTRAINT users_pending_pos_grade_check")
                .await
                .expect("drop check");
            sqlx::query("UPDATE users SET pending_pos_grade = 'PLATINUM' WHERE id = $1")
                .bind(user.id.get())
                .execute(pool)
                .await
                .expect("update");
        }
        Database::Sqlite(pool) => {
            sqlx::query("UPDATE users SET pending_pos_grade = 9 WHERE id = ?1")
                .bind(user.id.get())
                .execute(pool)
                .await
                .expect("update");
        }
    }
    let err = storage.by_id(user.id).await.expect_err("an unknown grade");
    assert!(
        matches!(&err, StorageError::UnknownValue { column, .. } if *column == "users.pending_pos_grade"),
        "{err:?}"
    );
    database.close().await;
    test_db.drop_database().await;
}

/// PostgreSQL databases made before the native types keep their owners, and an
/// unfinished signup's grade (kept as the API's enum number) becomes its name.
#[tokio::test]
async fn postgres_rows_of_the_first_schema_survive_the_move_to_native_types() {
    let (test_db, database) = TestDb::create(Engine::Postgres).await;
    let Database::Postgres(pool) = &database else {
        panic!("a PostgreSQL database");
    };
    let mut first = (pos_user::MIGRATIONS.postgres)();
    first.dangerous_set_table_name(pos_user::MIGRATIONS.table);
    first.run_to(1, pool).await.expect("the first migration");
    sqlx::query(
        "INSERT INTO users (email, name, phone, provider, provider_subject, pending_store_name,
                            pending_pos_grade, pending_settlement_day, created_at)
         VALUES ('old@example.com', 'Old', '01012345678', 'kakao', '42', 'Old Cafe', 3, 20,
                 1733011200123)",
    )
    .execute(pool)
    .await
    .expect("an old row");
    database
        .migrate(&pos_user::MIGRATIONS)
        .await
        .expect("the rest");
    let storage = pos_user::open_storage(&database, clock::system());
    let user = storage
        .by_identity("kakao", "42")
        .await
        .expect("read")
        .expect("user");
    assert_eq!(
        user.pending_store,
        Some(StoreRequest {
            name: StoreName::parse("Old Cafe").expect("name"),
            grade: Grade::Gold,
            settlement_day: SettlementDay::parse(20).expect("day"),
        })
    );
    assert_eq!(
        user.created_at,
        chrono::DateTime::from_timestamp_millis(1_733_011_200_123).expect("instant")
    );
    assert_eq!(
        user.profile.phone.as_ref().map(Phone::as_str),
        Some("01012345678")
    );
    database.close().await;
    test_db.drop_database().await;
}
