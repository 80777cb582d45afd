//! `GET /.well-known/jwks.json`: the public keys, from the key source, remembered for a
//! minute so anonymous traffic cannot turn into a stream of GetJwks calls.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Json, extract::State};
use pos_common::auth::{JwkSet, JwksSource, KeySourceError};

const FRESH_FOR: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct JwksDocument {
    source: Arc<dyn JwksSource>,
    cached: Arc<Mutex<Option<(Instant, JwkSet)>>>,
}

impl JwksDocument {
    pub fn new(source: Arc<dyn JwksSource>) -> Self {
        Self {
            source,
            cached: Arc::default(),
        }
    }

    async fn current(&self) -> Result<JwkSet, KeySourceError> {
        if let Some((at, jwks)) = self
            .cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return Ok(jwks.clone());
        }
        let jwks = self.source.fetch().await?;
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), jwks.clone()));
        Ok(jwks)
    }
}

pub async fn handler(
    State(document): State<JwksDocument>,
) -> Result<Json<JwkSet>, (http::StatusCode, &'static str)> {
    document.current().await.map(Json).map_err(|err| {
        tracing::warn!(error = %err, "cannot fetch the public keys");
        (
            http::StatusCode::SERVICE_UNAVAILABLE,
            "keys unavailable, retry later",
        )
    })
}
