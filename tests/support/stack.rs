//! The whole system behind the edge on a loopback port, as `pos up` runs it, over a fresh
//! database of either backend. On PostgreSQL the shared ephemeral state is real Redis.

use std::{sync::Arc, time::Duration};

use pos::stack::{self, Stack, StackConfig};
use pos_common::{
    auth::{SigningKey, TokenIssuer},
    ephemeral::{self, MemoryStore, SharedEphemeral},
};
use pos_edge::EdgeConfig;
use pos_store::StoreRepo;
use pos_user::{
    UserRepo,
    provider::{DevProvider, Kakao, KakaoConfig, Providers},
    tokens::TokenLifetimes,
};
use tonic::transport::Channel;

use super::{Backend, TestDb, fake_kakao::FakeKakao};

pub const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth/callback";

pub struct StackOptions {
    pub rate_limit_per_minute: u32,
    pub lifetimes: TokenLifetimes,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 100_000,
            lifetimes: TokenLifetimes::default(),
        }
    }
}

pub struct TestStack {
    pub addr: std::net::SocketAddr,
    pub issuer: TokenIssuer,
    pub store_repo: StoreRepo,
    pub user_repo: UserRepo,
    pub kakao: FakeKakao,
    pub ephemeral: SharedEphemeral,
    pub backend: Backend,
    pub stack: Stack,
    test_db: TestDb,
    channel: Channel,
}

impl TestStack {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, StackOptions::default()).await
    }

    pub async fn start_with(backend: Backend, options: StackOptions) -> Self {
        // Both services share one database here: their tables and migration tables differ.
        let (test_db, db) = TestDb::create(backend).await;
        let ephemeral: SharedEphemeral = match backend {
            Backend::Sqlite => Arc::new(MemoryStore::new()),
            Backend::Postgres => {
                let url = std::env::var("POS_TEST_REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
                let run = std::env::var("POS_TEST_RUN_ID").unwrap_or_else(|_| "pos_t_local".into());
                let prefix = format!("{run}:{}", uuid::Uuid::new_v4().simple());
                ephemeral::connect(Some(&url), &prefix)
                    .await
                    .expect("Redis must be reachable for the test suite")
            }
        };
        let kakao = FakeKakao::start().await;
        let providers = Providers::default()
            .with(
                "kakao",
                Arc::new(
                    Kakao::new(KakaoConfig {
                        authorize_url: format!("{}/oauth/authorize", kakao.base),
                        token_url: format!("{}/oauth/token", kakao.base),
                        profile_url: format!("{}/v2/user/me", kakao.base),
                        client_id: super::fake_kakao::CLIENT_ID.into(),
                        client_secret: None,
                    })
                    .expect("kakao client"),
                ),
            )
            .with("dev", Arc::new(DevProvider));
        let stack = stack::start(StackConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            store_db: db.clone(),
            user_db: db,
            ephemeral: ephemeral.clone(),
            signing_key: Arc::new(SigningKey::generate()),
            edge: EdgeConfig {
                cors_allowed_origins: vec!["*".into()],
                rate_limit_per_minute: options.rate_limit_per_minute,
                default_deadline: Duration::from_secs(10),
                max_message_bytes: pos::startup::MAX_MESSAGE_BYTES,
            },
            providers,
            redirect_uris: vec![REDIRECT_URI.into()],
            lifetimes: options.lifetimes,
        })
        .await
        .expect("start stack");
        let addr = stack.running.addr;
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Self {
            addr,
            issuer: stack.issuer.clone(),
            store_repo: stack.store_repo.clone(),
            user_repo: stack.user_repo.clone(),
            kakao,
            ephemeral,
            backend,
            stack,
            test_db,
            channel,
        }
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub async fn stop(self) {
        self.stack
            .running
            .stop(Duration::from_secs(5))
            .await
            .expect("stop");
        self.test_db.drop_database().await;
    }
}
