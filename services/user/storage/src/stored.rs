//! What the engine implementations share: turning a stored owner into the domain — a
//! value this build does not know is an error naming its column, never a default.

use chrono::{DateTime, Utc};
use pos_common::{
    domain::{Grade, SettlementDay, StoreId, StoreName, StoreRequest, UserId},
    storage::StorageError,
};

use crate::{Email, Phone, ProviderProfile, StorageResult, User, UserName};

/// A user row, its instant and pending grade already decoded by the engine (each keeps
/// the grade its own way).
pub struct StoredUser {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// Digits, or "" when the provider shared none.
    pub phone: String,
    pub provider: String,
    pub provider_subject: String,
    pub store_id: Option<i64>,
    pub pending_store_name: Option<String>,
    pub pending_grade: Option<Grade>,
    pub pending_settlement_day: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl StoredUser {
    pub fn decode(self) -> StorageResult<User> {
        let unknown = |column, value: &dyn std::fmt::Display| StorageError::unknown(column, value);
        let pending_store = match (
            self.pending_store_name,
            self.pending_grade,
            self.pending_settlement_day,
        ) {
            (Some(name), Some(grade), Some(day)) => Some(StoreRequest {
                name: StoreName::from_stored(name),
                grade,
                settlement_day: i32::try_from(day)
                    .ok()
                    .and_then(|day| SettlementDay::parse(day).ok())
                    .ok_or_else(|| unknown("users.pending_settlement_day", &day))?,
            }),
            (None, None, None) => None,
            _ => {
                return Err(StorageError::Inconsistent(
                    "a pending store request is incomplete",
                ));
            }
        };
        Ok(User {
            id: UserId::from_stored(self.id),
            profile: ProviderProfile {
                email: Email::parse(&self.email)
                    .map_err(|_| unknown("users.email", &self.email))?,
                name: UserName::parse(&self.name).map_err(|_| unknown("users.name", &self.name))?,
                phone: match self.phone.as_str() {
                    "" => None,
                    digits => {
                        Some(Phone::parse(digits).map_err(|_| unknown("users.phone", &digits))?)
                    }
                },
                provider: self.provider,
                subject: self.provider_subject,
            },
            store_id: self.store_id.map(StoreId::from_stored),
            pending_store,
            created_at: self.created_at,
        })
    }
}
