//! What the user service keeps — owners, found by their provider identity, with the
//! store an unfinished signup asked for — as one trait, [`UserStorage`]. Each database
//! engine implements it in its own crate (`pos-user-postgres`, `pos-user-sqlite`), and
//! one contract test suite runs against both. A stored value this build does not know
//! is an error, never a default.

pub mod model;
pub mod stored;

use async_trait::async_trait;
use pos_common::{
    domain::{StoreId, StoreRequest, UserId},
    storage::StorageError,
};

pub use model::{Email, Phone, ProviderProfile, User, UserName};

pub type StorageResult<T> = Result<T, StorageError>;

/// The user service's storage.
#[async_trait]
pub trait UserStorage: Send + Sync + 'static {
    async fn by_id(&self, id: UserId) -> StorageResult<Option<User>>;

    /// The owner a provider identity belongs to.
    async fn by_identity(&self, provider: &str, subject: &str) -> StorageResult<Option<User>>;

    async fn by_email(&self, email: &Email) -> StorageResult<Option<User>>;

    /// Records a new owner awaiting their store; `None` when the e-mail address or the
    /// provider identity is already taken.
    async fn insert_pending(
        &self,
        profile: &ProviderProfile,
        store: &StoreRequest,
    ) -> StorageResult<Option<User>>;

    /// Records the store of an owner whose signup had not finished.
    async fn complete_store(&self, user: UserId, store: StoreId) -> StorageResult<()>;
}
