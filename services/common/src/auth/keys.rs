//! Ed25519 signing keys (PKCS#8 PEM on disk) and the JWKS-based verifier.

use std::{collections::HashMap, path::Path};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::principal::{Claims, Principal};
use crate::{ApiError, ApiResult, Reason};

/// One public key in JWK form (RFC 8037 OKP / Ed25519).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    #[serde(default = "eddsa")]
    pub alg: String,
    #[serde(rename = "use", default = "sig")]
    pub use_: String,
}

fn eddsa() -> String {
    "EdDSA".into()
}
fn sig() -> String {
    "sig".into()
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// Reads a JWKS file (`{"keys":[...]}`), e.g. a mounted ConfigMap.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read JWKS file {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("JWKS file {} is not valid: {e}", path.display()))
    }
}

/// A private signing key and its key id.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    encoding: EncodingKey,
    kid: String,
}

impl SigningKey {
    pub fn generate() -> Self {
        Self::from_dalek(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, String> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(Self::from_dalek)
            .map_err(|e| format!("not an Ed25519 PKCS#8 PEM key: {e}"))
    }

    fn from_dalek(key: ed25519_dalek::SigningKey) -> Self {
        let der = key
            .to_pkcs8_der()
            .expect("encoding a valid Ed25519 key as PKCS#8 cannot fail");
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
        // The kid is derived from the public key, so the same key always has the same id.
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(x.as_bytes())[..12]);
        Self { key, encoding, kid }
    }

    /// Loads the key at `path`, or generates one and writes it there (mode 0600).
    pub fn load_or_generate(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(pem) => Self::from_pkcs8_pem(&pem).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                write_private(path, key.to_pkcs8_pem().as_bytes())?;
                Ok(key)
            }
            Err(e) => Err(e),
        }
    }

    pub fn to_pkcs8_pem(&self) -> String {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .expect("encoding a valid Ed25519 key as PEM cannot fail")
            .to_string()
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_bytes()),
            kid: self.kid.clone(),
            alg: eddsa(),
            use_: sig(),
        }
    }

    /// Signs claims into a compact JWT with this key's `kid`.
    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .expect("signing serialisable claims with a valid key cannot fail")
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Verifies tokens against a set of public keys, by `kid`.
#[derive(Clone)]
pub struct Verifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl Verifier {
    pub fn new(jwks: &Jwks, issuer: &str, audience: &str) -> Result<Self, String> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
                return Err(format!("key {} is not an Ed25519 OKP key", jwk.kid));
            }
            let key = DecodingKey::from_ed_components(&jwk.x)
                .map_err(|e| format!("key {}: {e}", jwk.kid))?;
            keys.insert(jwk.kid.clone(), key);
        }
        // Only EdDSA: a token claiming any other algorithm (including "none") is refused.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Self { keys, validation })
    }

    /// Checks signature, algorithm, expiry, issuer and audience.
    pub fn verify(&self, token: &str) -> ApiResult<Claims> {
        let invalid =
            |why: &str| ApiError::new(Reason::TokenInvalid, format!("token invalid: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid("algorithm not allowed"));
        }
        let kid = header.kid.ok_or_else(|| invalid("no key id"))?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| invalid("unknown key id"))?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => ApiError::new(Reason::TokenExpired, "token expired"),
                ErrorKind::InvalidSignature => invalid("bad signature"),
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => {
                    invalid("wrong issuer or audience")
                }
                _ => invalid("malformed claims"),
            })
    }

    /// Whether this verifier has the key a token names; `None` for an unreadable token.
    pub fn knows_key_of(&self, token: &str) -> Option<bool> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        Some(header.kid.is_some_and(|kid| self.keys.contains_key(&kid)))
    }

    /// Verifies a bearer token and turns its claims into who is calling.
    pub fn principal(&self, token: &str) -> ApiResult<Principal> {
        Principal::from_claims(&self.verify(token)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenType;

    fn verifier_for(key: &SigningKey) -> Verifier {
        Verifier::new(
            &Jwks {
                keys: vec![key.jwk()],
            },
            "iss",
            "aud",
        )
        .expect("verifier")
    }

    fn claims(exp_offset: i64) -> Claims {
        Claims::new("iss", "aud", "7", TokenType::Access, exp_offset).with_store(3)
    }

    #[test]
    fn signed_token_verifies_and_pem_round_trips() {
        let key = SigningKey::generate();
        let again = SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem()).expect("pem");
        assert_eq!(key.kid(), again.kid());
        let token = again.sign(&claims(60));
        let principal = verifier_for(&key).principal(&token).expect("valid");
        assert_eq!(
            principal,
            Principal::Owner {
                user_id: 7,
                store_id: Some(3)
            }
        );
    }

    #[test]
    fn foreign_key_expired_and_unsigned_tokens_are_refused() {
        let key = SigningKey::generate();
        let verifier = verifier_for(&key);
        let other = SigningKey::generate();
        let err = verifier.verify(&other.sign(&claims(60))).unwrap_err();
        assert_eq!(err.reason(), Reason::TokenInvalid);
        let err = verifier.verify(&key.sign(&claims(-120))).unwrap_err();
        assert_eq!(err.reason(), Reason::TokenExpired);
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(60)).expect("json"))
        );
        assert_eq!(
            verifier.verify(&unsigned).unwrap_err().reason(),
            Reason::TokenInvalid
        );
        assert_eq!(
            verifier.verify("garbage").unwrap_err().reason(),
            Reason::TokenInvalid
        );
    }
}
