//! Identity end to end through the edge, on both backends: OAuth2 + PKCE against a fake
//! Kakao, signup (idempotent, retry-safe after a store outage), login, refresh rotation
//! with reuse detection, logout.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use pos::startup;
use pos_common::{domain::StoreId, peer, role::PeerRole};
use pos_proto::v1::{
    self as pb, login_result, store_service_client::StoreServiceClient,
    user_service_client::UserServiceClient,
};
use pos_user::storage::{Email, User};
use tonic::{Code, transport::Channel};
use tower::ServiceExt;

use crate::support::{
    Engine, assert_error, bearer,
    fake_kakao::Person,
    stack::{REDIRECT_URI, TestStack},
    violated_fields,
};

crate::on_both_engines!(
    oauth_signup_login_refresh_logout,
    signup_is_idempotent_and_emails_are_unique,
    oauth_refuses_bad_state_code_and_redirect,
    signup_interrupted_by_a_store_outage_completes_on_retry_or_login,
);

fn kim() -> Person {
    Person {
        id: 4242,
        email: "Kim@Example.com".into(),
        name: "Kim".into(),
        phone: "+82 10-1234-5678".into(),
    }
}

fn users(channel: Channel) -> UserServiceClient<Channel> {
    UserServiceClient::new(channel)
}

async fn oauth_login(stack: &TestStack, person: &Person) -> login_result::Result {
    let mut client = users(stack.channel());
    let started = client
        .start_o_auth_login(pb::StartOAuthLoginRequest {
            provider: "kakao".into(),
            redirect_uri: REDIRECT_URI.into(),
        })
        .await
        .expect("start")
        .into_inner();
    assert!(started.authorize_url.starts_with(&stack.kakao.base));
    let (code, state) = stack.kakao.consent(&started.authorize_url, person);
    assert_eq!(state, started.state);
    client
        .complete_o_auth_login(pb::CompleteOAuthLoginRequest {
            provider: "kakao".into(),
            code,
            state,
            login_session: started.login_session,
        })
        .await
        .expect("complete")
        .into_inner()
        .result
        .and_then(|r| r.result)
        .expect("result")
}

fn signup(ticket: &str, grade: pb::PosGrade) -> pb::SignUpRequest {
    pb::SignUpRequest {
        identity: Some(pb::sign_up_request::Identity::SignupTicket(ticket.into())),
        store_name: "Kim's Kitchen".into(),
        pos_grade: grade as i32,
        settlement_day: 15,
    }
}

async fn oauth_signup_login_refresh_logout(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let login_result::Result::SignupTicket(ticket) = oauth_login(&stack, &kim()).await else {
        panic!("a new owner gets a signup ticket");
    };
    assert_eq!(
        (ticket.email.as_str(), ticket.phone.as_str()),
        ("kim@example.com", "01012345678")
    );

    let signed = users(stack.channel())
        .sign_up(signup(&ticket.ticket, pb::PosGrade::Silver))
        .await
        .expect("sign up")
        .into_inner();
    let store = signed.store.expect("store");
    let tokens = signed.tokens.expect("tokens");
    let me = UserServiceClient::with_interceptor(stack.channel(), bearer(&tokens.access_token))
        .get_me(pb::GetMeRequest {})
        .await
        .expect("me")
        .into_inner();
    assert_eq!(me.store_id, store.id);
    assert_eq!(me.user.expect("user").phone, "01012345678");
    let devices =
        StoreServiceClient::with_interceptor(stack.channel(), bearer(&tokens.access_token))
            .list_devices(pb::ListDevicesRequest::default())
            .await
            .expect("devices")
            .into_inner()
            .devices;
    assert_eq!(devices.len(), 50, "SILVER gets 50 tablets");

    // Logging in again (OAuth, or with a Kakao access token) gives tokens, not a ticket.
    assert!(matches!(
        oauth_login(&stack, &kim()).await,
        login_result::Result::Tokens(_)
    ));
    let by_token = users(stack.channel())
        .login_with_provider_token(pb::LoginWithProviderTokenRequest {
            provider_token: Some(pb::ProviderToken {
                provider: "kakao".into(),
                access_token: stack.kakao.access_token_for(&kim()),
            }),
        })
        .await
        .expect("token login")
        .into_inner();
    assert!(matches!(
        by_token.result.and_then(|r| r.result),
        Some(login_result::Result::Tokens(_))
    ));

    // Refresh rotates; presenting the rotated token again revokes the whole family.
    let refresh = |token: &str| {
        let token = token.to_string();
        let channel = stack.channel();
        async move {
            users(channel)
                .refresh_tokens(pb::RefreshTokensRequest {
                    refresh_token: token,
                })
                .await
                .map(|r| r.into_inner().tokens.expect("tokens"))
        }
    };
    let second = refresh(&tokens.refresh_token).await.expect("rotate");
    let third = refresh(&second.refresh_token).await.expect("rotate again");
    assert_error(
        refresh(&tokens.refresh_token).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_error(
        refresh(&third.refresh_token).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );

    // Logout: the refresh family and the access token stop working at once.
    let fresh = match oauth_login(&stack, &kim()).await {
        login_result::Result::Tokens(t) => t,
        other => panic!("expected tokens, got {other:?}"),
    };
    let mut mine =
        UserServiceClient::with_interceptor(stack.channel(), bearer(&fresh.access_token));
    mine.logout(pb::LogoutRequest {
        refresh_token: fresh.refresh_token.clone(),
    })
    .await
    .expect("logout");
    assert_error(
        mine.get_me(pb::GetMeRequest {}).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_error(
        StoreServiceClient::with_interceptor(stack.channel(), bearer(&fresh.access_token))
            .get_my_store(pb::GetMyStoreRequest {})
            .await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_error(
        refresh(&fresh.refresh_token).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    // Other logins of the same owner are untouched.
    assert!(
        refresh(&second.refresh_token).await.is_err(),
        "already revoked by reuse"
    );
    stack.stop().await;
}

async fn signup_is_idempotent_and_emails_are_unique(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let login_result::Result::SignupTicket(ticket) = oauth_login(&stack, &kim()).await else {
        panic!("ticket");
    };
    let mut client = users(stack.channel());
    let first = client
        .sign_up(signup(&ticket.ticket, pb::PosGrade::Bronze))
        .await
        .expect("first")
        .into_inner();
    // The ticket is spent; signing up again with the same identity (a provider token)
    // finds the same owner and store.
    assert_error(
        client
            .sign_up(signup(&ticket.ticket, pb::PosGrade::Bronze))
            .await,
        Code::FailedPrecondition,
        "SIGNUP_TICKET_EXPIRED",
    );
    let again = client
        .sign_up(pb::SignUpRequest {
            identity: Some(pb::sign_up_request::Identity::ProviderToken(
                pb::ProviderToken {
                    provider: "kakao".into(),
                    access_token: stack.kakao.access_token_for(&kim()),
                },
            )),
            ..signup("", pb::PosGrade::Bronze)
        })
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(
        first.user.as_ref().map(|u| u.id),
        again.user.as_ref().map(|u| u.id)
    );
    assert_eq!(
        first.store.as_ref().map(|s| s.id),
        again.store.as_ref().map(|s| s.id)
    );
    let store_id = StoreId::from_stored(first.store.expect("store").id);
    assert_eq!(
        stack
            .store_storage
            .devices_of_store(store_id)
            .await
            .expect("devices")
            .len(),
        30
    );

    // Another Kakao account with the same e-mail cannot take it.
    let twin = Person { id: 7, ..kim() };
    let status = assert_error(
        client
            .sign_up(pb::SignUpRequest {
                identity: Some(pb::sign_up_request::Identity::ProviderToken(
                    pb::ProviderToken {
                        provider: "kakao".into(),
                        access_token: stack.kakao.access_token_for(&twin),
                    },
                )),
                ..signup("", pb::PosGrade::Gold)
            })
            .await,
        Code::AlreadyExists,
        "EMAIL_ALREADY_USED",
    );
    assert!(status.message().contains("e-mail"));
    // Nor can it log into the existing account: logins go by provider identity.
    assert_error(
        client
            .login_with_provider_token(pb::LoginWithProviderTokenRequest {
                provider_token: Some(pb::ProviderToken {
                    provider: "kakao".into(),
                    access_token: stack.kakao.access_token_for(&twin),
                }),
            })
            .await,
        Code::AlreadyExists,
        "EMAIL_ALREADY_USED",
    );
    // The owner changing their e-mail at the provider still reaches their account.
    let moved = Person {
        email: "kim.new@example.com".into(),
        ..kim()
    };
    assert!(matches!(
        oauth_login(&stack, &moved).await,
        login_result::Result::Tokens(_)
    ));
    assert_error(
        client
            .sign_up(signup("no-such-ticket", pb::PosGrade::Bronze))
            .await,
        Code::FailedPrecondition,
        "SIGNUP_TICKET_EXPIRED",
    );
    let status = assert_error(
        client
            .sign_up(pb::SignUpRequest {
                store_name: String::new(),
                pos_grade: 0,
                settlement_day: 2,
                ..signup(&ticket.ticket, pb::PosGrade::Bronze)
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(
        violated_fields(&status),
        ["store_name", "pos_grade", "settlement_day"]
    );

    // An owner who shares no phone number with Kakao can still sign up.
    let private = Person {
        id: 99,
        email: "quiet@example.com".into(),
        name: "Quiet".into(),
        phone: String::new(),
    };
    let login_result::Result::SignupTicket(ticket) = oauth_login(&stack, &private).await else {
        panic!("ticket");
    };
    assert_eq!(ticket.phone, "");
    let signed = client
        .sign_up(signup(&ticket.ticket, pb::PosGrade::Bronze))
        .await
        .expect("sign up")
        .into_inner();
    assert_eq!(signed.user.expect("user").phone, "");
    stack.stop().await;
}

async fn oauth_refuses_bad_state_code_and_redirect(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let mut client = users(stack.channel());
    let status = assert_error(
        client
            .start_o_auth_login(pb::StartOAuthLoginRequest {
                provider: "kakao".into(),
                redirect_uri: "https://evil.example/steal".into(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["redirect_uri"]);
    let status = assert_error(
        client
            .start_o_auth_login(pb::StartOAuthLoginRequest {
                provider: "myspace".into(),
                redirect_uri: REDIRECT_URI.into(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["provider"]);

    let started = client
        .start_o_auth_login(pb::StartOAuthLoginRequest {
            provider: "kakao".into(),
            redirect_uri: REDIRECT_URI.into(),
        })
        .await
        .expect("start")
        .into_inner();
    // A code the provider never issued is refused by the provider, and the state is spent.
    assert_error(
        client
            .complete_o_auth_login(pb::CompleteOAuthLoginRequest {
                provider: "kakao".into(),
                code: "forged".into(),
                state: started.state.clone(),
                login_session: started.login_session.clone(),
            })
            .await,
        Code::Unauthenticated,
        "TOKEN_INVALID",
    );
    let (code, state) = stack.kakao.consent(&started.authorize_url, &kim());
    let status = assert_error(
        client
            .complete_o_auth_login(pb::CompleteOAuthLoginRequest {
                provider: "kakao".into(),
                code,
                state,
                login_session: started.login_session.clone(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["state"], "a state works once");
    // Someone who only saw the redirect (code and state) cannot finish the login, and
    // their attempt does not spend it: the client holding the login's secret can.
    let started = client
        .start_o_auth_login(pb::StartOAuthLoginRequest {
            provider: "kakao".into(),
            redirect_uri: REDIRECT_URI.into(),
        })
        .await
        .expect("start")
        .into_inner();
    let (code, state) = stack.kakao.consent(&started.authorize_url, &kim());
    let status = assert_error(
        client
            .complete_o_auth_login(pb::CompleteOAuthLoginRequest {
                provider: "kakao".into(),
                code: code.clone(),
                state: state.clone(),
                login_session: "guessed".into(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["login_session"]);
    let rightful = client
        .complete_o_auth_login(pb::CompleteOAuthLoginRequest {
            provider: "kakao".into(),
            code,
            state,
            login_session: started.login_session,
        })
        .await
        .expect("the starting client finishes")
        .into_inner();
    assert!(matches!(
        rightful.result.and_then(|r| r.result),
        Some(login_result::Result::SignupTicket(_))
    ));
    assert!(user(&stack, "kim@example.com").await.is_none());
    stack.stop().await;
}

/// The owner with this e-mail, as the user role stored them.
async fn user(stack: &TestStack, email: &str) -> Option<User> {
    stack
        .user_storage
        .by_email(&Email::parse(email).expect("email"))
        .await
        .expect("read")
}

/// Another user role of the stack, reaching the store through a switch that can cut it off.
async fn user_role_with_flaky_store(stack: &TestStack, up: Arc<AtomicBool>) -> startup::Running {
    let store = stack.stack.peers["store"].clone();
    let inner = store.peer.clone();
    let flaky = tower::service_fn(move |request: http::Request<tonic::body::Body>| {
        let inner = inner.clone();
        let up = up.clone();
        async move {
            if !up.load(Ordering::SeqCst) {
                return Err::<_, tower::BoxError>("store service unreachable".into());
            }
            inner.oneshot(request).await.map_err(Into::into)
        }
    });
    let peers = HashMap::from([(
        "store",
        PeerRole {
            services: store.services,
            peer: peer::in_process(flaky),
        },
    )]);
    let context = stack.context("user", peers).await;
    let role = pos::registry::role("user").expect("user role");
    let served = role
        .build(&pos::up::matches(&[]).expect("flags"), context)
        .await
        .expect("build the user role");
    startup::serve("127.0.0.1:0".parse().expect("addr"), served)
        .await
        .expect("serve the user role")
}

async fn signup_interrupted_by_a_store_outage_completes_on_retry_or_login(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let up = Arc::new(AtomicBool::new(false));
    let running = user_role_with_flaky_store(&stack, up.clone()).await;
    let channel = Channel::from_shared(format!("http://{}", running.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let dev = |email: &str| pb::SignUpRequest {
        identity: Some(pb::sign_up_request::Identity::ProviderToken(
            pb::ProviderToken {
                provider: "dev".into(),
                access_token: email.into(),
            },
        )),
        store_name: "Outage Cafe".into(),
        pos_grade: pb::PosGrade::Bronze as i32,
        settlement_day: 1,
    };
    let mut client = users(channel);
    for email in ["retry@example.com", "login@example.com"] {
        assert_error(
            client.sign_up(dev(email)).await,
            Code::Unavailable,
            "DEPENDENCY_UNAVAILABLE",
        );
        let pending = user(&stack, email).await.expect("user row kept");
        assert_eq!(pending.store_id, None);
        assert!(
            pending.pending_store.is_some(),
            "the store request is kept for completion"
        );
    }

    up.store(true, Ordering::SeqCst);
    // A retried signup completes the same user.
    let retried = client
        .sign_up(dev("retry@example.com"))
        .await
        .expect("retry")
        .into_inner();
    let retry = user(&stack, "retry@example.com").await.expect("user");
    assert_eq!(retried.store.map(|s| s.owner_user_id), Some(retry.id.get()));
    assert!(retry.store_id.is_some() && retry.pending_store.is_none());
    // A plain login completes a signup that was never retried.
    let login = client
        .login_with_provider_token(pb::LoginWithProviderTokenRequest {
            provider_token: Some(pb::ProviderToken {
                provider: "dev".into(),
                access_token: "login@example.com".into(),
            }),
        })
        .await
        .expect("login")
        .into_inner();
    assert!(matches!(
        login.result.and_then(|r| r.result),
        Some(login_result::Result::Tokens(_))
    ));
    let completed = user(&stack, "login@example.com").await.expect("user");
    let store_id = completed.store_id.expect("store completed at login");
    assert_eq!(
        stack
            .store_storage
            .devices_of_store(store_id)
            .await
            .expect("devices")
            .len(),
        30
    );
    running
        .stop(std::time::Duration::from_secs(5))
        .await
        .expect("stop");
    stack.stop().await;
}
