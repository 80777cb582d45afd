//! Builds a gRPC server from configuration and starts it, returning the bound address:
//! `pos up`, `pos serve store` and the tests all come through here.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use pos_common::auth::{AuthInterceptor, TokenIssuer, Verifier};
use pos_proto::v1::{
    store_internal_service_server::StoreInternalServiceServer,
    store_service_server::StoreServiceServer,
};
use pos_store::{StoreApi, StoreInternalApi, StoreRepo};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::{RoutesBuilder, interceptor::InterceptedService};
use tonic_health::ServingStatus;

/// Largest request or response message any service accepts (4 MiB).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Requests without a shorter `grpc-timeout` are cut off after this.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the store role needs: its storage, how to verify callers, and optionally a key
/// to sign tablet credentials with.
#[derive(Clone)]
pub struct StoreRole {
    pub repo: StoreRepo,
    pub verifier: Arc<Verifier>,
    pub device_tokens: Option<TokenIssuer>,
}

/// Which APIs a server exposes.
#[derive(Clone)]
pub struct ServerSpec {
    pub store: StoreRole,
    /// Serve the internal (service-to-service) APIs too. Never on a public port.
    pub internal: bool,
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Running {
    /// Stops accepting, lets in-flight calls finish, and waits for the server to end.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Waits until the server ends (after [`Running::stop`] or a fatal error).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task)
            .await
            .context("server task panicked")?
            .context("server failed")
    }

    /// Hands out the trigger that stops this server gracefully.
    pub fn take_shutdown(&mut self) -> Option<oneshot::Sender<()>> {
        self.shutdown.take()
    }
}

/// Binds `listen` (port 0 picks a free port) and serves `spec` until stopped.
pub async fn start(listen: SocketAddr, spec: ServerSpec) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;

    let auth = AuthInterceptor::new(spec.store.verifier.clone());
    let mut served = vec!["pos.v1.StoreService"];
    let mut routes = RoutesBuilder::default();
    let store_api = StoreApi::new(spec.store.repo.clone(), spec.store.device_tokens.clone());
    routes.add_service(InterceptedService::new(
        StoreServiceServer::new(store_api)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        auth.clone(),
    ));
    if spec.internal {
        served.push("pos.v1.StoreInternalService");
        routes.add_service(InterceptedService::new(
            StoreInternalServiceServer::new(StoreInternalApi::new(spec.store.repo.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            auth,
        ));
    }

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    for name in &served {
        health_reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    routes.add_service(health_service);

    // Reflection advertises exactly what this server serves, so grpcurl shows no dead APIs.
    let mut reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pos_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health");
    let mut reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pos_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health");
    for name in &served {
        reflection_v1 = reflection_v1.with_service_name(*name);
        reflection_v1alpha = reflection_v1alpha.with_service_name(*name);
    }
    routes.add_service(reflection_v1.build_v1()?);
    routes.add_service(reflection_v1alpha.build_v1alpha()?);

    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .timeout(DEFAULT_REQUEST_TIMEOUT)
        .accept_http1(true)
        .layer(tonic_web::GrpcWebLayer::new())
        .add_routes(routes.routes());
    let task = tokio::spawn(async move {
        server
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = shutdown_rx.await;
            })
            .await
    });
    tracing::info!(%addr, services = ?served, "serving");
    Ok(Running {
        addr,
        shutdown: Some(shutdown_tx),
        task,
    })
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
