//! Revoking a login revokes every token of it, access tokens included, at the edge and
//! in each role reached directly; signup tickets work once. On both engines, so on the
//! in-memory store (SQLite) and on Redis (PostgreSQL).

use pos_proto::v1::{
    self as pb, store_service_client::StoreServiceClient, user_service_client::UserServiceClient,
};
use tonic::{Code, transport::Channel};

use crate::support::{Engine, assert_error, bearer, dev_signup, stack::TestStack};

crate::on_both_engines!(
    refresh_reuse_revokes_every_access_token_of_the_login,
    logout_revokes_earlier_access_tokens_of_the_login,
    a_signup_ticket_works_once,
);

async fn refresh(channel: Channel, refresh_token: &str) -> Result<pb::TokenPair, tonic::Status> {
    UserServiceClient::new(channel)
        .refresh_tokens(pb::RefreshTokensRequest {
            refresh_token: refresh_token.into(),
        })
        .await
        .map(|r| r.into_inner().tokens.expect("tokens"))
}

async fn dev_login(channel: Channel, email: &str) -> pb::TokenPair {
    let result = UserServiceClient::new(channel)
        .login_with_provider_token(pb::LoginWithProviderTokenRequest {
            provider_token: Some(pb::ProviderToken {
                provider: "dev".into(),
                access_token: email.into(),
            }),
        })
        .await
        .expect("login")
        .into_inner()
        .result
        .and_then(|r| r.result);
    match result {
        Some(pb::login_result::Result::Tokens(tokens)) => tokens,
        other => panic!("a known owner gets tokens, got {other:?}"),
    }
}

/// What the access token gets from the store (through the edge and straight at the store
/// role) and from the user role straight: each answer's code, or `Ok`.
async fn answers(stack: &TestStack, access_token: &str) -> Vec<Result<(), (Code, String)>> {
    let seen = |result: Result<(), tonic::Status>| {
        result.map_err(|status| (status.code(), crate::support::reason(&status)))
    };
    let through_edge = StoreServiceClient::with_interceptor(stack.channel(), bearer(access_token))
        .get_my_store(pb::GetMyStoreRequest {})
        .await
        .map(drop);
    let at_store = StoreServiceClient::new(stack.stack.peers["store"].peer.clone())
        .get_my_store(crate::support::with_bearer(
            pb::GetMyStoreRequest {},
            access_token,
        ))
        .await
        .map(drop);
    let at_user = UserServiceClient::new(stack.stack.peers["user"].peer.clone())
        .get_me(crate::support::with_bearer(
            pb::GetMeRequest {},
            access_token,
        ))
        .await
        .map(drop);
    vec![seen(through_edge), seen(at_store), seen(at_user)]
}

fn revoked() -> Vec<Result<(), (Code, String)>> {
    vec![Err((Code::Unauthenticated, "TOKEN_REVOKED".to_string())); 3]
}

async fn refresh_reuse_revokes_every_access_token_of_the_login(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let signed = dev_signup(
        stack.channel(),
        "reuse@example.com",
        "Reuse",
        pb::PosGrade::Bronze,
    )
    .await;
    let first = signed.tokens.expect("tokens");
    let second = refresh(stack.channel(), &first.refresh_token)
        .await
        .expect("rotate");
    // Another login of the same owner, which must not be touched.
    let other = dev_login(stack.channel(), "reuse@example.com").await;
    for token in [&first.access_token, &second.access_token] {
        assert_eq!(answers(&stack, token).await, vec![Ok(()); 3]);
    }

    // The rotated refresh token comes back: a thief's copy, or the owner's after a theft.
    let status = assert_error(
        refresh(stack.channel(), &first.refresh_token).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert!(status.message().contains("every token of this login"));
    for token in [&first.access_token, &second.access_token] {
        assert_eq!(answers(&stack, token).await, revoked(), "{token}");
    }
    assert_error(
        refresh(stack.channel(), &second.refresh_token).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    assert_eq!(answers(&stack, &other.access_token).await, vec![Ok(()); 3]);
    refresh(stack.channel(), &other.refresh_token)
        .await
        .expect("the other login goes on");
    stack.stop().await;
}

async fn logout_revokes_earlier_access_tokens_of_the_login(engine: Engine) {
    let stack = TestStack::start(engine).await;
    dev_signup(
        stack.channel(),
        "logout@example.com",
        "Logout",
        pb::PosGrade::Bronze,
    )
    .await;
    let earlier = dev_login(stack.channel(), "logout@example.com").await;
    let latest = refresh(stack.channel(), &earlier.refresh_token)
        .await
        .expect("rotate");
    let other = dev_login(stack.channel(), "logout@example.com").await;

    UserServiceClient::with_interceptor(stack.channel(), bearer(&latest.access_token))
        .logout(pb::LogoutRequest {
            refresh_token: latest.refresh_token.clone(),
        })
        .await
        .expect("logout");
    // The access token that logged out, and the one minted before it for the same login.
    for token in [&latest.access_token, &earlier.access_token] {
        assert_eq!(answers(&stack, token).await, revoked(), "{token}");
    }
    assert_eq!(answers(&stack, &other.access_token).await, vec![Ok(()); 3]);
    stack.stop().await;
}

async fn a_signup_ticket_works_once(engine: Engine) {
    let stack = TestStack::start(engine).await;
    let mut users = UserServiceClient::new(stack.channel());
    let ticket = match users
        .login_with_provider_token(pb::LoginWithProviderTokenRequest {
            provider_token: Some(pb::ProviderToken {
                provider: "dev".into(),
                access_token: "once@example.com".into(),
            }),
        })
        .await
        .expect("login")
        .into_inner()
        .result
        .and_then(|r| r.result)
    {
        Some(pb::login_result::Result::SignupTicket(ticket)) => ticket.ticket,
        other => panic!("a new owner gets a ticket, got {other:?}"),
    };
    let sign_up = |store_name: &str| pb::SignUpRequest {
        identity: Some(pb::sign_up_request::Identity::SignupTicket(ticket.clone())),
        store_name: store_name.into(),
        pos_grade: pb::PosGrade::Bronze as i32,
        settlement_day: 5,
    };
    // A refused request does not spend the ticket.
    assert_error(
        users.sign_up(sign_up("")).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    // Eight signups racing with one ticket: exactly one gets tokens.
    let racing = (0..8).map(|_| {
        let mut users = users.clone();
        let request = sign_up("Once");
        async move { users.sign_up(request).await }
    });
    let outcomes = futures::future::join_all(racing).await;
    let winners: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for refused in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        assert_eq!(crate::support::reason(refused), "SIGNUP_TICKET_EXPIRED");
    }
    let tokens = winners[0].get_ref().tokens.clone().expect("tokens");

    // Spent, it stays spent, also after the account logs out.
    UserServiceClient::with_interceptor(stack.channel(), bearer(&tokens.access_token))
        .logout(pb::LogoutRequest {
            refresh_token: tokens.refresh_token,
        })
        .await
        .expect("logout");
    let status = assert_error(
        users.sign_up(sign_up("Once")).await,
        Code::FailedPrecondition,
        "SIGNUP_TICKET_EXPIRED",
    );
    assert!(status.message().contains("already used"), "{status:?}");
    stack.stop().await;
}
