//! The store role alone on a loopback port over a fresh database, built from a context
//! made here (a signing key, no shared state, no peers): every call is checked in full by
//! the role itself, with no edge in front. `pos serve store`'s own assembly from flags is
//! tested by running the binary (`pos_serve.rs`, `pos_mesh.rs`).

use std::{collections::HashMap, sync::Arc};

use pos::startup::{self, Running};
use pos_common::{
    auth::{KeyCache, StaticJwks, TokenIssuer},
    clock::{self, SharedClock},
    domain::{StoreId, UserId},
    role::{Role, RoleContext},
    storage::Database,
};
use pos_proto::v1::{
    self as pb, store_internal_service_client::StoreInternalServiceClient,
    store_service_client::StoreServiceClient,
};
use pos_store::{StoreArgs, StoreRole, storage::StoreStorage};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use super::{Bearer, Engine, TestDb, bearer, new_issuer};

pub type StoreClient = StoreServiceClient<InterceptedService<Channel, Bearer>>;
pub type InternalClient = StoreInternalServiceClient<InterceptedService<Channel, Bearer>>;

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub issuer: TokenIssuer,
    /// The role's storage, for reading what calls changed.
    pub storage: Arc<dyn StoreStorage>,
    pub engine: Engine,
    pub database: Database,
    running: Running,
    test_db: TestDb,
    channel: Channel,
}

impl TestApp {
    pub async fn start(engine: Engine) -> Self {
        Self::start_with(engine, StoreArgs::default()).await
    }

    /// The role with flags of its own (`--max-products-per-store` ...).
    pub async fn start_with(engine: Engine, args: StoreArgs) -> Self {
        let (test_db, database) = TestDb::create(engine).await;
        database
            .migrate(&pos_store::MIGRATIONS)
            .await
            .expect("migrate");
        let issuer = new_issuer();
        let clock: SharedClock = clock::system();
        let source = Arc::new(StaticJwks(issuer.jwks()));
        let keys = Arc::new(
            KeyCache::new(
                source.clone(),
                pos_common::auth::DEFAULT_ISSUER,
                pos_common::auth::DEFAULT_AUDIENCE,
            )
            .await,
        );
        let listen = "127.0.0.1:0".parse().expect("addr");
        let context = RoleContext {
            database: Some(database.clone()),
            source_database: None,
            shared_state: None,
            revocations: None,
            events: Arc::new(pos_common::events::LocalBus::new()),
            keys,
            key_source: source,
            published_keys: None,
            service_keys: None,
            signing: Some(issuer.clone()),
            service_credential: None,
            peers: HashMap::new(),
            clock: clock.clone(),
            listen,
            embedded: false,
            stopping: Default::default(),
        };
        let served = StoreRole::build(args, context)
            .await
            .expect("build the store role");
        let running = startup::serve(listen, served).await.expect("serve");
        let channel = Channel::from_shared(format!("http://{}", running.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Self {
            addr: running.addr,
            storage: pos_store::open_storage(&database, clock),
            issuer,
            engine,
            database,
            running,
            test_db,
            channel,
        }
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn store(&self, token: Option<&str>) -> StoreClient {
        let value = token.map(|t| format!("Bearer {t}").parse().expect("ascii token"));
        StoreServiceClient::with_interceptor(self.channel(), Bearer(value))
    }

    /// The internal API as the role called `role` calls it.
    pub fn internal_as(&self, role: &str) -> InternalClient {
        StoreInternalServiceClient::with_interceptor(
            self.channel(),
            bearer(&self.issuer.service(role)),
        )
    }

    /// The internal API as the trade role (stock) calls it.
    pub fn trade(&self) -> InternalClient {
        self.internal_as("trade")
    }

    pub fn owner_token(&self, user_id: i64, store_id: Option<i64>) -> String {
        self.issuer.owner_access(
            UserId::from_stored(user_id),
            store_id.map(StoreId::from_stored),
            3600,
        )
    }

    /// Creates a store for `owner_user_id` as signup does (the user role through the
    /// internal API); returns it and an owner token for it.
    pub async fn new_store(&self, owner_user_id: i64, grade: pb::PosGrade) -> (pb::Store, String) {
        let store = self
            .internal_as("user")
            .create_store_for_owner(pb::CreateStoreForOwnerRequest {
                owner_user_id,
                store_name: format!("Store {owner_user_id}"),
                pos_grade: grade as i32,
                settlement_day: 10,
            })
            .await
            .expect("create store")
            .into_inner()
            .store
            .expect("store");
        let token = self.owner_token(owner_user_id, Some(store.id));
        (store, token)
    }

    /// A product created through the public API.
    pub async fn new_product(
        &self,
        owner_token: &str,
        name: &str,
        category: pb::ProductCategory,
        price: i64,
        base_stock: i64,
    ) -> pb::Product {
        self.store(Some(owner_token))
            .create_product(pb::CreateProductRequest {
                name: name.to_string(),
                category: category as i32,
                price,
                base_stock,
            })
            .await
            .expect("create product")
            .into_inner()
            .product
            .expect("product")
    }

    /// A device token for a tablet of the store, issued through the public API.
    pub async fn device_token(&self, owner_token: &str, device_id: i64) -> String {
        self.store(Some(owner_token))
            .issue_device_token(pb::IssueDeviceTokenRequest { device_id })
            .await
            .expect("issue device token")
            .into_inner()
            .device_token
    }

    /// The store's tablets, from storage.
    pub async fn devices(&self, store_id: i64) -> Vec<pos_store::storage::Device> {
        self.storage
            .devices_of_store(StoreId::from_stored(store_id))
            .await
            .expect("devices")
    }

    /// A product's stock, from storage.
    pub async fn stock(&self, store_id: i64, product_id: i64) -> i64 {
        self.storage
            .product(
                StoreId::from_stored(store_id),
                pos_common::domain::ProductId::from_stored(product_id),
            )
            .await
            .expect("read")
            .expect("product")
            .stock
    }

    pub async fn stop(self) {
        self.running
            .stop(std::time::Duration::from_secs(5))
            .await
            .expect("stop server");
        self.database.close().await;
        self.test_db.drop_database().await;
    }
}
