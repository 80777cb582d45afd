//! gRPC health (`grpc.health.v1`) and server reflection (v1 and v1alpha) for a set of
//! services: what grpcurl, Kubernetes probes and load balancers ask every server.

use tonic::service::RoutesBuilder;
use tonic_health::{ServingStatus, server::HealthReporter};

pub use tonic_reflection::server::Error as ReflectionError;

/// The health name that answers SERVING for as long as the process answers at all: what
/// liveness probes ask, so a role waiting for its database is not restarted for it.
pub const LIVENESS: &str = "liveness";

/// Adds health (SERVING for each name) and reflection advertising exactly `names`, with
/// schemas from `descriptor_set` (plus health's own); answers the health reporter, which
/// readiness and shutdown turn to NOT_SERVING.
pub async fn add_health_and_reflection(
    routes: &mut RoutesBuilder,
    names: &[&'static str],
    descriptor_set: &'static [u8],
) -> Result<HealthReporter, ReflectionError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(LIVENESS, ServingStatus::Serving)
        .await;
    for name in names {
        reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health")
    };
    let (mut v1, mut v1alpha) = (builder(), builder());
    for name in names {
        v1 = v1.with_service_name(*name);
        v1alpha = v1alpha.with_service_name(*name);
    }
    routes
        .add_service(health)
        .add_service(v1.build_v1()?)
        .add_service(v1alpha.build_v1alpha()?);
    Ok(reporter)
}

/// A server's health answers: what readiness and shutdown turn to NOT_SERVING.
#[derive(Clone)]
pub struct ServedHealth {
    pub reporter: HealthReporter,
    /// The services it answers for, besides the server as a whole (`""`).
    pub names: Vec<&'static str>,
}

/// Sets every one of `names`, and the server as a whole (`""`), to `status`.
pub async fn set_all(reporter: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in names {
        reporter.set_service_status(*name, status).await;
    }
}
