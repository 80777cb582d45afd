//! Turning a peer's host name into the socket addresses behind it: the system resolver
//! ([`Dns`], `tokio::net::lookup_host`) in production, and whatever a test injects
//! through the [`Resolve`] trait.

use std::{future::Future, net::SocketAddr};

/// Why a lookup gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The resolver failed (no such name, no server reachable, ...).
    #[error("looking up {host}:{port} failed")]
    Lookup {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    /// The lookup took longer than we wait for one.
    #[error("looking up {host}:{port} timed out")]
    TimedOut { host: String, port: u16 },
    /// The lookup succeeded with no address (e.g. a headless Service with no ready pod).
    #[error("{host}:{port} resolved to no address")]
    Empty { host: String, port: u16 },
}

/// Something that resolves a host name and port to socket addresses.
pub trait Resolve: Send + Sync + 'static {
    /// Every address `host` currently resolves to, each with `port`.
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = Result<Vec<SocketAddr>, ResolveError>> + Send;
}

/// The system resolver (`getaddrinfo` on a blocking thread, via `tokio::net::lookup_host`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Dns;

impl Resolve for Dns {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = Result<Vec<SocketAddr>, ResolveError>> + Send {
        let host = host.to_string();
        async move {
            let answer = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map(Iterator::collect::<Vec<_>>);
            match answer {
                Ok(addresses) => Ok(addresses),
                Err(source) => Err(ResolveError::Lookup { host, port, source }),
            }
        }
    }
}
