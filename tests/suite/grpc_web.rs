//! grpc-web through the edge from a Rust client (tonic-web's client layer over hyper), on
//! HTTP/1.1 and on HTTP/2, and the edge's message size limit. The browser test
//! (`tests/browser`) covers grpc-web-text and CORS from Chromium.

use crate::support::{Engine, bearer, stack::TestStack};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use pos_proto::v1::{
    self as pb, login_result, store_service_client::StoreServiceClient,
    user_service_client::UserServiceClient,
};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic_web::GrpcWebClientLayer;
use tower::ServiceBuilder;

#[tokio::test]
async fn grpc_web_signup_and_menu_over_http1_and_http2() {
    let stack = TestStack::start(Engine::Sqlite).await;
    let uri: http::Uri = format!("http://{}", stack.addr).parse().expect("uri");
    for (label, http2) in [("HTTP/1.1", false), ("HTTP/2", true)] {
        let client = Client::builder(TokioExecutor::new())
            .http2_only(http2)
            .build_http();
        let web = ServiceBuilder::new()
            .layer(GrpcWebClientLayer::new())
            .service(client);
        let mut users = UserServiceClient::with_origin(web.clone(), uri.clone());
        let email = format!("web-{}@example.com", if http2 { 2 } else { 1 });
        let login = users
            .login_with_provider_token(pb::LoginWithProviderTokenRequest {
                provider_token: Some(pb::ProviderToken {
                    provider: "dev".into(),
                    access_token: email,
                }),
            })
            .await
            .unwrap_or_else(|e| panic!("{label} login: {e:?}"))
            .into_inner();
        let Some(login_result::Result::SignupTicket(ticket)) = login.result.and_then(|r| r.result)
        else {
            panic!("{label}: ticket expected");
        };
        let tokens = users
            .sign_up(pb::SignUpRequest {
                identity: Some(pb::sign_up_request::Identity::SignupTicket(ticket.ticket)),
                store_name: "Web Cafe".into(),
                pos_grade: pb::PosGrade::Bronze as i32,
                settlement_day: 5,
            })
            .await
            .unwrap_or_else(|e| panic!("{label} sign up: {e:?}"))
            .into_inner()
            .tokens
            .expect("tokens");
        let mut owner = StoreServiceClient::with_origin(
            InterceptedService::new(web.clone(), bearer(&tokens.access_token)),
            uri.clone(),
        );
        let store = owner
            .get_my_store(pb::GetMyStoreRequest {})
            .await
            .unwrap_or_else(|e| panic!("{label} my store: {e:?}"))
            .into_inner()
            .store
            .expect("store");
        assert_eq!(store.name, "Web Cafe", "{label}");
        // Errors keep their status and details over grpc-web.
        let status = StoreServiceClient::with_origin(web.clone(), uri.clone())
            .list_products(pb::ListProductsRequest::default())
            .await
            .expect_err("no token");
        assert_eq!(
            (status.code(), crate::support::reason(&status).as_str()),
            (Code::Unauthenticated, "TOKEN_MISSING"),
            "{label}"
        );
    }
    stack.stop().await;
}

#[tokio::test]
async fn oversized_messages_are_refused_and_change_nothing() {
    let stack = TestStack::start(Engine::Sqlite).await;
    let signed = crate::support::dev_signup(
        stack.channel(),
        "big@example.com",
        "Big",
        pb::PosGrade::Bronze,
    )
    .await;
    let store = signed.store.expect("store");
    let token = signed.tokens.expect("tokens").access_token;
    let mut owner = StoreServiceClient::with_interceptor(stack.channel(), bearer(&token))
        .max_encoding_message_size(64 * 1024 * 1024);
    let status = owner
        .create_product(pb::CreateProductRequest {
            name: "x".repeat(5 * 1024 * 1024),
            category: pb::ProductCategory::Drink as i32,
            price: 1,
            base_stock: 1,
        })
        .await
        .expect_err("a 5 MiB message is over the 4 MiB limit");
    assert_ne!(status.code(), Code::Ok);
    assert!(
        stack
            .store_storage
            .list_products(
                pos_common::domain::StoreId::from_stored(store.id),
                pos_store::storage::ProductFilter {
                    category: None,
                    include_deleted: true,
                },
                pos_store::storage::Page::first(1),
            )
            .await
            .expect("list")
            .is_empty()
    );
    stack.stop().await;
}
