//! `pos.v1.UserService`: social login, signup and token rotation.

use std::sync::Arc;

use pos_common::{
    ApiError, ApiResult, Reason,
    auth::{Claims, JwkSet, Principal, jwk_to_proto},
    domain::{Grade, SettlementDay, StoreId, StoreName, StoreRequest},
    error::Violations,
    peer::{Peer, WithServiceToken},
    time::to_timestamp,
};
use pos_proto::v1::{
    self as pb, login_result, sign_up_request,
    store_internal_service_client::StoreInternalServiceClient, user_service_server::UserService,
};
use pos_user_storage::{User, UserStorage};
use tonic::{Request, Response, Status};

use crate::{
    provider::{ProviderProfile, Providers},
    sessions::{OAUTH_STATE_TTL, SIGNUP_TICKET_TTL, Sessions},
    tokens::Tokens,
};

pub type StoreInternalClient = StoreInternalServiceClient<WithServiceToken<Peer>>;

#[derive(Clone)]
pub struct UserApi {
    storage: Arc<dyn UserStorage>,
    providers: Providers,
    sessions: Sessions,
    tokens: Tokens,
    stores: StoreInternalClient,
    redirect_uris: Vec<String>,
    /// The public keys GetJwks publishes: the current signing key's and retired ones.
    published: JwkSet,
}

type RpcResult<T> = Result<Response<T>, Status>;

impl UserApi {
    pub fn new(
        storage: Arc<dyn UserStorage>,
        providers: Providers,
        sessions: Sessions,
        tokens: Tokens,
        stores: StoreInternalClient,
        redirect_uris: Vec<String>,
        published: JwkSet,
    ) -> Self {
        Self {
            storage,
            providers,
            sessions,
            tokens,
            stores,
            redirect_uris,
            published,
        }
    }

    /// Tokens for a known owner (finishing an interrupted signup first), or a signup
    /// ticket for a new one. Accounts are found by provider identity; an e-mail address
    /// already used by another identity never opens that account.
    async fn login(&self, profile: ProviderProfile) -> ApiResult<pb::LoginResult> {
        let known = self
            .storage
            .by_identity(&profile.provider, &profile.subject)
            .await?;
        let result = match known {
            Some(user) => {
                let store_id = self.ensure_store(&user).await?;
                login_result::Result::Tokens(self.tokens.login(user.id, Some(store_id)).await?)
            }
            None if self.storage.by_email(&profile.email).await?.is_some() => {
                return Err(email_taken());
            }
            None => {
                let ticket = self.sessions.issue_ticket(&profile).await?;
                login_result::Result::SignupTicket(pb::SignupTicket {
                    ticket,
                    expires_at: Some(expires_in(SIGNUP_TICKET_TTL)),
                    email: profile.email.as_str().to_string(),
                    name: profile.name.as_str().to_string(),
                    phone: profile.phone_digits().to_string(),
                })
            }
        };
        Ok(pb::LoginResult {
            result: Some(result),
        })
    }

    /// The user's store id, finishing a signup that stopped before its store existed.
    async fn ensure_store(&self, user: &User) -> ApiResult<StoreId> {
        if let Some(store_id) = user.store_id {
            return Ok(store_id);
        }
        let wanted = user.pending_store.clone().ok_or_else(|| {
            ApiError::internal(format!(
                "user {} has neither a store nor a pending one",
                user.id
            ))
        })?;
        self.provision_store(user, &wanted).await
    }

    /// Creates (or, on a retry, finds) the owner's store and records it on the user. The
    /// store service's call is idempotent on the owner, so repeating it is safe.
    async fn provision_store(&self, user: &User, wanted: &StoreRequest) -> ApiResult<StoreId> {
        Ok(self.create_store(user, wanted).await?.0)
    }

    /// The store service's store for the owner, and its message.
    async fn create_store(
        &self,
        user: &User,
        wanted: &StoreRequest,
    ) -> ApiResult<(StoreId, pb::Store)> {
        let store = self
            .stores
            .clone()
            .create_store_for_owner(pb::CreateStoreForOwnerRequest {
                owner_user_id: user.id.get(),
                store_name: wanted.name.as_str().to_string(),
                pos_grade: wanted.grade.to_proto() as i32,
                settlement_day: wanted.settlement_day.get(),
            })
            .await
            .map_err(|status| pos_common::peer::call_failure("store", status))?
            .into_inner()
            .store
            .ok_or_else(|| ApiError::internal("store service returned no store"))?;
        let store_id = StoreId::parse(store.id)
            .map_err(|_| ApiError::internal("store service returned a store without an id"))?;
        if user.store_id != Some(store_id) {
            self.storage.complete_store(user.id, store_id).await?;
        }
        Ok((store_id, store))
    }

    async fn identity(
        &self,
        identity: Option<sign_up_request::Identity>,
    ) -> ApiResult<ProviderProfile> {
        match identity {
            Some(sign_up_request::Identity::SignupTicket(ticket)) => {
                self.sessions.read_ticket(&ticket).await
            }
            Some(sign_up_request::Identity::ProviderToken(token)) => {
                self.providers
                    .get(&token.provider)?
                    .profile(&token.access_token)
                    .await
            }
            None => Err(ApiError::invalid(
                "identity",
                "give a signup_ticket or a provider_token",
            )),
        }
    }
}

fn email_taken() -> ApiError {
    ApiError::new(
        Reason::EmailAlreadyUsed,
        "an account of another login already uses this e-mail address",
    )
}

fn validate_store_request(request: &pb::SignUpRequest) -> ApiResult<StoreRequest> {
    let mut violations = Violations::new();
    let name = violations.check("store_name", StoreName::parse(&request.store_name));
    let grade = violations.check("pos_grade", Grade::parse(request.pos_grade));
    let day = violations.check(
        "settlement_day",
        SettlementDay::parse(request.settlement_day),
    );
    violations.finish(|| {
        Some(StoreRequest {
            name: name?,
            grade: grade?,
            settlement_day: day?,
        })
    })
}

/// The instant `ttl` from now, on the wire.
fn expires_in(ttl: std::time::Duration) -> prost_types::Timestamp {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    to_timestamp(
        chrono::Utc::now()
            .checked_add_signed(ttl)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC),
    )
}

fn user_message(user: User) -> pb::User {
    pb::User {
        id: user.id.get(),
        phone: user.profile.phone_digits().to_string(),
        email: user.profile.email.as_str().to_string(),
        name: user.profile.name.as_str().to_string(),
        provider: user.profile.provider,
        created_at: Some(to_timestamp(user.created_at)),
    }
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn start_o_auth_login(
        &self,
        request: Request<pb::StartOAuthLoginRequest>,
    ) -> RpcResult<pb::StartOAuthLoginResponse> {
        let body = request.into_inner();
        let provider = self.providers.get(&body.provider)?;
        if !self.redirect_uris.contains(&body.redirect_uri) {
            return Err(ApiError::invalid(
                "redirect_uri",
                "not one of the configured redirect URIs",
            )
            .into());
        }
        let (state, challenge, login_session) = self
            .sessions
            .begin_oauth(&body.provider, &body.redirect_uri)
            .await?;
        Ok(Response::new(pb::StartOAuthLoginResponse {
            authorize_url: provider.authorize_url(&state, &challenge, &body.redirect_uri),
            state,
            expires_at: Some(expires_in(OAUTH_STATE_TTL)),
            login_session,
        }))
    }

    async fn complete_o_auth_login(
        &self,
        request: Request<pb::CompleteOAuthLoginRequest>,
    ) -> RpcResult<pb::CompleteOAuthLoginResponse> {
        let body = request.into_inner();
        if body.code.is_empty() {
            return Err(ApiError::invalid("code", "must not be empty").into());
        }
        let state = self
            .sessions
            .take_oauth(&body.state, &body.login_session)
            .await?;
        if state.provider != body.provider {
            return Err(
                ApiError::invalid("provider", "does not match the login that was started").into(),
            );
        }
        let provider = self.providers.get(&state.provider)?;
        let access_token = provider
            .exchange_code(&body.code, &state.code_verifier, &state.redirect_uri)
            .await?;
        let profile = provider.profile(&access_token).await?;
        Ok(Response::new(pb::CompleteOAuthLoginResponse {
            result: Some(self.login(profile).await?),
        }))
    }

    async fn login_with_provider_token(
        &self,
        request: Request<pb::LoginWithProviderTokenRequest>,
    ) -> RpcResult<pb::LoginWithProviderTokenResponse> {
        let token = request
            .into_inner()
            .provider_token
            .ok_or_else(|| ApiError::invalid("provider_token", "required"))?;
        let profile = self
            .providers
            .get(&token.provider)?
            .profile(&token.access_token)
            .await?;
        Ok(Response::new(pb::LoginWithProviderTokenResponse {
            result: Some(self.login(profile).await?),
        }))
    }

    async fn sign_up(&self, request: Request<pb::SignUpRequest>) -> RpcResult<pb::SignUpResponse> {
        let body = request.into_inner();
        let store_request = validate_store_request(&body)?;
        let ticket = match &body.identity {
            Some(sign_up_request::Identity::SignupTicket(ticket)) => Some(ticket.clone()),
            _ => None,
        };
        let profile = self.identity(body.identity).await?;
        let user = match self
            .storage
            .insert_pending(&profile, &store_request)
            .await?
        {
            Some(user) => user,
            // The same identity again: a retried signup, completed below.
            None => self
                .storage
                .by_identity(&profile.provider, &profile.subject)
                .await?
                .ok_or_else(email_taken)?,
        };
        let (store_id, store) = self.create_store(&user, &store_request).await?;
        // Spent only now: a signup that failed above can be retried with the same ticket,
        // and a completed one mints tokens exactly once.
        if let Some(ticket) = ticket {
            self.sessions.spend_ticket(&ticket).await?;
        }
        let tokens = self.tokens.login(user.id, Some(store_id)).await?;
        Ok(Response::new(pb::SignUpResponse {
            user: Some(user_message(user)),
            store: Some(store),
            tokens: Some(tokens),
        }))
    }

    async fn refresh_tokens(
        &self,
        request: Request<pb::RefreshTokensRequest>,
    ) -> RpcResult<pb::RefreshTokensResponse> {
        let rotation = self
            .tokens
            .rotate(&request.into_inner().refresh_token)
            .await?;
        let user = self
            .storage
            .by_id(rotation.user_id)
            .await?
            .ok_or_else(|| ApiError::new(Reason::UserNotFound, "the user no longer exists"))?;
        let tokens = self.tokens.pair(
            user.id,
            user.store_id,
            &rotation.family,
            &rotation.next_refresh_id,
        );
        Ok(Response::new(pb::RefreshTokensResponse {
            tokens: Some(tokens),
        }))
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> RpcResult<pb::LogoutResponse> {
        let (user_id, _) = Principal::of(&request)?.require_owner()?;
        let claims = Claims::of(&request)?;
        self.tokens
            .logout(user_id, &request.get_ref().refresh_token, claims)
            .await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn get_me(&self, request: Request<pb::GetMeRequest>) -> RpcResult<pb::GetMeResponse> {
        let (user_id, _) = Principal::of(&request)?.require_owner()?;
        let user = self
            .storage
            .by_id(user_id)
            .await?
            .ok_or_else(|| ApiError::new(Reason::UserNotFound, "no such user"))?;
        // 0 on the wire: no store yet.
        let store_id = user.store_id.map_or(0, StoreId::get);
        Ok(Response::new(pb::GetMeResponse {
            user: Some(user_message(user)),
            store_id,
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> RpcResult<pb::GetJwksResponse> {
        let keys = self.published.keys.iter().map(jwk_to_proto).collect();
        Ok(Response::new(pb::GetJwksResponse { keys }))
    }
}
