//! Each check of a call happens once: the edge looks the token up in the deny-list (one
//! lookup for the token and its login), and the service behind it, seeing the edge's
//! attestation, does not look again; a tablet's credential is asked of the store once,
//! and not at all for PlaceOrder (the store checks it with the order's reservation). A
//! call straight to a service, or one with a forged attestation, is checked in full by
//! the service.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use pos_common::{
    auth::EDGE_ATTESTATION,
    ephemeral::{EphemeralResult, EphemeralStore, SharedEphemeral},
    peer,
    role::{PeerRole, Served},
};
use pos_proto::v1::{
    self as pb,
    store_internal_service_server::{StoreInternalService, StoreInternalServiceServer},
    store_service_client::StoreServiceClient,
    trade_service_client::TradeServiceClient,
    user_service_client::UserServiceClient,
};
use tonic::{Code, Request, Response, Status};
use tower::ServiceExt;

use crate::support::{
    Engine, assert_error, bearer, dev_signup,
    stack::{StackOptions, TestStack},
};

crate::on_both_engines!(
    the_deny_list_is_asked_once_per_call,
    a_tablet_credential_is_asked_once_per_call,
    placing_an_order_asks_no_one_for_the_tablet_credential,
);

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

/// A store that says every tablet credential is current, and counts the questions.
struct LyingStore {
    version: i64,
    asked: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl StoreInternalService for LyingStore {
    async fn get_device_credential(
        &self,
        _: Request<pb::GetDeviceCredentialRequest>,
    ) -> Result<Response<pb::GetDeviceCredentialResponse>, Status> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(pb::GetDeviceCredentialResponse {
            credential_version: self.version,
            revoked: false,
        }))
    }

    async fn create_store_for_owner(
        &self,
        _: Request<pb::CreateStoreForOwnerRequest>,
    ) -> Result<Response<pb::CreateStoreForOwnerResponse>, Status> {
        Err(Status::unimplemented("not this store"))
    }

    async fn reserve_stock(
        &self,
        _: Request<pb::ReserveStockRequest>,
    ) -> Result<Response<pb::ReserveStockResponse>, Status> {
        Err(Status::unimplemented("not this store"))
    }

    async fn reserve_stocks(
        &self,
        _: Request<pb::ReserveStocksRequest>,
    ) -> Result<Response<pb::ReserveStocksResponse>, Status> {
        Err(Status::unimplemented("not this store"))
    }

    async fn confirm_stock(
        &self,
        _: Request<pb::ConfirmStockRequest>,
    ) -> Result<Response<pb::ConfirmStockResponse>, Status> {
        Err(Status::unimplemented("not this store"))
    }

    async fn confirm_stocks(
        &self,
        _: Request<pb::ConfirmStocksRequest>,
    ) -> Result<Response<pb::ConfirmStocksResponse>, Status> {
        Err(Status::unimplemented("not this store"))
    }

    async fn release_stock(
        &self,
        _: Request<pb::ReleaseStockRequest>,
    ) -> Result<Response<pb::ReleaseStockResponse>, Status> {
        Err(Status::unimplemented("not this store"))
    }

    async fn list_stores_by_settlement_day(
        &self,
        _: Request<pb::ListStoresBySettlementDayRequest>,
    ) -> Result<Response<pb::ListStoresBySettlementDayResponse>, Status> {
        Err(Status::unimplemented("not this store"))
    }
}

/// A tablet call through the edge asks the store for the tablet's credential once, and
/// the store does not check it again: an edge told (by a lying store) that a revoked
/// credential is current gets the call through, while the same call straight to the
/// store is refused by the store's own check.
async fn a_tablet_credential_is_asked_once_per_call(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let signed = dev_signup(
        stack.channel(),
        "tablet@example.com",
        "Tablets",
        pb::PosGrade::Bronze,
    )
    .await;
    let owner = signed.tokens.expect("tokens").access_token;
    let mut store = StoreServiceClient::with_interceptor(stack.channel(), bearer(&owner));
    let device = store
        .list_devices(pb::ListDevicesRequest::default())
        .await
        .expect("devices")
        .into_inner()
        .devices[0]
        .id;
    let issued = store
        .issue_device_token(pb::IssueDeviceTokenRequest { device_id: device })
        .await
        .expect("issue")
        .into_inner();
    let version = issued.device.expect("device").credential_version;
    let tablet = issued.device_token;
    store
        .revoke_device(pb::RevokeDeviceRequest { device_id: device })
        .await
        .expect("revoke");

    // A second edge of the stack, whose credential questions go to the liar.
    let asked = Arc::new(AtomicUsize::new(0));
    let liar = StoreInternalServiceServer::new(LyingStore {
        version,
        asked: asked.clone(),
    });
    let real = stack.stack.peers["store"].clone();
    let real_peer = real.peer.clone();
    let routed = tower::service_fn(move |request: http::Request<tonic::body::Body>| {
        let liar = liar.clone();
        let real = real_peer.clone();
        async move {
            if request.uri().path() == "/pos.v1.StoreInternalService/GetDeviceCredential" {
                liar.oneshot(request).await.map_err(tower::BoxError::from)
            } else {
                real.oneshot(request).await.map_err(tower::BoxError::from)
            }
        }
    });
    let peers = HashMap::from([
        (
            "store",
            PeerRole {
                services: real.services,
                peer: peer::in_process(routed),
            },
        ),
        ("user", stack.stack.peers["user"].clone()),
    ]);
    let context = stack.context("edge", peers).await;
    let flags = pos::up::matches(&["--rate-limit-per-minute", "100000"]).expect("flags");
    let served = pos::registry::role("edge")
        .expect("edge role")
        .build(&flags, context)
        .await
        .expect("build a second edge");
    let second = pos::startup::serve("127.0.0.1:0".parse().expect("addr"), served)
        .await
        .expect("serve it");
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", second.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");

    StoreServiceClient::with_interceptor(channel, bearer(&tablet))
        .list_products(pb::ListProductsRequest::default())
        .await
        .expect("the edge vouches; the store does not ask again");
    assert_eq!(asked.load(Ordering::SeqCst), 1, "asked once");

    let mut direct = StoreServiceClient::with_interceptor(real.peer.clone(), bearer(&tablet));
    assert_error(
        direct
            .list_products(pb::ListProductsRequest::default())
            .await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_error(
        StoreServiceClient::with_interceptor(stack.channel(), bearer(&tablet))
            .list_products(pb::ListProductsRequest::default())
            .await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    second.stop(Duration::from_secs(5)).await.expect("stop");
    stack.stop().await;
}

/// The store's internal API, counting the calls to each method.
type Calls = Arc<Mutex<HashMap<String, usize>>>;

fn counted(store: &PeerRole, calls: Calls) -> PeerRole {
    let real = store.peer.clone();
    let counting = tower::service_fn(move |request: http::Request<tonic::body::Body>| {
        *calls
            .lock()
            .expect("not poisoned")
            .entry(request.uri().path().to_string())
            .or_default() += 1;
        let real = real.clone();
        async move { real.oneshot(request).await.map_err(tower::BoxError::from) }
    });
    PeerRole {
        services: store.services,
        peer: peer::in_process(counting),
    }
}

/// PlaceOrder through the edge costs no credential question at all: the edge leaves it
/// to the store, which checks the tablet with the reservation (one ReserveStocks call),
/// and refuses a revoked tablet there. Another tablet call (GetCurrentTrade) is still
/// asked of the store once, by the edge. A second edge and a second trade role of the
/// stack reach the store through a counter.
async fn placing_an_order_asks_no_one_for_the_tablet_credential(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let signed = dev_signup(
        stack.channel(),
        "orders@example.com",
        "Orders",
        pb::PosGrade::Bronze,
    )
    .await;
    let owner = signed.tokens.expect("tokens").access_token;
    let mut store = StoreServiceClient::with_interceptor(stack.channel(), bearer(&owner));
    let tea = store
        .create_product(pb::CreateProductRequest {
            name: "Tea".into(),
            category: pb::ProductCategory::Drink as i32,
            price: 1000,
            base_stock: 10,
        })
        .await
        .expect("product")
        .into_inner()
        .product
        .expect("product")
        .id;
    let device = store
        .list_devices(pb::ListDevicesRequest::default())
        .await
        .expect("devices")
        .into_inner()
        .devices[0]
        .id;
    let tablet = store
        .issue_device_token(pb::IssueDeviceTokenRequest { device_id: device })
        .await
        .expect("issue")
        .into_inner()
        .device_token;

    let calls: Calls = Arc::default();
    let peers = &stack.stack.peers;
    let store_peer = counted(&peers["store"], calls.clone());
    let context = stack
        .context("trade", HashMap::from([("store", store_peer.clone())]))
        .await;
    let flags = pos::up::matches(&[]).expect("flags");
    let Served::Grpc { services, auth } = pos::registry::role("trade")
        .expect("the trade role")
        .build(&flags, context)
        .await
        .expect("a second trade role")
    else {
        panic!("the trade role serves gRPC");
    };
    let trade = PeerRole {
        services: peers["trade"].services,
        peer: pos::startup::in_process(services, auth),
    };
    let edge_peers = HashMap::from([
        ("store", store_peer),
        ("user", peers["user"].clone()),
        ("trade", trade),
    ]);
    let context = stack.context("edge", edge_peers).await;
    let flags = pos::up::matches(&["--rate-limit-per-minute", "100000"]).expect("flags");
    let served = pos::registry::role("edge")
        .expect("edge role")
        .build(&flags, context)
        .await
        .expect("build a second edge");
    let second = pos::startup::serve("127.0.0.1:0".parse().expect("addr"), served)
        .await
        .expect("serve it");
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", second.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut trade = TradeServiceClient::with_interceptor(channel, bearer(&tablet));
    let asked = |method: &str| {
        calls
            .lock()
            .expect("not poisoned")
            .remove(&format!("/pos.v1.StoreInternalService/{method}"))
            .unwrap_or_default()
    };
    let place = |key: &str| pb::PlaceOrderRequest {
        lines: vec![pb::OrderLineInput {
            product_id: tea,
            count: 1,
        }],
        idempotency_key: key.into(),
    };

    trade.place_order(place("first")).await.expect("order");
    assert_eq!(
        (asked("GetDeviceCredential"), asked("ReserveStocks")),
        (0, 1),
        "the credential is checked with the reservation"
    );
    trade
        .get_current_trade(pb::GetCurrentTradeRequest {})
        .await
        .expect("current trade");
    assert_eq!(asked("GetDeviceCredential"), 1, "asked once, by the edge");

    store
        .revoke_device(pb::RevokeDeviceRequest { device_id: device })
        .await
        .expect("revoke");
    assert_error(
        trade.place_order(place("second")).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_eq!(
        (asked("GetDeviceCredential"), asked("ReserveStocks")),
        (0, 1),
        "refused by the reservation's check"
    );
    second.stop(Duration::from_secs(5)).await.expect("stop");
    stack.stop().await;
}
