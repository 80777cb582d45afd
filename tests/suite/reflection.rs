//! Server reflection, both protocol versions grpcurl and other tools use: the server
//! lists exactly the services it serves and can describe them; and health answers for
//! each of them.

use crate::support::{Engine, app::TestApp};
use tonic_reflection::pb::{v1, v1alpha};

const SERVED: [&str; 3] = [
    "grpc.health.v1.Health",
    "pos.v1.StoreInternalService",
    "pos.v1.StoreService",
];

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_and_describe_served_services() {
    let app = TestApp::start(Engine::Sqlite).await;

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel());
    let requests = [
        v1::server_reflection_request::MessageRequest::ListServices(String::new()),
        v1::server_reflection_request::MessageRequest::FileContainingSymbol(
            "pos.v1.StoreService".into(),
        ),
    ]
    .map(|message| v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    });
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .expect("v1 reflection")
        .into_inner();
    let listed = responses
        .message()
        .await
        .expect("read")
        .expect("list response");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        listed.message_response
    else {
        panic!("unexpected v1 response: {listed:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.retain(|n| !n.starts_with("grpc.reflection."));
    names.sort();
    assert_eq!(
        names, SERVED,
        "unserved APIs such as UserService are not advertised"
    );
    let described = responses
        .message()
        .await
        .expect("read")
        .expect("file response");
    let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        described.message_response
    else {
        panic!("unexpected v1 response: {described:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());

    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let response = alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("v1alpha reflection")
        .into_inner()
        .message()
        .await
        .expect("read")
        .expect("response");
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("unexpected v1alpha response: {response:?}");
    };
    assert!(list.service.iter().any(|s| s.name == "pos.v1.StoreService"));
    app.stop().await;
}

/// The trade role served alone, as `pos serve trade` serves it.
#[tokio::test]
async fn the_trade_role_lists_its_services_and_reports_them_healthy() {
    let stack = crate::support::stack::TestStack::start(Engine::Sqlite).await;
    let trade = crate::trade_api::trade_replica(&stack).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", trade.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let names = listed_services(channel.clone()).await;
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "pos.v1.TradeInternalService",
            "pos.v1.TradeService"
        ]
    );
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for service in ["", "pos.v1.TradeService", "pos.v1.TradeInternalService"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health")
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    trade
        .stop(std::time::Duration::from_secs(5))
        .await
        .expect("stop");
    stack.stop().await;
}

/// The services a server lists by v1 reflection, sorted, without reflection itself.
async fn listed_services(channel: tonic::transport::Channel) -> Vec<String> {
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let listed = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner()
        .message()
        .await
        .expect("read")
        .expect("list response");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        listed.message_response
    else {
        panic!("unexpected response: {listed:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.retain(|n| !n.starts_with("grpc.reflection."));
    names.sort();
    names
}
