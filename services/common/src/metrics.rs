//! Prometheus metrics with `prometheus-client`: one explicit [`Registry`] per process,
//! built at startup and handed to whatever records into it. [`rpc`] is the tower layer
//! that counts gRPC calls a server answers (requests by gRPC code, latency, calls in
//! flight); [`process`] reads the process's memory, CPU time and open files from /proc
//! at scrape time. [`encode`] renders a registry in the OpenMetrics text format.

pub mod process;
pub mod rpc;

pub use prometheus_client::registry::Registry;

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A registry with the process metrics and the RPC metrics registered, and the handle
/// servers record calls with.
pub fn registry() -> (Registry, rpc::RpcMetrics) {
    let mut registry = Registry::default();
    let rpc = rpc::RpcMetrics::register(&mut registry);
    process::register(&mut registry);
    (registry, rpc)
}

/// `registry` in the OpenMetrics text format (served as [`CONTENT_TYPE`]).
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}
