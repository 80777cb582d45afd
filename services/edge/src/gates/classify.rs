//! Looks the method up in the policy table: internal APIs are refused, unknown methods
//! are UNIMPLEMENTED, and known ones carry their [`Route`] on to the next gates.

use async_trait::async_trait;
use pos_common::{ApiError, Reason};
use tonic::{Status, body::Body};

use crate::{
    gate::Gate,
    policy::{self, Route},
};

#[derive(Clone, Default)]
pub struct Classify;

#[async_trait]
impl Gate for Classify {
    async fn check(&self, request: &mut http::Request<Body>) -> Result<(), Status> {
        let route = policy::route(request.uri().path());
        match route {
            Route::Internal => Err(ApiError::new(
                Reason::InternalOnly,
                "internal APIs are not served to clients",
            )
            .into()),
            Route::Unknown => Err(Status::unimplemented(format!(
                "unknown method {}",
                request.uri().path()
            ))),
            Route::Rpc { .. } | Route::Infrastructure { .. } => {
                request.extensions_mut().insert(route);
                Ok(())
            }
        }
    }
}
