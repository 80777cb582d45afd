//! Each check of a call happens once: the edge looks the token up in the deny-list (one
//! lookup for the token and its login), and the service behind it, seeing the edge's
//! attestation, does not look again. A call straight to a service, or one with a forged
//! attestation, is checked in full by the service.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use pos_common::{
    auth::EDGE_ATTESTATION,
    ephemeral::{EphemeralResult, EphemeralStore, SharedEphemeral},
};
use pos_proto::v1::{
    self as pb, store_service_client::StoreServiceClient, user_service_client::UserServiceClient,
};
use tonic::{Code, Request};

use crate::support::{
    Engine, assert_error, bearer, dev_signup,
    stack::{StackOptions, TestStack},
};

crate::on_both_engines!(the_deny_list_is_asked_once_per_call);

/// The shared state, counting deny-list lookups.
struct Counting {
    inner: SharedEphemeral,
    lookups: AtomicUsize,
}

#[async_trait]
impl EphemeralStore for Counting {
    async fn get(&self, key: &str) -> EphemeralResult<Option<String>> {
        if key.starts_with("denied-") {
            self.lookups.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> EphemeralResult<()> {
        self.inner.set(key, value, ttl).await
    }
    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> EphemeralResult<bool> {
        self.inner.set_if_absent(key, value, ttl).await
    }
    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> EphemeralResult<i64> {
        self.inner.increment(key, by, ttl).await
    }
    async fn delete(&self, key: &str) -> EphemeralResult<bool> {
        self.inner.delete(key).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: &str,
        new: &str,
        ttl: Duration,
    ) -> EphemeralResult<bool> {
        self.inner.compare_and_swap(key, expected, new, ttl).await
    }
    async fn exists_any(&self, keys: &[String]) -> EphemeralResult<bool> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.inner.exists_any(keys).await
    }
}

async fn the_deny_list_is_asked_once_per_call(engine: Engine) {
    let counting = Arc::new(Counting {
        inner: crate::support::shared_state(engine).await,
        lookups: AtomicUsize::new(0),
    });
    let stack = TestStack::start_with(
        engine,
        StackOptions {
            shared_state: Some(counting.clone()),
            ..StackOptions::default()
        },
    )
    .await;
    let signed = dev_signup(
        stack.channel(),
        "once@example.com",
        "Once",
        pb::PosGrade::Bronze,
    )
    .await;
    let tokens = signed.tokens.expect("tokens");
    let lookups = || counting.lookups.swap(0, Ordering::SeqCst);

    lookups();
    StoreServiceClient::with_interceptor(stack.channel(), bearer(&tokens.access_token))
        .get_my_store(pb::GetMyStoreRequest {})
        .await
        .expect("through the edge");
    assert_eq!(lookups(), 1, "the edge looks once, the store trusts it");

    // Straight to the store role (in this process, no edge in front): it looks itself.
    let store = stack.stack.peers["store"].peer.clone();
    let mut direct = StoreServiceClient::new(store);
    let with_token = |attestation: Option<String>| {
        let mut request = Request::new(pb::GetMyStoreRequest {});
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", tokens.access_token)
                .parse()
                .expect("ascii"),
        );
        if let Some(attestation) = attestation {
            request
                .metadata_mut()
                .insert(EDGE_ATTESTATION, attestation.parse().expect("ascii"));
        }
        request
    };
    direct.get_my_store(with_token(None)).await.expect("direct");
    assert_eq!(lookups(), 1, "a direct call is checked in full");
    // A forged attestation, or another role's token as one, buys nothing.
    for forged in ["forged".to_string(), stack.issuer.service("user")] {
        direct
            .get_my_store(with_token(Some(forged)))
            .await
            .expect("direct");
        assert_eq!(lookups(), 1, "a forged attestation is ignored");
    }
    direct
        .get_my_store(with_token(Some(stack.issuer.service("edge"))))
        .await
        .expect("vouched");
    assert_eq!(lookups(), 0, "the edge's own attestation is honoured");

    // After logout the token is refused both through the edge and straight at the store.
    UserServiceClient::with_interceptor(stack.channel(), bearer(&tokens.access_token))
        .logout(pb::LogoutRequest {
            refresh_token: tokens.refresh_token.clone(),
        })
        .await
        .expect("logout");
    assert_error(
        StoreServiceClient::with_interceptor(stack.channel(), bearer(&tokens.access_token))
            .get_my_store(pb::GetMyStoreRequest {})
            .await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    for attestation in [None, Some("forged".to_string())] {
        assert_error(
            direct.get_my_store(with_token(attestation)).await,
            Code::Unauthenticated,
            "TOKEN_REVOKED",
        );
    }
    stack.stop().await;
}
