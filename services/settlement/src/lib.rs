//! The settlement role: the product sales and settlements the aggregation batch writes,
//! kept in the settlement's own storage ([`SettlementStorage`], one implementation per
//! database engine). The role's gRPC API is not written yet.

use std::sync::Arc;

use pos_common::storage::{Database, Migrations};
use pos_settlement_storage::SettlementStorage;

/// The settlement role's migrations for both engines, tracked in `settlement_migrations`.
pub static MIGRATIONS: Migrations = Migrations {
    table: "settlement_migrations",
    postgres: pos_settlement_postgres::migrator,
    sqlite: pos_settlement_sqlite::migrator,
};

/// The settlement's storage on whichever engine `database` is.
pub fn open_storage(database: &Database) -> Arc<dyn SettlementStorage> {
    match database {
        Database::Postgres(pool) => Arc::new(pos_settlement_postgres::PgSettlementStorage::new(
            pool.clone(),
        )),
        Database::Sqlite(pool) => Arc::new(pos_settlement_sqlite::SqliteSettlementStorage::new(
            pool.clone(),
        )),
    }
}
