//! The store role: a store per owner, its ordering tablets, its menu with price history,
//! and stock reservations for orders. It alone writes its tables, through
//! [`StoreStorage`] (one implementation per database engine).

pub mod api;
mod convert;
pub mod devices;
pub mod internal_api;

use std::sync::Arc;

use async_trait::async_trait;
use pos_common::{
    clock::SharedClock,
    role::{
        GrpcServices, KeySource, MAX_MESSAGE_BYTES, Missing, Needs, PeerNeeds, Requirement, Role,
        RoleContext, Served, StartError,
    },
    storage::{Database, Migrations},
};
use pos_proto::v1::{
    store_internal_service_server::StoreInternalServiceServer,
    store_service_server::StoreServiceServer,
};
pub use pos_store_storage as storage;
use pos_store_storage::StoreStorage;

pub use api::StoreApi;
pub use internal_api::StoreInternalApi;

/// The store role's migrations for both engines, tracked in `store_migrations`.
pub static MIGRATIONS: Migrations = Migrations {
    table: "store_migrations",
    postgres: pos_store_postgres::migrator,
    sqlite: pos_store_sqlite::migrator,
};

/// The store's storage on whichever engine `database` is.
pub fn open_storage(database: &Database, clock: SharedClock) -> Arc<dyn StoreStorage> {
    match database {
        Database::Postgres(pool) => Arc::new(pos_store_postgres::PgStoreStorage::new(
            pool.clone(),
            clock,
        )),
        Database::Sqlite(pool) => Arc::new(pos_store_sqlite::SqliteStoreStorage::new(
            pool.clone(),
            clock,
        )),
    }
}

/// The store role has no flags of its own.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArgs {}

pub struct StoreRole;

#[async_trait]
impl Role for StoreRole {
    const NAME: &'static str = "store";
    const ABOUT: &'static str = "StoreService and StoreInternalService: stores, tablets, menus, stock";
    const SERVICES: &'static [&'static str] = &[
        "pos.v1.StoreService",
        "pos.v1.StoreInternalService",
    ];
    const NEEDS: Needs = Needs {
        migrations: Some(&MIGRATIONS),
        // The deny-list of revoked logins, honoured when shared state is configured.
        shared_state: Requirement::Optional,
        // Signs tablet credentials; without it IssueDeviceToken is UNAVAILABLE.
        signing_key: Requirement::Optional,
        key_source: KeySource::Published,
        peers: PeerNeeds::Roles(&[]),
    };
    type Args = StoreArgs;

    async fn build(_: StoreArgs, context: RoleContext) -> Result<Served, StartError> {
        let database = context.database.as_ref().ok_or(Missing {
            role: Self::NAME,
            what: "a database",
        })?;
        let storage = open_storage(database, context.clock.clone());
        // Tablet credentials are checked against our own table: no call to anyone.
        let auth = context
            .authenticator()
            .with_devices(Arc::new(devices::LocalDeviceCredentials::new(storage.clone())));
        let mut services = GrpcServices::default();
        services
            .add(
                StoreServiceServer::new(StoreApi::new(storage.clone(), context.signing.clone()))
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add(
                StoreInternalServiceServer::new(StoreInternalApi::new(storage))
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            );
        Ok(Served::Grpc { services, auth })
    }
}
