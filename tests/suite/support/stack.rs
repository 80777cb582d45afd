//! The whole system behind the edge on a loopback port, as `pos up` runs it (the same
//! registry and the same flags), over a fresh database of either engine. On PostgreSQL
//! the shared state is real Redis.

use std::{collections::HashMap, sync::Arc, time::Duration};

use pos::up::{self, Databases, Plumbing, Stack};
use pos_common::{
    auth::{Revocations, SigningKey, TokenIssuer},
    clock::{self, SharedClock},
    ephemeral::SharedEphemeral,
    role::{PeerRole, RoleContext},
    storage::Database,
};
use pos_store::storage::StoreStorage;
use pos_user::storage::UserStorage;
use tonic::transport::Channel;

use super::{Engine, TestDb, fake_kakao::FakeKakao};

pub const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth/callback";

pub struct StackOptions {
    /// More `pos up` flags (the edge's, the user role's ...).
    pub flags: Vec<String>,
    pub clock: SharedClock,
    /// Shared state to use instead of the engine's own (Redis or memory).
    pub shared_state: Option<SharedEphemeral>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            // Limits are tested on their own; elsewhere they must not interfere.
            flags: vec!["--rate-limit-per-minute".into(), "100000".into()],
            clock: clock::system(),
            shared_state: None,
        }
    }
}

pub struct TestStack {
    pub addr: std::net::SocketAddr,
    pub issuer: TokenIssuer,
    pub store_storage: Arc<dyn StoreStorage>,
    pub user_storage: Arc<dyn UserStorage>,
    pub kakao: FakeKakao,
    pub ephemeral: SharedEphemeral,
    pub engine: Engine,
    pub database: Database,
    pub stack: Stack,
    test_db: TestDb,
    channel: Channel,
}

impl TestStack {
    pub async fn start(engine: Engine) -> Self {
        Self::start_with(engine, StackOptions::default()).await
    }

    pub async fn start_with(engine: Engine, options: StackOptions) -> Self {
        // Every role shares one database here: their tables and migration tables differ.
        let (test_db, database) = TestDb::create(engine).await;
        let ephemeral = match options.shared_state {
            Some(state) => state,
            None => super::shared_state(engine).await,
        };
        let events = super::event_bus(engine).await;
        let kakao = FakeKakao::start().await;
        let mut flags: Vec<String> = vec![
            "--kakao-client-id".into(),
            super::fake_kakao::CLIENT_ID.into(),
            "--kakao-authorize-url".into(),
            format!("{}/oauth/authorize", kakao.base),
            "--kakao-token-url".into(),
            format!("{}/oauth/token", kakao.base),
            "--kakao-profile-url".into(),
            format!("{}/v2/user/me", kakao.base),
            "--oauth-redirect-uris".into(),
            REDIRECT_URI.into(),
            "--default-deadline-secs".into(),
            "10".into(),
        ];
        flags.extend(options.flags);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let matches = up::matches(&flags).expect("pos up flags");
        let stack = up::start(
            Plumbing {
                listen: "127.0.0.1:0".parse().expect("addr"),
                databases: Databases::Shared(database.clone()),
                ephemeral: ephemeral.clone(),
                revocations: Revocations::new(ephemeral.clone()),
                events,
                signing_key: Arc::new(SigningKey::generate()),
                clock: options.clock.clone(),
            },
            &matches,
        )
        .await
        .expect("start the stack");
        let addr = stack.running.addr;
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Self {
            addr,
            issuer: stack.issuer.clone(),
            store_storage: pos_store::open_storage(&database, options.clock.clone()),
            user_storage: pos_user::open_storage(&database, options.clock),
            kakao,
            ephemeral,
            engine,
            database,
            stack,
            test_db,
            channel,
        }
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A context for another instance of the role called `role`, reaching `peers`.
    pub async fn context(&self, role: &str, peers: HashMap<&'static str, PeerRole>) -> RoleContext {
        let role = pos::registry::role(role).expect("a registered role");
        self.stack.context(role, peers).await.expect("context")
    }

    pub async fn stop(self) {
        self.stack.stop(Duration::from_secs(5)).await.expect("stop");
        self.test_db.drop_database().await;
    }
}
