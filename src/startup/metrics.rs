//! The Prometheus endpoint: `GET /metrics` on its own address (`POS_METRICS_LISTEN`),
//! the process's one registry in the OpenMetrics text format.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use axum::{Router, http::header, response::IntoResponse, routing::get};
use pos_common::metrics::{self, Registry, rpc::RpcMetrics};
use tokio::{net::TcpListener, task::JoinHandle};

/// The metrics endpoint while it serves; it stops when dropped.
pub struct MetricsServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The process's registry and its metrics endpoint on `listen`, and the handle its
/// servers record calls with; nothing when `listen` is unset.
pub async fn metrics(
    listen: Option<SocketAddr>,
) -> anyhow::Result<(Option<RpcMetrics>, Option<MetricsServer>)> {
    let Some(listen) = listen else {
        return Ok((None, None));
    };
    let (registry, rpc) = metrics::registry();
    let server = serve_metrics(listen, registry).await?;
    Ok((Some(rpc), Some(server)))
}

/// Serves `registry` on `GET /metrics` at `listen`.
pub async fn serve_metrics(
    listen: SocketAddr,
    registry: Registry,
) -> anyhow::Result<MetricsServer> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot serve metrics on {listen}"))?;
    let addr = listener.local_addr()?;
    let registry = Arc::new(registry);
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move { scrape(&registry) }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::error!(error = %err, "the metrics server failed");
        }
    });
    tracing::info!(%addr, "serving metrics on /metrics");
    Ok(MetricsServer { addr, task })
}

fn scrape(registry: &Registry) -> axum::response::Response {
    match metrics::encode(registry) {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "cannot encode the metrics");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
