//! The settlement role: the product sales and settlements the aggregation batch writes,
//! kept in the settlement's own storage ([`SettlementStorage`], one implementation per
//! database engine), served by `SettlementService` ([`api`]). It reads the trade's paid
//! bills (its database, or a read replica: `POS_SOURCE_DATABASE_URL`) and never writes
//! them; which stores exist is the store role's to say. In `pos up` it also runs the
//! batch's schedule in process, so settlements appear without Kubernetes.

pub mod api;
mod convert;

use std::sync::Arc;

use async_trait::async_trait;
use pos_batch::{
    Aggregator, Batch, Pushgateway, StoreRoleDirectory, TimeZone, scheduler::run_schedule,
};
use pos_common::{
    clock::SharedClock,
    peer::{Peer, ServiceCredential},
    role::{
        GrpcServices, KeySource, MAX_MESSAGE_BYTES, Missing, Needs, PeerNeeds, Requirement, Role,
        RoleContext, Served, StartError,
    },
    storage::{Database, Migrations},
};
use pos_proto::v1::settlement_service_server::SettlementServiceServer;
use pos_settlement_storage::SettlementStorage;

pub use api::SettlementApi;

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

/// The batch over `source`'s paid bills into `storage`, with days in `zone` and the
/// stores the store role (`store`, called with `credential`) lists: what the role runs on
/// demand and on schedule, and what `pos batch` runs.
pub fn open_batch(
    source: &Database,
    storage: Arc<dyn SettlementStorage>,
    zone: TimeZone,
    clock: SharedClock,
    store: Peer,
    credential: &ServiceCredential,
) -> Batch {
    let aggregator = Aggregator::new(pos_trade::open_sales_source(source), storage, zone, clock);
    Batch::new(
        aggregator,
        Arc::new(StoreRoleDirectory::new(store, credential)),
    )
}

/// Where the batch reads paid bills and in which zone it counts days: shared by the
/// settlement role and `pos batch`.
#[derive(Debug, Clone, clap::Args)]
pub struct AggregationArgs {
    /// The trade role's database (or a read-only replica of it), where paid bills are
    /// read; defaults to the settlement's own database (POS_DATABASE_URL).
    #[arg(long, env = "POS_SOURCE_DATABASE_URL")]
    pub source_database_url: Option<String>,
    /// The stores' IANA time zone: a sale belongs to the local day it was paid on.
    #[arg(long, env = "POS_TIME_ZONE", default_value = "Asia/Seoul")]
    pub time_zone: TimeZone,
    /// Prometheus Pushgateway to push batch metrics to (http://host:9091).
    #[arg(long, env = "POS_PUSHGATEWAY_URL")]
    pub pushgateway_url: Option<String>,
}

/// The settlement role's own flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SettlementArgs {
    #[command(flatten)]
    pub aggregation: AggregationArgs,
    /// Do not run the batch's schedule in process (`pos up` runs it unless told not to;
    /// `pos serve settlement` never does: Kubernetes CronJobs run `pos batch`).
    #[arg(long, env = "POS_NO_SCHEDULE")]
    pub no_schedule: bool,
}

impl AggregationArgs {
    /// The database paid bills are read from: the flag's, else `known` (the trade
    /// role's, when the binary has it), else `own`.
    pub async fn source(
        &self,
        known: Option<&Database>,
        own: &Database,
    ) -> Result<Database, StartError> {
        Ok(match (&self.source_database_url, known) {
            (Some(url), _) => Database::connect(url).await?,
            (None, Some(known)) => known.clone(),
            (None, None) => own.clone(),
        })
    }

    pub fn pushgateway(&self) -> Result<Option<Pushgateway>, StartError> {
        Ok(self
            .pushgateway_url
            .as_deref()
            .map(Pushgateway::new)
            .transpose()?)
    }
}

pub struct SettlementRole;

#[async_trait]
impl Role for SettlementRole {
    const NAME: &'static str = "settlement";
    const ABOUT: &'static str =
        "SettlementService: product sales, settlements and aggregation runs";
    const SERVICES: &'static [&'static str] = &["pos.v1.SettlementService"];
    const NEEDS: Needs = Needs {
        migrations: Some(&MIGRATIONS),
        // The deny-list of revoked logins, honoured when shared state is configured.
        shared_state: Requirement::Optional,
        // Only to sign its service token when it has no service key of its own.
        signing_key: Requirement::Optional,
        key_source: KeySource::Published,
        // Which stores exist, and when each settles, is the store's.
        peers: PeerNeeds::Roles(&["store"]),
        reads_tables_of: Some("trade"),
    };
    type Args = SettlementArgs;

    async fn build(args: SettlementArgs, context: RoleContext) -> Result<Served, StartError> {
        let missing = |what| Missing {
            role: Self::NAME,
            what,
        };
        let database = context.database.as_ref().ok_or(missing("a database"))?;
        let credential = context.service_credential.clone().ok_or(missing(
            "a key for its service token (POS_SERVICE_KEY_FILE or POS_SIGNING_KEY_FILE)",
        ))?;
        let source = args
            .aggregation
            .source(context.source_database.as_ref(), database)
            .await?;
        let storage = open_storage(database);
        let batch = open_batch(
            &source,
            storage.clone(),
            args.aggregation.time_zone,
            context.clock.clone(),
            context.peer("store", Self::NAME)?,
            &credential,
        );
        if context.embedded && !args.no_schedule {
            tracing::info!(zone = %args.aggregation.time_zone, "running the batch schedule in process");
            tokio::spawn(run_schedule(
                batch.clone(),
                args.aggregation.time_zone,
                context.clock.clone(),
                args.aggregation.pushgateway()?,
                context.stopping.clone(),
            ));
        }
        let mut services = GrpcServices::default();
        services.add(
            SettlementServiceServer::new(SettlementApi::new(
                storage,
                batch,
                args.aggregation.time_zone,
                context.clock.clone(),
            ))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        );
        Ok(Served::Grpc {
            services,
            auth: context.authenticator(),
        })
    }
}
