//! The `users` table: the only code that writes it.

use pos_common::{ApiResult, storage::Db, time::now_millis};

use crate::provider::ProviderProfile;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub phone: String,
    pub provider: String,
    pub provider_subject: String,
    pub store_id: Option<i64>,
    pub pending_store_name: Option<String>,
    pub pending_pos_grade: Option<i64>,
    pub pending_settlement_day: Option<i64>,
    pub created_at: i64,
}

/// The store a signup asked for, kept until it exists.
#[derive(Debug, Clone)]
pub struct StoreRequest {
    pub store_name: String,
    pub pos_grade: i32,
    pub settlement_day: i32,
}

impl UserRow {
    /// The store request of an unfinished signup.
    pub fn pending_store(&self) -> Option<StoreRequest> {
        Some(StoreRequest {
            store_name: self.pending_store_name.clone()?,
            pos_grade: i32::try_from(self.pending_pos_grade?).ok()?,
            settlement_day: i32::try_from(self.pending_settlement_day?).ok()?,
        })
    }
}

macro_rules! user_columns {
    () => {
        "id, email, name, phone, provider, provider_subject, store_id, pending_store_name, \
         pending_pos_grade, pending_settlement_day, created_at"
    };
}

#[derive(Clone, Debug)]
pub struct UserRepo {
    db: Db,
}

impl UserRepo {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn by_id(&self, id: i64) -> ApiResult<Option<UserRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?)
    }

    /// The user a provider identity belongs to: how logins find their account (an
    /// e-mail address can change at the provider; the subject cannot).
    pub async fn by_identity(&self, provider: &str, subject: &str) -> ApiResult<Option<UserRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE provider = $1 AND provider_subject = $2"
        ))
        .bind(provider)
        .bind(subject)
        .fetch_optional(self.db.pool())
        .await?)
    }

    pub async fn by_email(&self, email: &str) -> ApiResult<Option<UserRow>> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(self.db.pool())
        .await?)
    }

    /// Inserts a user awaiting their store; `None` when the e-mail or the provider
    /// identity is already taken.
    pub async fn insert_pending(
        &self,
        profile: &ProviderProfile,
        store: &StoreRequest,
    ) -> ApiResult<Option<UserRow>> {
        Ok(sqlx::query_as(concat!(
            "INSERT INTO users (email, name, phone, provider, provider_subject, \
             pending_store_name, pending_pos_grade, pending_settlement_day, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING ",
            user_columns!()
        ))
        .bind(profile.email.as_str())
        .bind(profile.name.as_str())
        .bind(profile.phone_digits())
        .bind(&profile.provider)
        .bind(&profile.subject)
        .bind(&store.store_name)
        .bind(i64::from(store.pos_grade))
        .bind(i64::from(store.settlement_day))
        .bind(now_millis())
        .fetch_optional(self.db.pool())
        .await?)
    }

    /// Records the store of a user whose signup had not finished.
    pub async fn complete_store(&self, user_id: i64, store_id: i64) -> ApiResult<()> {
        sqlx::query(
            "UPDATE users SET store_id = $1, pending_store_name = NULL, pending_pos_grade = NULL, \
             pending_settlement_day = NULL WHERE id = $2",
        )
        .bind(store_id)
        .bind(user_id)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}
