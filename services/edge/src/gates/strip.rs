//! Drops client-supplied internal metadata: nothing a client sends under the `x-pos-`
//! prefix reaches a service, so no header can pose as edge-verified identity.

use async_trait::async_trait;
use tonic::{Status, body::Body};

use crate::gate::Gate;

/// The reserved prefix of internal metadata keys.
pub const INTERNAL_PREFIX: &str = "x-pos-";

#[derive(Clone, Default)]
pub struct StripInternalMetadata;

#[async_trait]
impl Gate for StripInternalMetadata {
    async fn check(&self, request: &mut http::Request<Body>) -> Result<(), Status> {
        let headers = request.headers_mut();
        let internal: Vec<http::HeaderName> = headers
            .keys()
            .filter(|name| name.as_str().starts_with(INTERNAL_PREFIX))
            .cloned()
            .collect();
        for name in internal {
            headers.remove(name);
        }
        Ok(())
    }
}
