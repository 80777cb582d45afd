//! Gives every unary call a deadline when the client set none, so a slow dependency can
//! not pin edge resources forever. Streams are left open by design.

use std::time::Duration;

use async_trait::async_trait;
use tonic::{Status, body::Body};

use crate::{gate::Gate, policy::Route};

#[derive(Clone)]
pub struct DefaultDeadline {
    header: http::HeaderValue,
}

impl DefaultDeadline {
    pub fn new(deadline: Duration) -> Self {
        // grpc-timeout: at most 8 digits and a unit; milliseconds cover ~27 hours.
        let millis = deadline.as_millis().clamp(1, 99_999_999);
        let header = http::HeaderValue::from_str(&format!("{millis}m"))
            .expect("digits and a unit are a valid header value");
        Self { header }
    }
}

#[async_trait]
impl Gate for DefaultDeadline {
    async fn check(&self, request: &mut http::Request<Body>) -> Result<(), Status> {
        let streaming = matches!(
            request.extensions().get::<Route>(),
            Some(Route::Rpc { rule, .. }) if rule.streaming
        );
        if !streaming && !request.headers().contains_key("grpc-timeout") {
            request
                .headers_mut()
                .insert("grpc-timeout", self.header.clone());
        }
        Ok(())
    }
}
