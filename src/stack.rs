//! Everything in one process behind the edge: what `pos up` runs, and what the
//! end-to-end tests start on port 0 over either database.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use pos_common::{
    auth::{
        Authenticator, DEFAULT_AUDIENCE, DEFAULT_ISSUER, KeyCache, Revocations, SigningKey,
        StaticJwks, TokenIssuer,
    },
    backend::{Backend, ServiceTokenLayer},
    ephemeral::SharedEphemeral,
    storage::Db,
};
use pos_edge::{EdgeConfig, EdgeDeps, devices::StoreDeviceCredentials};
use pos_proto::v1::store_internal_service_client::StoreInternalServiceClient;
use pos_store::StoreRepo;
use pos_user::{
    UserRepo,
    provider::Providers,
    tokens::{TokenLifetimes, Tokens},
};
use tower::Layer;

use crate::{
    roles::{self, UserDeps},
    startup::{self, Running},
};

pub struct StackConfig {
    pub listen: SocketAddr,
    pub store_db: Db,
    pub user_db: Db,
    pub ephemeral: SharedEphemeral,
    pub signing_key: Arc<SigningKey>,
    pub edge: EdgeConfig,
    pub providers: Providers,
    pub redirect_uris: Vec<String>,
    pub lifetimes: TokenLifetimes,
}

/// A running all-in-one system.
pub struct Stack {
    pub running: Running,
    /// Signs tokens with the stack's key (demo credentials, tests).
    pub issuer: TokenIssuer,
    pub store_repo: StoreRepo,
    pub user_repo: UserRepo,
    /// The store role as other services reach it (tests wrap it to simulate outages).
    pub store: Backend,
    /// Verifies tokens as every part of the stack does.
    pub auth: Authenticator,
}

pub async fn start(config: StackConfig) -> anyhow::Result<Stack> {
    let issuer = TokenIssuer::new(config.signing_key, DEFAULT_ISSUER, DEFAULT_AUDIENCE);
    let jwks = Arc::new(StaticJwks(issuer.jwks()));
    let keys = Arc::new(KeyCache::new(jwks.clone(), DEFAULT_ISSUER, DEFAULT_AUDIENCE).await);
    let auth = Authenticator::new(
        keys.clone(),
        Some(Revocations::new(config.ephemeral.clone())),
    );

    pos_store::migrate(&config.store_db).await?;
    pos_user::migrate(&config.user_db).await?;
    let store_repo = StoreRepo::new(config.store_db);
    let user_repo = UserRepo::new(config.user_db);
    let store = roles::store(store_repo.clone(), Some(issuer.clone())).into_backend(auth.clone());

    let service_token = |name: &str| ServiceTokenLayer::new(issuer.clone(), name);
    let user = roles::user(UserDeps {
        repo: user_repo.clone(),
        providers: config.providers,
        ephemeral: config.ephemeral.clone(),
        tokens: Tokens::new(
            issuer.clone(),
            keys,
            config.ephemeral.clone(),
            config.lifetimes,
        ),
        stores: StoreInternalServiceClient::new(service_token("user").layer(store.clone())),
        redirect_uris: config.redirect_uris,
        published_keys: issuer.jwks(),
    })
    .into_backend(auth.clone());

    let devices = Arc::new(StoreDeviceCredentials::new(
        store.clone(),
        &service_token("edge"),
    ));
    let backends = HashMap::from([
        ("pos.v1.StoreService", store.clone()),
        ("pos.v1.UserService", user),
    ]);
    let router = pos_edge::router(
        &config.edge,
        EdgeDeps {
            backends,
            auth: auth.clone(),
            devices,
            ephemeral: config.ephemeral,
            jwks,
        },
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let running = startup::serve_http(config.listen, router).await?;
    Ok(Stack {
        running,
        issuer,
        store_repo,
        user_repo,
        store,
        auth,
    })
}
