//! The integration suite, one test binary: storage contracts on both engines, each role
//! over real gRPC on loopback, the whole stack behind the edge, and the `pos` binary as
//! separate processes.

mod support;

mod batch_jobs;
mod bench_orders;
mod bench_settlement;
mod chart;
mod checks_once;
mod cli;
mod edge_auth;
mod edge_connections;
mod edge_pipeline;
mod edge_rate_limits;
mod grpc_web;
mod identity;
mod kubectl_pos;
mod malformed_requests;
mod metrics;
mod pos_batch;
mod pos_mesh;
mod pos_serve;
mod pos_up;
mod readiness;
mod reflection;
mod revocation;
mod settlement_api;
mod storage_settlement;
mod storage_store;
mod storage_trade;
mod storage_user;
mod store_api;
mod trade_api;
