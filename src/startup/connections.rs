//! Serves the front door's router on HTTP/1.1 and HTTP/2 with hyper, connection by
//! connection, so that clients which connect and then send nothing, trickle bytes, or
//! stop answering cannot hold the process's sockets (see [`ConnectionLimits`]):
//!
//! - a connection must send a whole request head within the header-read timeout (hyper
//!   enforces it for HTTP/1.1 heads; we do for the bytes that pick the protocol and for
//!   an HTTP/2 connection's first call);
//! - a connection with no call in flight for the idle timeout is closed (HTTP/2 with a
//!   GOAWAY); a call is in flight until its response body is done, so streams count;
//! - HTTP/2 connections are pinged and dropped when a ping goes unanswered;
//! - at most `max_connections` are served: one more is closed as soon as it is accepted,
//!   which costs a file descriptor for an instant, not for as long as the client likes.
//!   The cap is lowered to fit the process's open-file limit, so a flood is refused by
//!   us rather than leaving the process without descriptors for its own connections.
//!
//! Written on hyper-util's connection builder because `axum::serve` offers none of these
//! settings. Each request carries the peer address as axum's `ConnectInfo`, as
//! `into_make_service_with_connect_info` would give it.

use std::{convert::Infallible, net::SocketAddr, pin::pin, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
    service::TowerToHyperService,
};
use pos_common::role::{ConnectionLimits, MAX_HEADER_LIST_BYTES};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch},
    task::JoinSet,
};
use tower::ServiceExt;

/// How long an idle connection that was asked to close may take to do so (a client
/// that reads nothing could otherwise keep its GOAWAY, and the socket, pending).
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// After a failed accept that is not about one connection (out of file descriptors),
/// wait this long rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// File descriptors kept for everything but client connections: the listener, logs,
/// connections to the other roles and Redis, the databases in `pos up`.
const RESERVED_FILES: u64 = 64;

/// Accepts and serves connections until `stop`, then lets calls in flight finish.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: oneshot::Receiver<()>,
) {
    let builder = Arc::new(builder(&limits));
    let cap = cap_within(limits.max_connections, open_file_limit());
    if cap < limits.max_connections {
        tracing::warn!(
            configured = limits.max_connections,
            cap,
            "the connection cap does not fit the open-file limit: lowered (raise `ulimit -n` or set POS_MAX_CONNECTIONS)"
        );
    }
    let permits = Arc::new(Semaphore::new(cap));
    let (stopping, stop_watch) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut at_capacity = false;
    let mut stop = pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            // Asked to stop, or the server handle was dropped: both end the accepting.
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if !at_capacity {
                tracing::warn!(
                    max = cap,
                    "connection limit reached: closing new connections until some end"
                );
                at_capacity = true;
            }
            drop(tcp);
            continue;
        };
        at_capacity = false;
        // Small gRPC frames must not wait for Nagle's algorithm (tonic's server does the same).
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(%err, "cannot set TCP_NODELAY");
        }
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            peer,
            limits,
            _permit: permit,
        };
        connections.spawn(connection.serve(tcp, stop_watch.clone()));
    }
    // New clients are refused by the kernel from here on, not left waiting.
    drop(listener);
    let _ = stopping.send(true);
    while connections.join_next().await.is_some() {}
}

/// The process's current (soft) limit on open files, where there is one.
fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    return rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    #[cfg(not(unix))]
    return None;
}

/// `configured`, or fewer when the open-file limit leaves room for fewer connections
/// (at least one).
fn cap_within(configured: usize, open_files: Option<u64>) -> usize {
    let Some(open_files) = open_files else {
        return configured;
    };
    let room = usize::try_from(open_files.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
    configured.min(room.max(1))
}

fn builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keepalive_interval)
        .keep_alive_timeout(limits.http2_keepalive_timeout)
        .max_header_list_size(MAX_HEADER_LIST_BYTES);
    builder
}

async fn accept_failed(err: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    // The client gave up before we took its connection: nothing to wait for.
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%err, "cannot accept connections");
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

/// One accepted connection and what it is served with.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    peer: SocketAddr,
    limits: ConnectionLimits,
    /// Its place under `max_connections`, given back when the connection ends.
    _permit: OwnedSemaphorePermit,
}

/// Why a connection is asked to close.
enum Closing {
    Idle,
    Stopping,
}

impl Connection {
    async fn serve(self, tcp: TcpStream, mut stopping: watch::Receiver<bool>) {
        let (calls, watched) = watch::channel(Calls::default());
        let service = TowerToHyperService::new(calls_counted(
            self.router.clone(),
            self.peer,
            Arc::new(calls),
        ));
        let mut connection = pin!(self.builder.serve_connection(TokioIo::new(tcp), service));
        let calls_now = watched.clone();
        let idle = idle_too_long(
            watched,
            self.limits.header_read_timeout,
            self.limits.idle_timeout,
        );
        let closing = tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(peer = %self.peer, %err, "connection ended with an error");
                }
                return;
            }
            () = idle => Closing::Idle,
            _ = stopping.wait_for(|stop| *stop) => Closing::Stopping,
        };
        connection.as_mut().graceful_shutdown();
        match closing {
            // A call that arrived as the timer fired finishes like any other; only a
            // connection that is still idle must go within the bound.
            Closing::Idle if calls_now.borrow().in_flight > 0 => {
                let _ = connection.await;
            }
            Closing::Idle => {
                let _ = tokio::time::timeout(CLOSE_WITHIN, connection).await;
            }
            // Calls in flight finish; the server's grace period bounds the wait.
            Closing::Stopping => {
                let _ = connection.await;
            }
        }
    }
}

/// The calls of one connection, watched to close connections that sit idle.
#[derive(Debug, Clone, Copy, Default)]
struct Calls {
    in_flight: usize,
    /// Whether the connection has made a call yet.
    any: bool,
}

/// A call in flight, from its request head until its response body is dropped.
struct InFlight(Arc<watch::Sender<Calls>>);

impl InFlight {
    fn start(calls: &Arc<watch::Sender<Calls>>) -> Self {
        calls.send_modify(|calls| {
            calls.in_flight += 1;
            calls.any = true;
        });
        Self(calls.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|calls| calls.in_flight -= 1);
    }
}

/// The router, with the peer address in each request and each call counted until its
/// response body is done.
fn calls_counted(
    router: Router,
    peer: SocketAddr,
    calls: Arc<watch::Sender<Calls>>,
) -> impl tower::Service<
    http::Request<Incoming>,
    Response = http::Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<Body>, Infallible>> + Send,
> + Clone {
    tower::service_fn(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let in_flight = InFlight::start(&calls);
        let response = router.clone().oneshot(request);
        async move {
            let response = response.await?;
            Ok(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _counted_until_dropped = &in_flight;
                    frame
                }))
            }))
        }
    })
}

/// Resolves once the connection has had no call in flight for `idle`, or made no call
/// at all within `first_call` of connecting.
async fn idle_too_long(mut calls: watch::Receiver<Calls>, first_call: Duration, idle: Duration) {
    loop {
        let now = *calls.borrow_and_update();
        let changed = if now.in_flight > 0 {
            calls.changed().await
        } else {
            let allowed = if now.any { idle } else { first_call };
            tokio::select! {
                () = tokio::time::sleep(allowed) => return,
                changed = calls.changed() => changed,
            }
        };
        if changed.is_err() {
            // The connection's service is gone, so the connection is ending on its own.
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_open_file_limit() {
        assert_eq!(cap_within(10_000, None), 10_000);
        assert_eq!(cap_within(10_000, Some(1_048_576)), 10_000);
        assert_eq!(cap_within(10_000, Some(256)), 256 - RESERVED_FILES as usize);
        assert_eq!(cap_within(10, Some(256)), 10);
        assert_eq!(cap_within(10_000, Some(16)), 1);
    }
}
