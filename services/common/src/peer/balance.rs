//! A peer reached by host name that balances over every address the name resolves to.
//!
//! In Kubernetes the internal roles sit behind headless Services, whose DNS answer is the
//! IP of every ready pod. A single HTTP/2 connection would pin all of a caller's calls to
//! one pod, so this keeps one lazy connection per address in a tonic balanced channel
//! (power of two choices) and a background task that re-resolves the name every
//! [`REFRESH_INTERVAL`], inserting and removing addresses as the answer changes. A failed
//! or empty answer keeps the previous set. The task ends once every clone of the peer is
//! dropped.

use std::{
    collections::HashSet,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{Uri, uri::Scheme};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::{MissedTickBehavior, timeout},
};
use tonic::{
    body::Body,
    transport::{Channel, Endpoint, channel::Change},
};
use tower::{Service, ServiceExt, util::BoxCloneSyncService};

use super::{
    Peer, PeerError, configured,
    resolve::{Resolve, ResolveError},
};

/// How often a peer's name is resolved again. Kubernetes updates a headless Service's
/// records as pods become ready or go away; 5 s lets a new pod take calls within seconds
/// of being ready and stops calls to a removed one soon after, at the cost of one cheap
/// lookup (answered by the node's DNS cache) per peer every 5 s.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// How long one lookup may take before it counts as failed (the previous set is kept).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call made before the first lookup finished waits for it.
const FIRST_LOOKUP_WAIT: Duration = LOOKUP_TIMEOUT;

/// Queued address changes; the balancer takes them on its next call.
const CHANGE_CAPACITY: usize = 256;

/// A peer URI whose host is a name to resolve (not an IP literal).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    scheme: Scheme,
    host: String,
    port: u16,
    /// `scheme://host:port` as the caller named it: the `:authority` every call carries.
    origin: Uri,
}

impl Target {
    /// The target of `uri` when its host is a name; `None` for an IP literal, for
    /// `localhost`, or for a URI without scheme or host, which keep a single connection.
    /// (`localhost` is one machine, not a Service, and often resolves to both `::1` and
    /// `127.0.0.1` while a server listens on one of them: balancing would send calls to
    /// the other, where one connection falls back from one address to the next.)
    pub(crate) fn named(uri: &Uri) -> Option<Self> {
        let scheme = uri.scheme()?.clone();
        let authority = uri.authority()?.clone();
        let host = authority.host();
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty()
            || literal.parse::<std::net::IpAddr>().is_ok()
            || host.trim_end_matches('.').eq_ignore_ascii_case("localhost")
        {
            return None;
        }
        let port = authority
            .port_u16()
            .unwrap_or(if scheme == Scheme::HTTPS { 443 } else { 80 });
        let origin = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .ok()?;
        Some(Self {
            scheme,
            host: host.to_string(),
            port,
            origin,
        })
    }

    /// The endpoint for one resolved address: today's settings, connecting to `address`
    /// while every call names the caller's host as its `:authority`.
    fn endpoint(&self, address: SocketAddr) -> Result<Endpoint, http::Error> {
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(address.to_string())
            .path_and_query("/")
            .build()?;
        Ok(configured(Endpoint::from(uri)).origin(self.origin.clone()))
    }
}

/// What the refresh task has handed the balancer so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Known {
    /// Lookups finished (succeeded or not).
    pub(crate) lookups: u64,
    /// Addresses in the balanced set.
    pub(crate) addresses: usize,
}

/// A peer over every address of `target`, re-resolved with `resolver` every `every`;
/// the handle is the refresh task's, which ends once every clone of the peer is dropped.
pub(crate) fn balanced<R: Resolve>(
    target: Target,
    resolver: R,
    every: Duration,
) -> (Peer, watch::Receiver<Known>, JoinHandle<()>) {
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(CHANGE_CAPACITY);
    let (known_tx, known) = watch::channel(Known::default());
    let gate = Gated {
        channel,
        known: known.clone(),
        authority: Arc::from(target.origin.authority().map_or("", |a| a.as_str())),
    };
    let task = tokio::spawn(refresh(target, resolver, every, changes, known_tx));
    (BoxCloneSyncService::new(gate), known, task)
}

/// Resolves `target` every `every` and hands the balancer what changed, until no peer
/// is left to use it.
async fn refresh<R: Resolve>(
    target: Target,
    resolver: R,
    every: Duration,
    changes: mpsc::Sender<Change<SocketAddr, Endpoint>>,
    known: watch::Sender<Known>,
) {
    let peer = target
        .origin
        .authority()
        .map_or("", |a| a.as_str())
        .to_string();
    let mut current: HashSet<SocketAddr> = HashSet::new();
    // The failure last logged, so a lasting one is logged once, not on every tick.
    let mut failing: Option<String> = None;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = known.closed() => break,
            () = changes.closed() => break,
            _ = ticks.tick() => {}
        }
        let answer = tokio::select! {
            biased;
            () = known.closed() => break,
            answer = timeout(LOOKUP_TIMEOUT, resolver.resolve(&target.host, target.port)) => answer,
        };
        let answer = answer
            .unwrap_or_else(|_| {
                Err(ResolveError::TimedOut {
                    host: target.host.clone(),
                    port: target.port,
                })
            })
            .and_then(|addresses| {
                if addresses.is_empty() {
                    Err(ResolveError::Empty {
                        host: target.host.clone(),
                        port: target.port,
                    })
                } else {
                    Ok(addresses)
                }
            });
        match answer {
            Ok(addresses) => {
                if failing.take().is_some() {
                    tracing::info!(peer, "peer name resolves again");
                }
                let wanted: HashSet<SocketAddr> = addresses.into_iter().collect();
                let added: Vec<SocketAddr> = wanted.difference(&current).copied().collect();
                let removed: Vec<SocketAddr> = current.difference(&wanted).copied().collect();
                // Insert before removing, so that a wholesale change never leaves the
                // balancer empty in between.
                for address in &added {
                    let endpoint = match target.endpoint(*address) {
                        Ok(endpoint) => endpoint,
                        Err(error) => {
                            tracing::warn!(peer, %address, %error, "skipping an unusable address");
                            continue;
                        }
                    };
                    if !send(&changes, &known, Change::Insert(*address, endpoint)).await {
                        return;
                    }
                    current.insert(*address);
                    publish(&known, current.len());
                }
                for address in &removed {
                    if !send(&changes, &known, Change::Remove(*address)).await {
                        return;
                    }
                    current.remove(address);
                    publish(&known, current.len());
                }
                if !added.is_empty() || !removed.is_empty() {
                    let mut addresses: Vec<_> = current.iter().collect();
                    addresses.sort();
                    tracing::info!(peer, ?addresses, ?added, ?removed, "peer addresses changed");
                }
            }
            Err(error) => {
                let text = error.to_string();
                if failing.as_deref() != Some(text.as_str()) {
                    let cause = std::error::Error::source(&error)
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    tracing::warn!(
                        peer,
                        error = %text,
                        cause,
                        kept = current.len(),
                        "peer name did not resolve: keeping its previous addresses"
                    );
                    failing = Some(text);
                }
            }
        }
        let addresses = current.len();
        known.send_modify(|known| {
            known.lookups += 1;
            known.addresses = addresses;
        });
    }
    tracing::debug!(peer, "peer dropped: its address refresh ends");
}

/// Tells calls how many addresses the balancer has (as soon as each change is queued:
/// the balancer takes queued changes on the next call, which must not be refused).
fn publish(known: &watch::Sender<Known>, addresses: usize) {
    known.send_if_modified(|known| {
        let changed = known.addresses != addresses;
        known.addresses = addresses;
        changed
    });
}

/// Hands the balancer one change; false once no peer is left to take it. (The balancer
/// takes changes on its next call, so with no calls this waits for one, or for the end.)
async fn send(
    changes: &mpsc::Sender<Change<SocketAddr, Endpoint>>,
    known: &watch::Sender<Known>,
    change: Change<SocketAddr, Endpoint>,
) -> bool {
    tokio::select! {
        biased;
        () = known.closed() => false,
        sent = changes.send(change) => sent.is_ok(),
    }
}

/// No address of the peer is known: its name has not resolved (yet).
#[derive(Debug, thiserror::Error)]
#[error("no address of {authority} is known")]
struct NoAddress {
    authority: Arc<str>,
    /// UNAVAILABLE, found by tonic in the error's sources, as for a refused connection.
    #[source]
    status: tonic::Status,
}

/// The balanced channel, failing calls at once (UNAVAILABLE) while no address is known
/// rather than queueing them until one is.
#[derive(Clone)]
struct Gated {
    channel: Channel,
    known: watch::Receiver<Known>,
    authority: Arc<str>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<http::Request<Body>> for Gated {
    type Response = http::Response<Body>;
    type Error = PeerError;
    type Future = BoxFuture<Result<Self::Response, PeerError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), PeerError>> {
        // Readiness is the balancer's, awaited per call below.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let channel = self.channel.clone();
        let mut known = self.known.clone();
        let authority = self.authority.clone();
        Box::pin(async move {
            let looked_up = known.borrow().lookups > 0;
            if !looked_up {
                // Either way the check below decides; a closed watch means no task.
                let first = known.wait_for(|k| k.lookups > 0 || k.addresses > 0);
                let _ = timeout(FIRST_LOOKUP_WAIT, first).await;
            }
            let addresses = known.borrow().addresses;
            if addresses == 0 {
                let status =
                    tonic::Status::unavailable(format!("no address of {authority} is known"));
                return Err(PeerError(Box::new(NoAddress { authority, status })));
            }
            channel
                .oneshot(request)
                .await
                .map_err(|e| PeerError(e.into()))
        })
    }
}

#[cfg(test)]
mod tests;
