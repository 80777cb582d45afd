//! The user service's storage on PostgreSQL (production): compile-time checked queries
//! (`sqlx::query!`, offline data in `.sqlx/`) and `timestamptz` instants.

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use pos_common::{
    clock::SharedClock,
    domain::{Grade, StoreId, StoreRequest, UserId},
    storage::StorageError,
};
use pos_user_storage::{
    Email, ProviderProfile, StorageResult, User, UserStorage, stored::StoredUser,
};
use sqlx::{PgPool, migrate::Migrator};

/// This engine's migrations (tracked per service; see `pos_user::MIGRATIONS`).
pub fn migrator() -> Migrator {
    sqlx::migrate!("./migrations")
}

#[derive(Clone)]
pub struct PgUserStorage {
    pool: PgPool,
    clock: SharedClock,
}

impl PgUserStorage {
    pub fn new(pool: PgPool, clock: SharedClock) -> Self {
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
    pending_pos_grade: Option<String>,
    pending_settlement_day: Option<i32>,
    created_at: DateTime<Utc>,
}

impl UserRow {
    fn decode(self) -> StorageResult<User> {
        let pending_grade = self
            .pending_pos_grade
            .map(|grade| {
                Grade::from_name(&grade)
                    .ok_or_else(|| StorageError::unknown("users.pending_pos_grade", &grade))
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
            pending_settlement_day: self.pending_settlement_day.map(i64::from),
            created_at: self.created_at,
        }
        .decode()
    }
}

#[async_trait]
impl UserStorage for PgUserStorage {
    async fn by_id(&self, id: UserId) -> StorageResult<Option<User>> {
        sqlx::query_as!(
            UserRow,
            "SELECT id, email, name, phone, provider, provider_subject, store_id,
                    pending_store_name, pending_pos_grade, pending_settlement_day, created_at
             FROM users WHERE id = $1",
            id.get(),
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
             FROM users WHERE provider = $1 AND provider_subject = $2",
            provider,
            subject,
        )
        .fetch_optional(&self.pool)
        .await?
        .map(UserRow::decode)
        .transpose()
    }

    async fn by_email(&self, email: &Email) -> StorageResult<Option<User>> {
        sqlx::query_as!(
            UserRow,
            "SELECT id, email, name, phone, provider, provider_subject, store_id,
                    pending_store_name, pending_pos_grade, pending_settlement_day, created_at
             FROM users WHERE email = $1",
            email.as_str(),
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
        sqlx::query_as!(
            UserRow,
            "INSERT INTO users (email, name, phone, provider, provider_subject,
                                pending_store_name, pending_pos_grade, pending_settlement_day,
                                created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING
             RETURNING id, email, name, phone, provider, provider_subject, store_id,
                       pending_store_name, pending_pos_grade, pending_settlement_day, created_at",
            profile.email.as_str(),
            profile.name.as_str(),
            profile.phone_digits(),
            profile.provider,
            profile.subject,
            store.name.as_str(),
            store.grade.as_str(),
            store.settlement_day.get(),
            self.clock.now().trunc_subsecs(6),
        )
        .fetch_optional(&self.pool)
        .await?
        .map(UserRow::decode)
        .transpose()
    }

    async fn complete_store(&self, user: UserId, store: StoreId) -> StorageResult<()> {
        sqlx::query!(
            "UPDATE users SET store_id = $1, pending_store_name = NULL, pending_pos_grade = NULL,
                              pending_settlement_day = NULL
             WHERE id = $2",
            store.get(),
            user.get(),
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
