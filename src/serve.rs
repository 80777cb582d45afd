//! `pos serve <role>`: one role per process, as Kubernetes runs them. Roles find each
//! other by address, verify tokens with the user role's published keys (or a JWKS
//! file), and share ephemeral state through Redis.

use std::{collections::HashMap, path::Path, sync::Arc};

use anyhow::{Context, bail};
use clap::ArgMatches;
use pos_common::{
    auth::{
        GrpcJwks, JwkSet, JwksSource, KeyCache, Revocations, SigningKey, StaticJwks, TokenIssuer,
        read_jwks,
    },
    clock, ephemeral,
    events::{LocalBus, RedisBus, SharedEventBus},
    peer::{ServiceCredential, connect_lazy},
    readiness::Dependencies,
    role::{PeerRole, Requirement, RoleContext},
    stopping::Stopping,
    storage::Database,
};

use crate::{
    flags::{RoleFlags, TokenFlags, key_publisher},
    registry::{self, RegisteredRole},
    startup,
};

pub async fn serve(
    role: &dyn RegisteredRole,
    flags: RoleFlags,
    matches: &ArgMatches,
) -> anyhow::Result<()> {
    let (context, database) = context(role, &flags).await?;
    let stopping = context.stopping.clone();
    // Readiness follows what the role cannot work without: its database (on the schema
    // this build needs), and Redis when it was given one.
    let dependencies = Dependencies {
        database: database.clone(),
        migrations: role.needs().migrations,
        shared_state: context.shared_state.clone(),
    };
    let served = role
        .build(matches, context)
        .await
        .map_err(|err| anyhow::anyhow!(err))
        .with_context(|| format!("cannot start the {} role", role.name()))?;
    let (rpc_metrics, _metrics_server) =
        startup::metrics(flags.serve.metrics.metrics_listen).await?;
    let mut running =
        startup::serve_checked(flags.serve.listen, served, dependencies, rpc_metrics).await?;
    startup::announce(running.addr);
    let shutdown = &flags.serve.shutdown;
    startup::wait_for_shutdown(&mut running, &stopping, shutdown.drain(), shutdown.grace()).await?;
    if let Some(database) = database {
        database.close().await;
    }
    Ok(())
}

/// Signs with the PKCS#8 key in `path`, for the issuer and audience of `tokens`.
pub(crate) fn issuer(tokens: &TokenFlags, path: &Path) -> anyhow::Result<TokenIssuer> {
    let key = SigningKey::from_file(path)
        .with_context(|| format!("cannot use the key in {}", path.display()))?;
    Ok(TokenIssuer::new(
        Arc::new(key),
        &tokens.jwt_issuer,
        &tokens.jwt_audience,
    ))
}

fn jwks(path: &Path) -> anyhow::Result<JwkSet> {
    read_jwks(path).with_context(|| format!("cannot use the key set in {}", path.display()))
}

/// What the role is built from, out of its flags.
async fn context(
    role: &dyn RegisteredRole,
    flags: &RoleFlags,
) -> anyhow::Result<(RoleContext, Option<Database>)> {
    let needs = role.needs();
    let clock = clock::system();
    let database = match (&flags.database, needs.migrations) {
        (Some(db), Some(migrations)) => {
            let database = Database::connect(&db.database_url).await?;
            if db.migrate_on_start {
                database.migrate(migrations).await?;
            }
            Some(database)
        }
        _ => None,
    };
    let redis = flags
        .shared_state
        .as_ref()
        .and_then(|state| Some((state.redis_url.as_deref()?, &state.redis_key_prefix)));
    let (shared_state, events): (_, SharedEventBus) = match redis {
        Some((url, prefix)) => (
            Some(ephemeral::connect(Some(url), prefix).await?),
            Arc::new(
                RedisBus::connect(url, prefix)
                    .await
                    .context("cannot reach Redis for the event bus")?,
            ),
        ),
        // Without Redis this process is the only replica: its watchers hear it alone.
        None => {
            if needs.shared_state == Requirement::Optional {
                tracing::warn!(
                    role = role.name(),
                    "no POS_REDIS_URL: revoked logins are not refused by this role, and \
                     live bills hear only this replica's changes; run one replica only"
                );
            }
            (None, Arc::new(LocalBus::new()))
        }
    };
    let tokens = &flags.tokens;
    let signing = flags
        .signing
        .as_ref()
        .and_then(|s| s.signing_key_file.as_deref())
        .map(|path| issuer(tokens, path))
        .transpose()?;
    let service_issuer = match flags
        .service_key
        .as_ref()
        .and_then(|s| s.service_key_file.as_deref())
    {
        Some(path) => Some(issuer(tokens, path)?),
        None => signing.clone(),
    };
    let peers: HashMap<&'static str, PeerRole> = flags
        .peers
        .iter()
        .map(|(name, address)| {
            let services = registry::role(name).map_or(&[][..], |r| r.services());
            Ok((
                *name,
                PeerRole {
                    services,
                    peer: connect_lazy(address)?,
                },
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let (key_source, published_keys): (Arc<dyn JwksSource>, Option<JwkSet>) = if let Some(own) =
        &flags.own_keys
    {
        let Some(issuer) = &signing else {
            bail!(
                "POS_SIGNING_KEY_FILE is required: the {} role signs tokens",
                role.name()
            );
        };
        // Our key, and retired ones while tokens they signed may still be alive.
        let mut published = issuer.jwks();
        if let Some(path) = &own.previous_jwks_file {
            for key in jwks(path)?.keys {
                if published
                    .find(key.common.key_id.as_deref().unwrap_or_default())
                    .is_none()
                {
                    published.keys.push(key);
                }
            }
        }
        (Arc::new(StaticJwks(published.clone())), Some(published))
    } else if let Some(path) = flags
        .published_keys
        .as_ref()
        .and_then(|k| k.jwks_file.as_deref())
    {
        (Arc::new(StaticJwks(jwks(path)?)), None)
    } else if let Some(publisher) = key_publisher().and_then(|name| peers.get(name)) {
        (Arc::new(GrpcJwks::new(publisher.peer.clone())), None)
    } else {
        bail!(
            "POS_JWKS_FILE (--jwks-file) or POS_USER_ADDR (--user-addr) is required: the public keys that verify tokens"
        );
    };
    let keys =
        Arc::new(KeyCache::new(key_source.clone(), &tokens.jwt_issuer, &tokens.jwt_audience).await);
    let service_keys = match &tokens.service_jwks_file {
        Some(path) => Some(Arc::new(
            KeyCache::new(
                Arc::new(StaticJwks(jwks(path)?)),
                &tokens.jwt_issuer,
                &tokens.jwt_audience,
            )
            .await,
        )),
        None => None,
    };
    let context = RoleContext {
        database: database.clone(),
        source_database: None,
        revocations: shared_state.clone().map(Revocations::new),
        shared_state,
        events,
        keys,
        key_source,
        published_keys,
        service_keys,
        signing,
        service_credential: service_issuer
            .map(|issuer| ServiceCredential::new(issuer, role.name(), clock.clone())),
        peers,
        clock,
        listen: flags.serve.listen,
        embedded: false,
        stopping: Stopping::new(),
    };
    Ok((context, database))
}
