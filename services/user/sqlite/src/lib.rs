//! The user service's storage on SQLite (`pos up`): compile-time checked queries
//! (`sqlx::query!`, offline data in `.sqlx/`); instants are UTC Unix milliseconds and a
//! pending store's grade is the API's enum number, as the table has always kept them.

use async_trait::async_trait;
use pos_common::{
    clock::SharedClock,
    domain::{Grade, StoreId, StoreRequest, UserId},
    storage::{StorageError, from_millis, to_millis},
};
use pos_user_storage::{
    Email, ProviderProfile, StorageResult, User, UserStorage, stored::StoredUser,
};
use sqlx::{SqlitePool, migrate::Migrator};

/// This engine's migrations (tracked per service; see `pos_user::MIGRATIONS`).
pub fn migrator() -> Migrator {
    sqlx::migrate!("./migrations")
}

#[derive(Clone)]
pub struct SqliteUserStorage {
    pool: SqlitePool,
    clock: SharedClock,
}

impl SqliteUserStorage {
    pub fn new(pool: SqlitePool, clock: SharedClock) -> Self {
        Self { pool, clock }
    }
}

struct UserRow {
    id: i64,
    email: String,
    name: String,
    phone: String,
    provider: String,
    provider_subject: String,
    store_id: Option<i64>,
    pending_store_name: Option<String>,
    pending_pos_grade: Option<i64>,
    pending_settlement_day: Option<i64>,
    created_at: i64,
}

impl UserRow {
    fn decode(self) -> StorageResult<User> {
        // The API's enum number, as this table has always kept it.
        let pending_grade = self
            .pending_pos_grade
            .map(|grade| {
                i32::try_from(grade)
                    .ok()
                    .and_then(|grade| Grade::parse(grade).ok())
                    .ok_or_else(|| StorageError::unknown("users.pending_pos_grade", grade))
            })
            .transpose()?;
        StoredUser {
            id: self.id,
            email: self.email,
            name: self.name,
            phone: self.phone,
            provider: self.provider,
            provider_subject: self.provider_subject,
            store_id: self.store_id,
            pending_store_name: self.pending_store_name,
            pending_grade,
            pending_settlement_day: self.pending_settlement_day,
            created_at: from_millis("users.created_at", self.created_at)?,
        }
        .decode()
    }
}

#[async_trait]
impl UserStorage for SqliteUserStorage {
    async fn by_id(&self, id: UserId) -> StorageResult<Option<User>> {
        let id = id.get();
        sqlx::query_as!(
            UserRow,
            "SELECT id, email, name, phone, provider, provider_subject, store_id,
                    pending_store_name, pending_pos_grade, pending_settlement_day, created_at
             FROM users WHERE id = ?1",
            id,
        )
        .fetch_optional(&self.pool)
        .await?
        .map(UserRow::decode)
        .transpose()
    }

    async fn by_identity(&self, provider: &str, subject: &str) -> StorageResult<Option<User>> {
        sqlx::query_as!(
            UserRow,
            "SELECT id, email, name, phone, provider, provider_subject, store_id,
                    pending_store_name, pending_pos_grade, pending_settlement_day, created_at
             FROM users WHERE provider = ?1 AND provider_subject = ?2",
            provider,
            subject,
        )
        .fetch_optional(&self.pool)
        .await?
        .map(UserRow::decode)
        .transpose()
    }

    async fn by_email(&self, email: &Email) -> StorageResult<Option<User>> {
        let email = email.as_str();
        sqlx::query_as!(
            UserRow,
            "SELECT id, email, name, phone, provider, provider_subject, store_id,
                    pending_store_name, pending_pos_grade, pending_settlement_day, created_at
             FROM users WHERE email = ?1",
            email,
        )
        .fetch_optional(&self.pool)
        .await?
        .map(UserRow::decode)
        .transpose()
    }

    async fn insert_pending(
        &self,
        profile: &ProviderProfile,
        store: &StoreRequest,
    ) -> StorageResult<Option<User>> {
        let (email, name, phone) = (
            profile.email.as_str(),
            profile.name.as_str(),
            profile.phone_digits(),
        );
        let (store_name, grade, day) = (
            store.name.as_str(),
            store.grade.to_proto() as i64,
            i64::from(store.settlement_day.get()),
        );
        let now = to_millis(self.clock.now());
        sqlx::query_as!(
            UserRow,
            r#"INSERT INTO users (email, name, phone, provider, provider_subject,
                                  pending_store_name, pending_pos_grade, pending_settlement_day,
                                  created_at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING
               RETURNING id AS "id!", email AS "email!", name AS "name!", phone AS "phone!",
                         provider AS "provider!", provider_subject AS "provider_subject!",
                         store_id, pending_store_name, pending_pos_grade,
                         pending_settlement_day, created_at AS "created_at!""#,
            email,
            name,
            phone,
            profile.provider,
            profile.subject,
            store_name,
            grade,
            day,
            now,
        )
        .fetch_optional(&self.pool)
        .await?
        .map(UserRow::decode)
        .transpose()
    }

    async fn complete_store(&self, user: UserId, store: StoreId) -> StorageResult<()> {
        let (store, user) = (store.get(), user.get());
        sqlx::query!(
            "UPDATE users SET store_id = ?1, pending_store_name = NULL, pending_pos_grade = NULL,
                              pending_settlement_day = NULL
             WHERE id = ?2",
            store,
            user,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
