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
