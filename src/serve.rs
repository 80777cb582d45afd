//! `pos serve <role>`: one role per process, as Kubernetes runs them. Roles find each
//! other by address, verify tokens with the user service's published keys, and share
//! ephemeral state through Redis.

use std::{collections::HashMap, sync::Arc};

use anyhow::{Context, bail};
use pos_common::{
    auth::{
        Authenticator, GrpcJwks, Jwks, JwksSource, KeyCache, Revocations, SigningKey, StaticJwks,
        TokenIssuer,
    },
    backend::{self, Backend, ServiceTokenLayer},
    ephemeral::{self, SharedEphemeral},
    storage::Db,
};
use pos_edge::{EdgeDeps, devices::StoreDeviceCredentials};
use pos_proto::v1::store_internal_service_client::StoreInternalServiceClient;
use pos_store::StoreRepo;
use pos_user::{UserRepo, tokens::Tokens};
use tower::Layer;

use crate::{
    cli::{Role, ServeArgs, announce, wait_for_shutdown},
    roles::{self, UserDeps},
    startup::{self, Running},
};

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (mut running, db) = match args.role {
        Role::Store => serve_store(&args).await?,
        Role::User => serve_user(&args).await?,
        Role::Edge => (serve_edge(&args).await?, None),
    };
    announce(running.addr);
    wait_for_shutdown(&mut running, &args.shutdown).await?;
    if let Some(db) = db {
        db.close().await;
    }
    Ok(())
}

fn required<'a>(value: &'a Option<String>, what: &str) -> anyhow::Result<&'a str> {
    value
        .as_deref()
        .with_context(|| format!("{what} is required for this role"))
}

async fn database(args: &ServeArgs) -> anyhow::Result<Db> {
    let db = Db::connect(required(
        &args.database_url,
        "POS_DATABASE_URL (--database-url)",
    )?)
    .await?;
    if args.migrate {
        pos_store::migrate(&db).await?;
        pos_user::migrate(&db).await?;
    }
    Ok(db)
}

fn issuer_from(args: &ServeArgs, path: &std::path::Path) -> anyhow::Result<TokenIssuer> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key {}", path.display()))?;
    let key = SigningKey::from_pkcs8_pem(&pem).map_err(anyhow::Error::msg)?;
    Ok(TokenIssuer::new(
        Arc::new(key),
        &args.auth.jwt_issuer,
        &args.auth.jwt_audience,
    ))
}

fn signing_key(args: &ServeArgs) -> anyhow::Result<Option<TokenIssuer>> {
    args.signing_key_file
        .as_deref()
        .map(|path| issuer_from(args, path))
        .transpose()
}

fn required_signing_key(args: &ServeArgs) -> anyhow::Result<TokenIssuer> {
    signing_key(args)?
        .context("POS_SIGNING_KEY_FILE (--signing-key-file) is required for this role")
}

/// What signs this role's service tokens: the service key, else the signing key.
fn service_issuer(args: &ServeArgs) -> anyhow::Result<TokenIssuer> {
    match &args.service_key_file {
        Some(path) => issuer_from(args, path),
        None => signing_key(args)?.context(
            "POS_SERVICE_KEY_FILE (or POS_SIGNING_KEY_FILE) is required for this role: it signs its service token",
        ),
    }
}

/// Redis: the user role writes refresh families and the logout deny-list that the edge
/// must read, so separate processes cannot run on per-process memory.
async fn shared_state(args: &ServeArgs) -> anyhow::Result<SharedEphemeral> {
    let url = args.ephemeral.redis_url.as_deref().context(
        "POS_REDIS_URL is required for this role: logins, logouts and rate limits are shared through Redis",
    )?;
    Ok(ephemeral::connect(Some(url), &args.ephemeral.redis_key_prefix).await?)
}

/// The keys that verify tokens: a JWKS file, else the user service's GetJwks.
fn key_source(args: &ServeArgs) -> anyhow::Result<Arc<dyn JwksSource>> {
    if let Some(path) = &args.auth.jwks_file {
        let jwks = Jwks::from_file(path).map_err(anyhow::Error::msg)?;
        return Ok(Arc::new(StaticJwks(jwks)));
    }
    match &args.peers.user_addr {
        Some(addr) => Ok(Arc::new(GrpcJwks::new(peer(addr)?))),
        None => bail!(
            "POS_JWKS_FILE (--jwks-file) or POS_USER_ADDR is required: the public keys that verify tokens"
        ),
    }
}

fn peer(addr: &str) -> anyhow::Result<Backend> {
    backend::connect_lazy(addr).map_err(anyhow::Error::msg)
}

async fn authenticator(
    args: &ServeArgs,
    source: Arc<dyn JwksSource>,
    state: Option<SharedEphemeral>,
) -> Authenticator {
    let keys = KeyCache::new(source, &args.auth.jwt_issuer, &args.auth.jwt_audience).await;
    Authenticator::new(Arc::new(keys), state.map(Revocations::new))
}

async fn serve_store(args: &ServeArgs) -> anyhow::Result<(Running, Option<Db>)> {
    let db = database(args).await?;
    let state = match &args.ephemeral.redis_url {
        Some(url) => Some(ephemeral::connect(Some(url), &args.ephemeral.redis_key_prefix).await?),
        None => None,
    };
    let mut auth = authenticator(args, key_source(args)?, state).await;
    if let Some(path) = &args.service_jwks_file {
        let jwks = Jwks::from_file(path).map_err(anyhow::Error::msg)?;
        let keys = KeyCache::new(
            Arc::new(StaticJwks(jwks)),
            &args.auth.jwt_issuer,
            &args.auth.jwt_audience,
        )
        .await;
        auth = auth.with_service_keys(Arc::new(keys));
    }
    let services = roles::store(StoreRepo::new(db.clone()), signing_key(args)?);
    Ok((
        startup::serve_role(args.listen, services, auth).await?,
        Some(db),
    ))
}

async fn serve_user(args: &ServeArgs) -> anyhow::Result<(Running, Option<Db>)> {
    let db = database(args).await?;
    let issuer = required_signing_key(args)?;
    let state = shared_state(args).await?;
    // The user service owns the signing key: it verifies with its own public key, and
    // with retired ones while tokens they signed may still be alive.
    let mut published = issuer.jwks();
    if let Some(path) = &args.auth.previous_jwks_file {
        let retired = Jwks::from_file(path).map_err(anyhow::Error::msg)?;
        let current: Vec<String> = published.keys.iter().map(|k| k.kid.clone()).collect();
        published.keys.extend(
            retired
                .keys
                .into_iter()
                .filter(|k| !current.contains(&k.kid)),
        );
    }
    let auth = authenticator(
        args,
        Arc::new(StaticJwks(published.clone())),
        Some(state.clone()),
    )
    .await;
    let store = peer(required(&args.peers.store_addr, "POS_STORE_ADDR")?)?;
    let service_token = ServiceTokenLayer::new(service_issuer(args)?, "user");
    let services = roles::user(UserDeps {
        repo: UserRepo::new(db.clone()),
        providers: args.identity.providers(false)?,
        ephemeral: state.clone(),
        tokens: Tokens::new(
            issuer.clone(),
            auth.keys().clone(),
            state,
            args.identity.lifetimes(),
        ),
        stores: StoreInternalServiceClient::new(service_token.layer(store)),
        redirect_uris: args.identity.oauth_redirect_uris.clone(),
        published_keys: published,
    });
    Ok((
        startup::serve_role(args.listen, services, auth).await?,
        Some(db),
    ))
}

async fn serve_edge(args: &ServeArgs) -> anyhow::Result<Running> {
    let store = peer(required(&args.peers.store_addr, "POS_STORE_ADDR")?)?;
    let user = peer(required(&args.peers.user_addr, "POS_USER_ADDR")?)?;
    let mut backends = HashMap::from([
        ("pos.v1.StoreService", store.clone()),
        ("pos.v1.UserService", user),
    ]);
    if let Some(addr) = &args.peers.trade_addr {
        backends.insert("pos.v1.TradeService", peer(addr)?);
    }
    if let Some(addr) = &args.peers.settlement_addr {
        backends.insert("pos.v1.SettlementService", peer(addr)?);
    }
    let state = shared_state(args).await?;
    let jwks = key_source(args)?;
    let auth = authenticator(args, jwks.clone(), Some(state.clone())).await;
    let service_token = ServiceTokenLayer::new(service_issuer(args)?, "edge");
    let router = pos_edge::router(
        &args.limits.edge_config(args.cors_allowed_origins.clone()),
        EdgeDeps {
            backends,
            auth,
            devices: Arc::new(StoreDeviceCredentials::new(store, &service_token)),
            ephemeral: state,
            jwks,
        },
    )
    .await
    .map_err(anyhow::Error::msg)?;
    startup::serve_http(args.listen, router).await
}
