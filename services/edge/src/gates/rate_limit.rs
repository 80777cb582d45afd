//! Per-principal rate limits in fixed one-minute windows, counted in the shared ephemeral
//! store so every edge replica enforces one budget. Anonymous callers are counted by IP,
//! and so are calls whose token proves no one ([`Authenticate`](super::Authenticate)
//! charges them here), so forging tokens is no way around the limit. Health and
//! reflection are never limited nor counted: probes from behind a NAT or a load balancer
//! share an address with ordinary traffic, and a failed probe restarts a healthy pod.

use std::{net::SocketAddr, time::Duration};

use async_trait::async_trait;
use axum::extract::ConnectInfo;
use pos_common::{
    ApiError, Reason, auth::Principal, clock::SharedClock, ephemeral::SharedEphemeral,
};
use tonic::{Status, body::Body};

use crate::{gate::Gate, policy::Route};

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

    /// Counts a call against the caller's address, whatever it claims to be: for calls
    /// whose credentials failed. Over the limit, the call is answered RATE_LIMITED.
    pub fn charge_address(
        &self,
        request: &http::Request<Body>,
    ) -> impl Future<Output = Result<(), Status>> + Send + '_ {
        // The key is taken now: the request (its body) is not `Sync`, so it cannot be
        // held across the store's await.
        let key = address_key(request);
        async move { self.charge(&key).await }
    }

    /// Counts one call of `caller` in the current window; refuses it over the limit.
    async fn charge(&self, caller: &str) -> Result<(), Status> {
        let now = self.clock.now().timestamp();
        let window = now.div_euclid(WINDOW_SECS);
        let key = format!("rate:{caller}:{window}");
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

fn address_key(request: &http::Request<Body>) -> String {
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => format!("ip:{}", addr.ip()),
        None => "anonymous".to_string(),
    }
}

fn caller_key(request: &http::Request<Body>) -> String {
    match request.extensions().get::<Principal>() {
        Some(Principal::Owner { user_id, .. }) => format!("owner:{user_id}"),
        Some(Principal::Device(tablet)) => format!("device:{}", tablet.device_id),
        Some(Principal::Service { role }) => format!("service:{role}"),
        None => address_key(request),
    }
}

#[async_trait]
impl Gate for RateLimit {
    async fn check(&self, request: &mut http::Request<Body>) -> Result<(), Status> {
        if let Some(Route::Infrastructure { .. }) = request.extensions().get::<Route>() {
            return Ok(());
        }
        let key = caller_key(request);
        self.charge(&key).await
    }
}
