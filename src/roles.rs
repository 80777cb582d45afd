//! Each role's gRPC services, assembled from the service crates.

use pos_common::auth::TokenIssuer;
use pos_proto::v1::{
    store_internal_service_server::StoreInternalServiceServer,
    store_service_server::StoreServiceServer,
};
use pos_store::{StoreApi, StoreInternalApi, StoreRepo};

use crate::startup::{MAX_MESSAGE_BYTES, RoleServices};

/// StoreService and StoreInternalService. `device_tokens` signs tablet credentials.
pub fn store(repo: StoreRepo, device_tokens: Option<TokenIssuer>) -> RoleServices {
    let mut services = RoleServices::default();
    services
        .add(
            StoreServiceServer::new(StoreApi::new(repo.clone(), device_tokens))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add(
            StoreInternalServiceServer::new(StoreInternalApi::new(repo))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        );
    services
}

/// What the user role needs besides its storage.
pub struct UserDeps {
    pub repo: pos_user::UserRepo,
    pub providers: pos_user::provider::Providers,
    pub ephemeral: pos_common::ephemeral::SharedEphemeral,
    pub tokens: pos_user::tokens::Tokens,
    /// The store service's internal API, reached with this role's service token.
    pub stores: pos_user::api::StoreInternalClient,
    pub redirect_uris: Vec<String>,
    /// What GetJwks publishes: the signing key's public key and any retired ones.
    pub published_keys: pos_common::auth::Jwks,
}

/// UserService.
pub fn user(deps: UserDeps) -> RoleServices {
    let api = pos_user::UserApi::new(
        deps.repo,
        deps.providers,
        pos_user::sessions::Sessions::new(deps.ephemeral),
        deps.tokens,
        deps.stores,
        deps.redirect_uris,
        deps.published_keys,
    );
    let mut services = RoleServices::default();
    services.add(
        pos_proto::v1::user_service_server::UserServiceServer::new(api)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    );
    services
}
