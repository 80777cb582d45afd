//! The trade role: tablets order onto their table's bill and owners take payment. It
//! alone writes the bills, orders and payments, through [`TradeStorage`] (one
//! implementation per database engine), and it moves stock only through the store role:
//! an order reserves its stock there, is committed here, then confirms the reservation
//! (Try-Confirm-Cancel, [`ordering`]).

mod announcing;
pub mod api;
mod batching;
mod confirming;
mod convert;
pub mod faults;
pub mod internal_api;
pub mod ordering;
pub mod paging;
pub mod stock;
pub mod watch;

use std::sync::Arc;

use async_trait::async_trait;
use pos_common::{
    auth::StoreDeviceCredentials,
    clock::SharedClock,
    role::{
        GrpcServices, KeySource, MAX_MESSAGE_BYTES, Missing, Needs, PeerNeeds, Requirement, Role,
        RoleContext, Served, StartError,
    },
    storage::{Database, Migrations},
};
use pos_proto::v1::{
    trade_internal_service_server::TradeInternalServiceServer,
    trade_service_server::TradeServiceServer,
};
pub use pos_trade_storage as storage;
use pos_trade_storage::{TradeStorage, sales::SalesSource};

pub use api::TradeApi;
use faults::Faults;
pub use internal_api::TradeInternalApi;
use ordering::Ordering;
use stock::StoreStock;
use watch::Watches;

/// The trade role's migrations for both engines, tracked in `trade_migrations`.
pub static MIGRATIONS: Migrations = Migrations {
    table: "trade_migrations",
    postgres: pos_trade_postgres::migrator,
    sqlite: pos_trade_sqlite::migrator,
};

/// What paid trades add up to, read for the aggregation batch from the trade database
/// (or a read-only replica of it).
pub fn open_sales_source(database: &Database) -> Arc<dyn SalesSource> {
    match database {
        Database::Postgres(pool) => Arc::new(pos_trade_postgres::PgSalesSource::new(pool.clone())),
        Database::Sqlite(pool) => Arc::new(pos_trade_sqlite::SqliteSalesSource::new(pool.clone())),
    }
}

/// The trade's storage on whichever engine `database` is.
pub fn open_storage(database: &Database, clock: SharedClock) -> Arc<dyn TradeStorage> {
    match database {
        Database::Postgres(pool) => {
            Arc::new(pos_trade_postgres::PgTradeStorage::new(pool.clone(), clock))
        }
        Database::Sqlite(pool) => Arc::new(pos_trade_sqlite::SqliteTradeStorage::new(
            pool.clone(),
            clock,
        )),
    }
}

/// The trade role's own flags (none yet).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TradeArgs {}

pub struct TradeRole;

#[async_trait]
impl Role for TradeRole {
    const NAME: &'static str = "trade";
    const ABOUT: &'static str =
        "TradeService and TradeInternalService: orders onto tables' bills, payments";
    const SERVICES: &'static [&'static str] =
        &["pos.v1.TradeService", "pos.v1.TradeInternalService"];
    const NEEDS: Needs = Needs {
        migrations: Some(&MIGRATIONS),
        // The deny-list of revoked logins, honoured when shared state is configured.
        shared_state: Requirement::Optional,
        // Only to sign its service token when it has no service key of its own.
        signing_key: Requirement::Optional,
        key_source: KeySource::Published,
        // Stock moves and tablet credentials are the store's.
        peers: PeerNeeds::Roles(&["store"]),
        reads_tables_of: None,
    };
    type Args = TradeArgs;

    async fn build(_args: TradeArgs, context: RoleContext) -> Result<Served, StartError> {
        Self::serve(context, Faults::none())
    }
}

impl TradeRole {
    /// The role with `orders` deciding where ordering stops as if the process died: for
    /// tests of what such a crash leaves behind.
    #[cfg(feature = "fault-injection")]
    pub fn build_with_faults(
        context: RoleContext,
        orders: Arc<dyn faults::OrderFaults>,
    ) -> Result<Served, StartError> {
        Self::serve(context, Faults::injected(orders))
    }

    fn serve(context: RoleContext, faults: Faults) -> Result<Served, StartError> {
        let missing = |what| Missing {
            role: Self::NAME,
            what,
        };
        let database = context.database.as_ref().ok_or(missing("a database"))?;
        let credential = context.service_credential.clone().ok_or(missing(
            "a key for its service token (POS_SERVICE_KEY_FILE or POS_SIGNING_KEY_FILE)",
        ))?;
        let store = context.peer("store", Self::NAME)?;
        let storage = open_storage(database, context.clock.clone());
        // Tablets' credentials are the store's: asked of it for calls the edge did not
        // vouch for.
        let devices = Arc::new(StoreDeviceCredentials::new(store.clone(), &credential));
        let auth = context.authenticator().with_devices(devices.clone());
        let stock = StoreStock::new(store, &credential);
        // Watchers check their tablet's credential again while they stream.
        let watches = Watches::new(
            storage.clone(),
            context.events.clone(),
            auth.clone(),
            context.clock.clone(),
            context.stopping.clone(),
        );
        let mut services = GrpcServices::default();
        services
            .add(
                TradeServiceServer::new(TradeApi::new(
                    storage.clone(),
                    devices,
                    Ordering::new(storage.clone(), stock, faults),
                    watches,
                    context.clock.clone(),
                ))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add(
                TradeInternalServiceServer::new(TradeInternalApi::new(storage))
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            );
        Ok(Served::Grpc { services, auth })
    }
}
