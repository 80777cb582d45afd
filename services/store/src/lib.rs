//! The store role: a store per owner, its ordering tablets, its menu with price history,
//! and stock reservations for orders. It alone writes its tables, through
//! [`StoreStorage`] (one implementation per database engine).

pub mod api;
mod convert;
pub mod devices;
pub mod internal_api;
pub mod paging;
pub mod reconciler;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use pos_common::{
    clock::SharedClock,
    peer::{Peer, with_service_token},
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
use pos_store_storage::{ProductLimit, StoreStorage};

pub use api::StoreApi;
pub use internal_api::StoreInternalApi;
use reconciler::{Reconciler, TradeLedger};

/// The store role's migrations for both engines, tracked in `store_migrations`.
pub static MIGRATIONS: Migrations = Migrations {
    table: "store_migrations",
    postgres: pos_store_postgres::migrator,
    sqlite: pos_store_sqlite::migrator,
};

/// The store's storage on whichever engine `database` is.
pub fn open_storage(database: &Database, clock: SharedClock) -> Arc<dyn StoreStorage> {
    match database {
        Database::Postgres(pool) => {
            Arc::new(pos_store_postgres::PgStoreStorage::new(pool.clone(), clock))
        }
        Database::Sqlite(pool) => Arc::new(pos_store_sqlite::SqliteStoreStorage::new(
            pool.clone(),
            clock,
        )),
    }
}

/// The store role's own flags.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Live (not deleted) products one store may have; CreateProduct past it is
    /// FAILED_PRECONDITION PRODUCT_LIMIT_REACHED.
    #[arg(
        long,
        env = "POS_MAX_PRODUCTS_PER_STORE",
        default_value_t = ProductLimit::DEFAULT,
        value_parser = clap::value_parser!(i64).range(1..)
    )]
    pub max_products_per_store: i64,
    /// Seconds a stock reservation may stay unconfirmed before the reconciler asks the
    /// trade role whether its order was committed (confirm) or not (release).
    #[arg(
        long,
        env = "POS_RESERVATION_TIMEOUT",
        default_value_t = reconciler::DEFAULT_RESERVATION_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub reservation_timeout: u64,
}

impl Default for StoreArgs {
    fn default() -> Self {
        Self {
            max_products_per_store: ProductLimit::DEFAULT,
            reservation_timeout: reconciler::DEFAULT_RESERVATION_TIMEOUT.as_secs(),
        }
    }
}

/// The largest answer StoreInternalService sends: a ReserveStocks batch of 200 orders of 100
/// lines with 255-character names fits (the trade role decodes as much).
pub const MAX_INTERNAL_ANSWER_BYTES: usize = 32 * 1024 * 1024;

pub struct StoreRole;

#[async_trait]
impl Role for StoreRole {
    const NAME: &'static str = "store";
    const ABOUT: &'static str =
        "StoreService and StoreInternalService: stores, tablets, menus, stock";
    const SERVICES: &'static [&'static str] =
        &["pos.v1.StoreService", "pos.v1.StoreInternalService"];
    const NEEDS: Needs = Needs {
        migrations: Some(&MIGRATIONS),
        // The deny-list of revoked logins, honoured when shared state is configured.
        shared_state: Requirement::Optional,
        // Signs tablet credentials; without it IssueDeviceToken is UNAVAILABLE.
        signing_key: Requirement::Optional,
        key_source: KeySource::Published,
        // The reconciler asks the trade role about stale reservations.
        peers: PeerNeeds::Optional(&["trade"]),
        reads_tables_of: None,
    };
    type Args = StoreArgs;

    async fn build(args: StoreArgs, context: RoleContext) -> Result<Served, StartError> {
        let product_limit = ProductLimit::parse(args.max_products_per_store)
            .map_err(|why| format!("--max-products-per-store {why}"))?;
        let database = context.database.as_ref().ok_or(Missing {
            role: Self::NAME,
            what: "a database",
        })?;
        let storage = open_storage(database, context.clock.clone());
        // Tablet credentials are checked against our own table: no call to anyone.
        let auth =
            context
                .authenticator()
                .with_devices(Arc::new(devices::LocalDeviceCredentials::new(
                    storage.clone(),
                )));
        let internal = StoreInternalApi::new(storage.clone());
        match (context.peers.get("trade"), &context.service_credential) {
            (Some(trade), Some(credential)) => {
                let timeout = Duration::from_secs(args.reservation_timeout);
                let ledger = TradeLedger::new(Peer::new(with_service_token(
                    trade.peer.clone(),
                    credential,
                )));
                // Rounds often enough that a reservation waits at most half a timeout more.
                let every = (timeout / 2).max(Duration::from_secs(1));
                let reconciler = Reconciler::new(
                    storage.clone(),
                    Arc::new(ledger),
                    context.clock.clone(),
                    timeout,
                );
                // A background task of the role, beside its API, until the process stops.
                tokio::spawn(reconciler.run(every, context.stopping.clone()));
            }
            (Some(_), None) => tracing::warn!(
                "no key for a service token (POS_SIGNING_KEY_FILE or POS_SERVICE_KEY_FILE): \
                 stale stock reservations are not resolved"
            ),
            (None, _) => tracing::warn!(
                "no trade role to ask (POS_TRADE_ADDR): stale stock reservations are not \
                 resolved; set it wherever a trade role is deployed"
            ),
        }
        let mut services = GrpcServices::default();
        services
            .add(
                StoreServiceServer::new(StoreApi::new(
                    storage.clone(),
                    context.signing.clone(),
                    product_limit,
                ))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add(
                StoreInternalServiceServer::new(internal)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    // Only the mesh's roles call it; a ReserveStocks answer for a batch of
                    // large orders (snapshot lines with their names) may pass the public
                    // limit.
                    .max_encoding_message_size(MAX_INTERNAL_ANSWER_BYTES),
            );
        Ok(Served::Grpc { services, auth })
    }
}

#[cfg(test)]
mod tests {
    //! Reserving is set-based: as many statements for an order of 100 lines as for one;
    //! reading a reservation is one statement.
    //! Statements are counted from sqlx's own log of each one it runs, process-wide (the
    //! SQLite driver runs them on a worker thread), so this is the only test of its
    //! binary and runs both engines in turn.

    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use pos_common::{
        domain::{Grade, SettlementDay, StoreName, StoreRequest, UserId},
        error::Violations,
    };
    use pos_store_storage::{
        Amount, Category, Created, NewProduct, OrderId, OrderLines, ProductLimit, ProductName,
        Reserved,
    };
    use sqlx::{Connection, Executor, PgConnection};
    use tracing_subscriber::prelude::*;

    use super::*;

    #[derive(Clone, Default)]
    struct Statements(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Statements {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if event.metadata().target() == "sqlx::query" {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    async fn statements_per_reservation(
        database: &Database,
        counter: &Statements,
    ) -> (usize, usize) {
        database.migrate(&MIGRATIONS).await.expect("migrate");
        let storage = open_storage(database, pos_common::clock::system());
        let request = StoreRequest {
            name: StoreName::parse("Counted").expect("name"),
            grade: Grade::Bronze,
            settlement_day: SettlementDay::parse(1).expect("day"),
        };
        let (store, _) = storage
            .create_store_for_owner(UserId::from_stored(1), &request)
            .await
            .expect("store");
        let mut products = Vec::new();
        for i in 0..100 {
            let product = NewProduct {
                name: ProductName::parse(&format!("P{i}")).expect("name"),
                category: Category::MainMenu,
                price: Amount::parse(100).expect("price"),
                base_stock: Amount::parse(10).expect("stock"),
            };
            let Created::Product(created) = storage
                .create_product(store.id, &product, ProductLimit::default())
                .await
                .expect("product")
            else {
                panic!("the store is not full");
            };
            products.push(created.id);
        }
        let mut counts = [0; 2];
        for (slot, size) in [(0, 1), (1, 100)] {
            let raw: Vec<(i64, i64)> = products[..size].iter().map(|id| (id.get(), 1)).collect();
            let lines = OrderLines::parse(&raw, &mut Violations::new()).expect("lines");
            let order = OrderId::parse(&format!("size-{size}")).expect("order id");
            let before = counter.0.load(Ordering::SeqCst);
            let outcome = storage
                .reserve(&order, store.id, &lines)
                .await
                .expect("reserve");
            assert!(matches!(outcome, Reserved::Taken(_)), "{outcome:?}");
            counts[slot] = counter.0.load(Ordering::SeqCst) - before;
        }
        // Reading a reservation back is one statement: one snapshot of it and its lines.
        let before = counter.0.load(Ordering::SeqCst);
        let read = storage
            .reservation(&OrderId::parse("size-100").expect("order id"))
            .await
            .expect("read")
            .expect("reservation");
        assert_eq!(read.lines.len(), 100);
        assert_eq!(
            counter.0.load(Ordering::SeqCst) - before,
            1,
            "statements to read a reservation"
        );
        (counts[0], counts[1])
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reserving_an_order_is_a_constant_number_of_statements() {
        let counter = Statements::default();
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::filter::Targets::new()
                    .with_target("sqlx::query", tracing::Level::TRACE),
            )
            .with(counter.clone())
            .init();

        let dir = std::env::temp_dir().join(format!("pos-statements-{}", std::process::id()));
        let sqlite = Database::sqlite_in_dir(&dir, "store.db")
            .await
            .expect("SQLite");
        let (one, hundred) = statements_per_reservation(&sqlite, &counter).await;
        assert!(one > 0, "statements are counted");
        assert_eq!(one, hundred, "SQLite statements for 1 and 100 lines");
        sqlite.close().await;
        let _ = std::fs::remove_dir_all(&dir);

        let admin = std::env::var("POS_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let run = std::env::var("POS_TEST_RUN_ID").unwrap_or_else(|_| "pos_t_local".to_string());
        let name = format!("{run}_statements_{}", std::process::id());
        let mut conn = PgConnection::connect(&admin).await.expect("PostgreSQL");
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .expect("create database");
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("POS_TEST_DATABASE_URL names no database"),
        };
        let postgres = Database::connect(&url).await.expect("connect");
        let (one, hundred) = statements_per_reservation(&postgres, &counter).await;
        postgres.close().await;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE \"{name}\" WITH (FORCE)"
        )))
        .await
        .expect("drop database");
        assert!(one > 0, "statements are counted");
        assert_eq!(one, hundred, "PostgreSQL statements for 1 and 100 lines");
    }
}
