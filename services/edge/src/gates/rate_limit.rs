//! Per-principal rate limits in fixed one-minute windows, counted in the shared ephemeral
//! store so every edge replica enforces one budget. Anonymous callers are counted by IP.

use std::{net::SocketAddr, time::Duration};

use async_trait::async_trait;
use axum::extract::ConnectInfo;
use pos_common::{
    ApiError, Reason, auth::Principal, clock::SharedClock, ephemeral::SharedEphemeral,
};
use tonic::{Status, body::Body};

use crate::gate::Gate;

const WINDOW_SECS: i64 = 60;

#[derive(Clone)]
pub struct RateLimit {
    store: SharedEphemeral,
    per_minute: i64,
    clock: SharedClock,
}

impl RateLimit {
    pub fn new(store: SharedEphemeral, per_minute: u32, clock: SharedClock) -> Self {
        Self {
            store,
            per_minute: i64::from(per_minute),
            clock,
        }
    }
}

fn caller_key(request: &http::Request<Body>) -> String {
    match request.extensions().get::<Principal>() {
        Some(Principal::Owner { user_id, .. }) => format!("owner:{user_id}"),
        Some(Principal::Device(tablet)) => format!("device:{}", tablet.device_id),
        Some(Principal::Service { role }) => format!("service:{role}"),
        None => match request.extensions().get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(addr)) => format!("ip:{}", addr.ip()),
            None => "anonymous".to_string(),
        },
    }
}

#[async_trait]
impl Gate for RateLimit {
    async fn check(&self, request: &mut http::Request<Body>) -> Result<(), Status> {
        let now = self.clock.now().timestamp();
        let window = now.div_euclid(WINDOW_SECS);
        let key = format!("rate:{}:{window}", caller_key(request));
        let ttl = Duration::from_secs(WINDOW_SECS as u64 + 1);
        match self.store.increment(&key, 1, ttl).await {
            Ok(count) if count > self.per_minute => {
                let retry_after = WINDOW_SECS - now.rem_euclid(WINDOW_SECS);
                Err(
                    ApiError::new(Reason::RateLimited, "too many requests, slow down")
                        .with_metadata("retry_after_seconds", retry_after)
                        .into(),
                )
            }
            Ok(_) => Ok(()),
            Err(err) => {
                // Limits protect capacity; they are not worth refusing every call over.
                tracing::warn!(%err, "rate limit store unavailable; letting the call through");
                Ok(())
            }
        }
    }
}
