//! Starts servers and returns their bound address (port 0 picks a free one), so
//! `pos serve`, `pos up` and the tests all run exactly the same assembly.

mod connections;
mod metrics;

pub use metrics::{MetricsServer, metrics, serve_metrics};

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use pos_common::{
    auth::{AuthLayer, Authenticator},
    framing::RequestFramingLayer,
    introspection::{ServedHealth, add_health_and_reflection, set_all},
    metrics::rpc::{RpcMetrics, RpcMetricsLayer},
    peer::{self, Peer},
    readiness::{self, Dependencies},
    role::{Front, GrpcServices, MAX_HEADER_LIST_BYTES, MAX_MESSAGE_BYTES, Served},
    stopping::Stopping,
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::server::TcpIncoming;
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::{Layer, ServiceExt};

/// Requests without a shorter `grpc-timeout` are cut off after this.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A role's gRPC services in this process behind their auth layer and the framing
/// check, as [`serve_grpc`] serves them: how the edge and other roles call it in `pos up`.
pub fn in_process(services: GrpcServices, auth: Authenticator) -> Peer {
    in_process_measured(services, auth, None)
}

/// [`in_process`], its calls recorded in `metrics` as [`serve_grpc`] records them.
pub fn in_process_measured(
    services: GrpcServices,
    auth: Authenticator,
    metrics: Option<RpcMetrics>,
) -> Peer {
    let (routes, _) = services.into_parts();
    let framed = RequestFramingLayer::new(MAX_MESSAGE_BYTES).layer(routes.routes());
    let authenticated = AuthLayer::new(auth).layer(framed);
    let measured = ServiceExt::<http::Request<tonic::body::Body>>::map_response(
        RpcMetricsLayer::new(metrics).layer(authenticated),
        |response| response.map(tonic::body::Body::new),
    );
    peer::in_process(measured)
}

/// Serves what a role built on `listen`.
pub async fn serve(listen: SocketAddr, served: Served) -> anyhow::Result<Running> {
    serve_checked(listen, served, Dependencies::default(), None).await
}

/// [`serve`], its health NOT_SERVING while one of `dependencies` does not answer, a gRPC
/// role's calls recorded in `metrics` (the edge's are not recorded yet).
pub async fn serve_checked(
    listen: SocketAddr,
    served: Served,
    dependencies: Dependencies,
    metrics: Option<RpcMetrics>,
) -> anyhow::Result<Running> {
    match served {
        Served::Grpc { services, auth } => {
            serve_grpc(listen, services, auth, dependencies, metrics).await
        }
        Served::Front(front) => serve_front(listen, front, dependencies).await,
    }
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
    /// A gRPC role's health, and the task keeping it to its dependencies.
    health: Option<Health>,
}

struct Health {
    served: ServedHealth,
    watcher: JoinHandle<()>,
}

impl Health {
    /// Starts keeping `served` to `dependencies`: NOT_SERVING from the first probe when
    /// one is down or the schema is behind.
    async fn kept_to(served: ServedHealth, dependencies: Dependencies) -> Self {
        let serving = ready(&dependencies).await;
        if !serving {
            set_all(&served.reporter, &served.names, ServingStatus::NotServing).await;
        }
        let watcher = tokio::spawn(keep_to(
            dependencies,
            served.reporter.clone(),
            served.names.clone(),
            serving,
        ));
        Self { served, watcher }
    }
}

impl Running {
    /// Stops accepting, lets in-flight calls finish (up to `grace`), and waits.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        self.stop_in_place(grace).await
    }

    /// Says NOT_SERVING and keeps serving for `drain`, so probes and balancers that watch
    /// the health move new calls elsewhere first; returns early if the server ends on its
    /// own.
    pub async fn drain(&mut self, drain: Duration) -> anyhow::Result<()> {
        self.say_not_serving().await;
        if drain.is_zero() {
            return Ok(());
        }
        tracing::info!(
            seconds = drain.as_secs_f64(),
            "NOT_SERVING; draining before stopping"
        );
        tokio::select! {
            result = self.wait() => result,
            _ = tokio::time::sleep(drain) => Ok(()),
        }
    }

    async fn say_not_serving(&mut self) {
        if let Some(health) = self.health.take() {
            health.watcher.abort();
            let ServedHealth { reporter, names } = &health.served;
            set_all(reporter, names, ServingStatus::NotServing).await;
        }
    }

    /// [`Running::stop`] through a mutable reference.
    pub async fn stop_in_place(&mut self, grace: Duration) -> anyhow::Result<()> {
        // Probes and balancers hear it first (if a drain has not told them already).
        self.say_not_serving().await;
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match tokio::time::timeout(grace, self.wait()).await {
            Ok(result) => result,
            Err(_) => {
                // Idle keep-alive connections can hold hyper's graceful shutdown forever
                // (hyperium/hyper#4170); the grace period bounds it.
                tracing::warn!("calls still open after the grace period; stopping anyway");
                self.task.abort();
                Ok(())
            }
        }
    }

    /// Waits until the server ends on its own (a fatal error).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("server task panicked")?
    }
}

/// Serves one role's services with health, reflection and the auth layer, its calls
/// recorded in `metrics`.
pub async fn serve_grpc(
    listen: SocketAddr,
    services: GrpcServices,
    auth: Authenticator,
    dependencies: Dependencies,
    metrics: Option<RpcMetrics>,
) -> anyhow::Result<Running> {
    let listener = bind(listen).await?;
    let addr = listener.local_addr()?;
    let (mut routes, names) = services.into_parts();
    let reporter =
        add_health_and_reflection(&mut routes, &names, pos_proto::FILE_DESCRIPTOR_SET).await?;
    let health = Health::kept_to(
        ServedHealth {
            reporter,
            names: names.clone(),
        },
        dependencies,
    )
    .await;
    let incoming = accepting(listener);
    let (shutdown, signal) = oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .timeout(DEFAULT_REQUEST_TIMEOUT)
        // Room for a client's largest header block plus what the edge adds to it.
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES * 2)
        // Outermost, so calls the auth layer refuses are counted too.
        .layer(RpcMetricsLayer::new(metrics))
        .layer(AuthLayer::new(auth))
        // After authentication, so anonymous garbage is not even read.
        .layer(RequestFramingLayer::new(MAX_MESSAGE_BYTES))
        .add_routes(routes.routes());
    let task = tokio::spawn(async move {
        server
            .serve_with_incoming_shutdown(incoming, async {
                let _ = signal.await;
            })
            .await
            .context("gRPC server failed")
    });
    tracing::info!(%addr, services = ?names, "serving");
    Ok(Running {
        addr,
        shutdown: Some(shutdown),
        task,
        health: Some(health),
    })
}

/// Whether every dependency answers now; says why not.
async fn ready(dependencies: &Dependencies) -> bool {
    match dependencies.check().await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = %err, "not ready: NOT_SERVING");
            false
        }
    }
}

/// Keeps a role's health to its dependencies: NOT_SERVING while one does not answer,
/// SERVING again once all do; each change is logged once.
async fn keep_to(
    dependencies: Dependencies,
    reporter: HealthReporter,
    names: Vec<&'static str>,
    mut serving: bool,
) {
    if dependencies.is_empty() {
        return;
    }
    loop {
        tokio::time::sleep(readiness::CHECK_EVERY).await;
        match dependencies.check().await {
            Ok(()) if !serving => {
                tracing::info!("dependencies answer again: SERVING");
                set_all(&reporter, &names, ServingStatus::Serving).await;
                serving = true;
            }
            Err(err) if serving => {
                tracing::warn!(error = %err, "a dependency does not answer: NOT_SERVING");
                set_all(&reporter, &names, ServingStatus::NotServing).await;
                serving = false;
            }
            _ => {}
        }
    }
}

/// Serves an HTTP front door (the edge) on HTTP/1.1 and HTTP/2 under its connection
/// limits, with the peer address available to it.
pub async fn serve_http(listen: SocketAddr, front: Front) -> anyhow::Result<Running> {
    serve_front(listen, front, Dependencies::default()).await
}

/// [`serve_http`], its health NOT_SERVING while one of `dependencies` does not answer.
async fn serve_front(
    listen: SocketAddr,
    front: Front,
    dependencies: Dependencies,
) -> anyhow::Result<Running> {
    let health = match front.health {
        Some(served) => Some(Health::kept_to(served, dependencies).await),
        None => None,
    };
    let listener = bind(listen).await?;
    let addr = listener.local_addr()?;
    let (shutdown, signal) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        connections::serve(listener, front.router, front.connections, signal).await;
        Ok(())
    });
    tracing::info!(%addr, "edge serving");
    Ok(Running {
        addr,
        shutdown: Some(shutdown),
        task,
        health,
    })
}

/// The connections a gRPC role serves, with TCP_NODELAY: tonic sets it only on
/// listeners it binds itself, and without it a call's small response frames wait for the
/// caller's delayed ACK — milliseconds on every call between roles (the mesh's order
/// throughput went from 920 to 2,200 a second with it).
fn accepting(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

async fn bind(listen: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested, finishing in-flight calls");
}

/// The line scripts and tests wait for before calling the server.
pub fn announce(addr: SocketAddr) {
    use std::io::Write;
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();
}

/// Runs until a fatal error or a stop signal; then says NOT_SERVING and keeps serving for
/// `drain`, tells the process's long-lived calls to end, stops accepting, and lets calls
/// in flight finish within `grace`.
pub async fn wait_for_shutdown(
    running: &mut Running,
    stopping: &Stopping,
    drain: Duration,
    grace: Duration,
) -> anyhow::Result<()> {
    tokio::select! {
        result = running.wait() => return result,
        _ = shutdown_signal() => {}
    }
    running.drain(drain).await?;
    stopping.stop();
    running.stop_in_place(grace).await
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_role_serves_its_connections_without_nagle_delays() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut incoming = accepting(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let served = incoming
            .next()
            .await
            .expect("a connection")
            .expect("accepted");
        assert!(served.nodelay().expect("read TCP_NODELAY"));
    }
}
