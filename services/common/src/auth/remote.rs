//! The key set as the user role publishes it (GetJwks), for roles that run apart from
//! it in Kubernetes.

use async_trait::async_trait;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use pos_proto::v1::{self as pb, user_service_client::UserServiceClient};

use super::{JwksSource, KeySourceError};
use crate::peer::Peer;

pub struct GrpcJwks {
    client: UserServiceClient<Peer>,
}

impl GrpcJwks {
    pub fn new(user_service: Peer) -> Self {
        Self {
            client: UserServiceClient::new(user_service),
        }
    }
}

/// The protobuf form of a JWK, as GetJwks publishes it.
pub fn jwk_to_proto(jwk: &Jwk) -> pb::Jwk {
    let json = serde_json::to_value(jwk).unwrap_or_default();
    let field = |name: &str| json[name].as_str().unwrap_or_default().to_string();
    pb::Jwk {
        kty: field("kty"),
        crv: field("crv"),
        x: field("x"),
        kid: field("kid"),
        alg: field("alg"),
        r#use: field("use"),
    }
}

/// A JWK from its protobuf form.
pub fn jwk_from_proto(key: &pb::Jwk) -> Result<Jwk, serde_json::Error> {
    serde_json::from_value(serde_json::json!({
        "kty": key.kty,
        "crv": key.crv,
        "x": key.x,
        "kid": key.kid,
        "alg": key.alg,
        "use": key.r#use,
    }))
}

#[async_trait]
impl JwksSource for GrpcJwks {
    async fn fetch(&self) -> Result<JwkSet, KeySourceError> {
        let response = self
            .client
            .clone()
            .get_jwks(pb::GetJwksRequest {})
            .await
            .map_err(KeySourceError::Unreachable)?;
        let keys = response
            .into_inner()
            .keys
            .iter()
            .map(jwk_from_proto)
            .collect::<Result<_, _>>()
            .map_err(KeySourceError::Undecodable)?;
        Ok(JwkSet { keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::SigningKey;

    #[test]
    fn jwks_survive_the_protobuf_round_trip() {
        let jwk = SigningKey::generate().jwk();
        assert_eq!(jwk_from_proto(&jwk_to_proto(&jwk)).expect("decodes"), jwk);
    }
}
