//! The key set as the user service publishes it (GetJwks), for roles that run apart
//! from it in Kubernetes.

use async_trait::async_trait;
use pos_proto::v1::{GetJwksRequest, user_service_client::UserServiceClient};

use super::{Jwk, Jwks, JwksSource};
use crate::backend::Backend;

pub struct GrpcJwks {
    client: UserServiceClient<Backend>,
}

impl GrpcJwks {
    pub fn new(user_service: Backend) -> Self {
        Self {
            client: UserServiceClient::new(user_service),
        }
    }
}

#[async_trait]
impl JwksSource for GrpcJwks {
    async fn fetch(&self) -> Result<Jwks, String> {
        let response = self
            .client
            .clone()
            .get_jwks(GetJwksRequest {})
            .await
            .map_err(|status| format!("GetJwks failed: {}", status.message()))?;
        Ok(Jwks {
            keys: response
                .into_inner()
                .keys
                .into_iter()
                .map(|k| Jwk {
                    kty: k.kty,
                    crv: k.crv,
                    x: k.x,
                    kid: k.kid,
                    alg: k.alg,
                    use_: k.r#use,
                })
                .collect(),
        })
    }
}
