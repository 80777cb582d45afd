//! Ed25519 signing keys (PKCS#8 PEM on disk) and the verifier of a key set. Key sets are
//! `jsonwebtoken`'s JWK types, so the JWKS document, files and GetJwks all share them.

use std::{collections::HashMap, path::Path};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, EncodePrivateKey, KeypairBytes, spki::der::pem::LineEnding,
};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
    errors::ErrorKind,
    jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
        OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
    },
};
use sha2::{Digest, Sha256};

use super::principal::Claims;
use crate::{ApiError, ApiResult, Reason};

/// Why a key or key set could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a JWKS document")]
    NotJwks {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("not an Ed25519 PKCS#8 PEM key")]
    NotEd25519Pem(#[source] ed25519_dalek::pkcs8::Error),
    #[error("a key without a key id (kid) cannot be looked up")]
    MissingKeyId,
    #[error("key {kid} is not an Ed25519 (OKP) key")]
    NotEd25519 { kid: String },
    #[error("key {kid} does not decode")]
    Undecodable {
        kid: String,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
}

/// Reads a JWKS file (`{"keys":[...]}`), e.g. a mounted ConfigMap.
pub fn read_jwks(path: &Path) -> Result<JwkSet, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| KeyError::NotJwks {
        path: path.display().to_string(),
        source,
    })
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

    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(Self::from_dalek)
            .map_err(KeyError::NotEd25519Pem)
    }

    /// Reads a PKCS#8 PEM key file (a mounted Secret).
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_pkcs8_pem(&pem)
    }

    fn from_dalek(key: ed25519_dalek::SigningKey) -> Self {
        let der = key
            .to_pkcs8_der()
            .expect("encoding a valid Ed25519 key as PKCS#8 cannot fail");
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        // The kid is derived from the public key (its JWK `x`), so the same key always
        // has the same id.
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(x.as_bytes())[..12]);
        Self { key, encoding, kid }
    }

    /// Loads the key at `path`, or generates one and writes it there (mode 0600). A key
    /// in the v2 form earlier versions wrote is rewritten as v1 (the same key, so its
    /// tokens stay valid), so other tools can read it.
    pub fn load_or_generate(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(pem) => {
                let key = Self::from_pkcs8_pem(&pem).map_err(std::io::Error::other)?;
                if carries_public_key(&pem) {
                    // Not fatal: the key works as it is, only other tools cannot read it.
                    if let Err(err) = rewrite_private(path, key.to_pkcs8_pem().as_bytes()) {
                        tracing::warn!(
                            path = %path.display(),
                            %err,
                            "cannot rewrite the signing key in the PKCS#8 v1 form OpenSSL reads"
                        );
                    }
                }
                Ok(key)
            }
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

    /// The key as PKCS#8 v1 (RFC 8410: the private key alone). ed25519-dalek's own
    /// encoding is v2 with the public key attached, which OpenSSL 3 cannot read.
    pub fn to_pkcs8_pem(&self) -> String {
        KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(LineEnding::LF)
        .expect("encoding a valid Ed25519 key as PEM cannot fail")
        .to_string()
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK, with this key's `kid`, `alg: EdDSA` and `use: sig`.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            common: CommonParameters {
                key_id: Some(self.kid.clone()),
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_bytes()),
            }),
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

/// Whether a PEM key is in the v2 form (public key attached) earlier versions wrote.
fn carries_public_key(pem: &str) -> bool {
    use ed25519_dalek::pkcs8::{PrivateKeyInfo, spki::der::pem};
    pem::decode_vec(pem.as_bytes())
        .ok()
        .and_then(|(_, der)| {
            PrivateKeyInfo::try_from(der.as_slice())
                .ok()
                .map(|info| info.public_key.is_some())
        })
        .unwrap_or(false)
}

/// Replaces the key file at `path` whole: written beside it, then renamed over it.
fn rewrite_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let fresh = path.with_extension("pem.new");
    let _ = std::fs::remove_file(&fresh);
    write_private(&fresh, bytes)?;
    std::fs::rename(&fresh, path)
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

/// How far the clocks of the signer and a verifier may disagree (`exp`, `nbf`, `iat`).
pub const CLOCK_LEEWAY_SECS: u64 = 5;

/// Verifies tokens against a set of public keys, by `kid`.
#[derive(Clone)]
pub struct Verifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl Verifier {
    /// Accepts Ed25519 keys only: a key set holding anything else is refused as a whole,
    /// rather than silently verifying with fewer keys than the operator meant.
    pub fn new(jwks: &JwkSet, issuer: &str, audience: &str) -> Result<Self, KeyError> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let kid = jwk.common.key_id.clone().ok_or(KeyError::MissingKeyId)?;
            let ed25519 = matches!(
                &jwk.algorithm,
                AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519
            );
            if !ed25519 {
                return Err(KeyError::NotEd25519 { kid });
            }
            let key = DecodingKey::from_jwk(jwk).map_err(|source| KeyError::Undecodable {
                kid: kid.clone(),
                source,
            })?;
            keys.insert(kid, key);
        }
        // Only EdDSA: a token claiming any other algorithm (including "none") is refused.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = CLOCK_LEEWAY_SECS;
        Ok(Self { keys, validation })
    }

    /// Checks signature, algorithm, expiry, `nbf`, `iat`, issuer and audience.
    pub fn verify(&self, token: &str) -> ApiResult<Claims> {
        let invalid =
            |why: &str| ApiError::new(Reason::TokenInvalid, format!("token invalid: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid("algorithm not allowed"));
        }
        // `crit` lists header extensions the verifier must understand; it understands
        // none, so any token that declares one is refused (RFC 7515, 4.1.11).
        if header.crit.is_some() {
            return Err(invalid("critical header extension not understood"));
        }
        let kid = header.kid.ok_or_else(|| invalid("no key id"))?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| invalid("unknown key id"))?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => ApiError::new(Reason::TokenExpired, "token expired"),
                ErrorKind::ImmatureSignature => invalid("not valid yet (nbf)"),
                ErrorKind::InvalidSignature => invalid("bad signature"),
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => {
                    invalid("wrong issuer or audience")
                }
                _ => invalid("malformed claims"),
            })?;
        // A token from the future was minted with a broken clock or forged to outlive
        // its lifetime; jsonwebtoken does not look at `iat`.
        let now = chrono::Utc::now().timestamp();
        if claims.iat > now.saturating_add(CLOCK_LEEWAY_SECS.cast_signed()) {
            return Err(invalid("issued in the future (iat)"));
        }
        Ok(claims)
    }

    /// Whether this verifier has the key a token names; `None` for an unreadable token.
    pub fn knows_key_of(&self, token: &str) -> Option<bool> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        Some(header.kid.is_some_and(|kid| self.keys.contains_key(&kid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Principal, TokenType};

    fn verifier_for(key: &SigningKey) -> Verifier {
        Verifier::new(
            &JwkSet {
                keys: vec![key.jwk()],
            },
            "iss",
            "aud",
        )
        .expect("verifier")
    }

    fn claims(exp_offset: i64) -> Claims {
        Claims::new("iss", "aud", "7", TokenType::Access, exp_offset)
            .with_store(crate::domain::StoreId::from_stored(3))
    }

    #[test]
    fn signed_token_verifies_and_pem_round_trips() {
        let key = SigningKey::generate();
        let again = SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem()).expect("pem");
        assert_eq!(key.kid(), again.kid());
        let token = again.sign(&claims(60));
        let verified = verifier_for(&key).verify(&token).expect("valid");
        assert_eq!(
            Principal::from_claims(&verified).expect("principal"),
            Principal::Owner {
                user_id: crate::domain::UserId::from_stored(7),
                store_id: Some(crate::domain::StoreId::from_stored(3))
            }
        );
        let jwk = serde_json::to_value(key.jwk()).expect("json");
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], key.kid());
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

    /// Signs any header and claims with `key`, as a forger holding the key could.
    fn sign_raw(key: &SigningKey, header: &Header, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(header, claims, &key.encoding).expect("sign")
    }

    fn with_key_id(key: &SigningKey) -> Header {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid().to_string());
        header
    }

    #[test]
    fn tokens_not_valid_yet_or_from_the_future_are_refused() {
        let key = SigningKey::generate();
        let verifier = verifier_for(&key);
        let now = chrono::Utc::now().timestamp();
        let with = |field: &str, value: i64| {
            let mut claims = serde_json::to_value(claims(600)).expect("json");
            claims[field] = value.into();
            sign_raw(&key, &with_key_id(&key), &claims)
        };
        let refused = |token: String| verifier.verify(&token).unwrap_err();
        let err = refused(with("nbf", now + 300));
        assert_eq!(err.reason(), Reason::TokenInvalid);
        assert!(err.to_string().contains("nbf"), "{err}");
        let err = refused(with("iat", now + 300));
        assert_eq!(err.reason(), Reason::TokenInvalid);
        assert!(err.to_string().contains("iat"), "{err}");
        // Within the clock leeway, and in the past, both are fine.
        verifier
            .verify(&with("nbf", now + 2))
            .expect("nbf in leeway");
        verifier.verify(&with("nbf", now - 60)).expect("nbf passed");
        verifier
            .verify(&with("iat", now + 2))
            .expect("iat in leeway");
    }

    #[test]
    fn critical_header_extensions_are_refused() {
        let key = SigningKey::generate();
        let claims = serde_json::to_value(claims(600)).expect("json");
        let mut header = with_key_id(&key);
        header.crit = Some(vec!["exp-ext".into()]);
        let err = verifier_for(&key)
            .verify(&sign_raw(&key, &header, &claims))
            .unwrap_err();
        assert_eq!(err.reason(), Reason::TokenInvalid);
        assert!(err.to_string().contains("critical"), "{err}");
        header.crit = Some(vec![]);
        assert!(
            verifier_for(&key)
                .verify(&sign_raw(&key, &header, &claims))
                .is_err()
        );
        verifier_for(&key)
            .verify(&sign_raw(&key, &with_key_id(&key), &claims))
            .expect("the same token without crit");
    }

    /// What `pos up` writes is the plain RFC 8410 form other tools read (checked with
    /// OpenSSL itself in the suite); keys written by earlier versions still load.
    #[test]
    fn pem_is_pkcs8_v1_and_older_v2_keys_still_load() {
        use ed25519_dalek::pkcs8::{
            PrivateKeyInfo,
            spki::der::pem::{self, PemLabel},
        };
        let key = SigningKey::generate();
        let pem = key.to_pkcs8_pem();
        let (label, der) = pem::decode_vec(pem.as_bytes()).expect("pem");
        assert_eq!(label, PrivateKeyInfo::PEM_LABEL);
        // Without the public key, the structure is version 1.
        let info = PrivateKeyInfo::try_from(der.as_slice()).expect("der");
        assert!(info.public_key.is_none());
        let v2 = key
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .expect("v2 pem")
            .to_string();
        assert_eq!(
            SigningKey::from_pkcs8_pem(&v2).expect("v2").kid(),
            key.kid()
        );
    }

    #[test]
    fn key_sets_with_other_kinds_of_key_are_refused() {
        let rsa: JwkSet = serde_json::from_value(serde_json::json!({"keys": [{
            "kty": "RSA", "kid": "r", "n": "sXch", "e": "AQAB"
        }]}))
        .expect("jwks");
        assert!(matches!(
            Verifier::new(&rsa, "i", "a"),
            Err(KeyError::NotEd25519 { .. })
        ));
        let mut no_kid = SigningKey::generate().jwk();
        no_kid.common.key_id = None;
        assert!(matches!(
            Verifier::new(&JwkSet { keys: vec![no_kid] }, "i", "a"),
            Err(KeyError::MissingKeyId)
        ));
    }
}
