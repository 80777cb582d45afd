//! The user service: owners sign up and log in with a social provider (Kakao-compatible
//! OAuth2 with PKCE, or a provider access token), signup creates their store through the
//! store service, and tokens are EdDSA JWTs with rotating refresh families.

pub mod api;
pub mod domain;
pub mod provider;
pub mod repo;
pub mod sessions;
pub mod tokens;

pub use api::UserApi;
pub use repo::UserRepo;

use pos_common::storage::{Db, Migrations, StorageError};

/// The user service's migrations for both backends, tracked in `user_migrations`.
pub fn migrations() -> Migrations {
    Migrations {
        table: "user_migrations",
        postgres: sqlx::migrate!("./migrations/postgres"),
        sqlite: sqlx::migrate!("./migrations/sqlite"),
    }
}

pub async fn migrate(db: &Db) -> Result<(), StorageError> {
    db.migrate(migrations()).await
}
