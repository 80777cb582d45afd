//! The store service: a store per owner, its ordering tablets, its menu with price
//! history, and stock reservations for orders. It alone writes its tables.

pub mod api;
mod convert;
pub mod domain;
pub mod internal_api;
pub mod repo;

pub use api::StoreApi;
pub use internal_api::StoreInternalApi;
pub use repo::StoreRepo;

use pos_common::storage::{Db, Migrations, StorageError};

/// The store service's migrations for both backends, tracked in `store_migrations`.
pub fn migrations() -> Migrations {
    Migrations {
        table: "store_migrations",
        postgres: sqlx::migrate!("./migrations/postgres"),
        sqlite: sqlx::migrate!("./migrations/sqlite"),
    }
}

/// Applies the store service's migrations to `db`.
pub async fn migrate(db: &Db) -> Result<(), StorageError> {
    db.migrate(migrations()).await
}
