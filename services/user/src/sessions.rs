//! Short-lived login state kept in the ephemeral store: OAuth `state` with its PKCE
//! verifier (single use), and signup tickets proving a provider identity without an
//! account yet.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use pos_common::{ApiError, ApiResult, Reason, ephemeral::SharedEphemeral};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use pos_user_storage::{Email, Phone, ProviderProfile, UserName};

/// How long a user has to finish logging in at the provider.
pub const OAUTH_STATE_TTL: Duration = Duration::from_secs(600);
/// How long a signup ticket stays valid.
pub const SIGNUP_TICKET_TTL: Duration = Duration::from_secs(900);

/// What StartOAuthLogin remembers for CompleteOAuthLogin.
#[derive(Debug, Serialize, Deserialize)]
pub struct OAuthState {
    pub provider: String,
    pub code_verifier: String,
    pub redirect_uri: String,
    /// SHA-256 of the secret handed to the client that started the login.
    pub session_hash: String,
}

#[derive(Serialize, Deserialize)]
struct StoredProfile {
    provider: String,
    subject: String,
    email: String,
    name: String,
    phone: String,
}

/// An unguessable URL-safe token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// PKCE S256 challenge of a verifier (RFC 7636).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[derive(Clone)]
pub struct Sessions {
    store: SharedEphemeral,
}

impl Sessions {
    pub fn new(store: SharedEphemeral) -> Self {
        Self { store }
    }

    /// Opens a login: returns the state, the PKCE challenge to send to the provider, and
    /// the secret only the starting client holds.
    pub async fn begin_oauth(
        &self,
        provider: &str,
        redirect_uri: &str,
    ) -> ApiResult<(String, String, String)> {
        let state = random_token(24);
        // 48 random bytes encode to 64 characters: inside PKCE's 43-128.
        let code_verifier = random_token(48);
        let challenge = pkce_challenge(&code_verifier);
        let session = random_token(32);
        let record = OAuthState {
            provider: provider.to_string(),
            code_verifier,
            redirect_uri: redirect_uri.to_string(),
            session_hash: pkce_challenge(&session),
        };
        let json = serde_json::to_string(&record).map_err(ApiError::internal)?;
        self.store
            .set(&format!("oauth-state:{state}"), &json, OAUTH_STATE_TTL)
            .await?;
        Ok((state, challenge, session))
    }

    /// Takes a login's state: it works once, within its lifetime, for the client holding
    /// the login's secret.
    pub async fn take_oauth(&self, state: &str, session: &str) -> ApiResult<OAuthState> {
        let key = format!("oauth-state:{state}");
        let unknown = || ApiError::invalid("state", "unknown, used or expired login state");
        let json = self.store.get(&key).await?.ok_or_else(unknown)?;
        let record: OAuthState = serde_json::from_str(&json).map_err(ApiError::internal)?;
        if pkce_challenge(session) != record.session_hash {
            // A wrong secret does not spend the state: the rightful client can still finish.
            return Err(ApiError::invalid(
                "login_session",
                "does not belong to this login",
            ));
        }
        // Only the caller that deletes it may use it: a replayed state loses the race.
        if !self.store.delete(&key).await? {
            return Err(unknown());
        }
        Ok(record)
    }

    pub async fn issue_ticket(&self, profile: &ProviderProfile) -> ApiResult<String> {
        let ticket = random_token(32);
        let stored = StoredProfile {
            provider: profile.provider.clone(),
            subject: profile.subject.clone(),
            email: profile.email.as_str().to_string(),
            name: profile.name.as_str().to_string(),
            phone: profile.phone_digits().to_string(),
        };
        let json = serde_json::to_string(&stored).map_err(ApiError::internal)?;
        self.store
            .set(&ticket_key(&ticket), &json, SIGNUP_TICKET_TTL)
            .await?;
        Ok(ticket)
    }

    /// The identity a ticket vouches for. Reading does not spend it, so a SignUp that
    /// failed part-way can be retried with the same ticket; [`Sessions::spend_ticket`]
    /// does, once the signup is complete.
    pub async fn read_ticket(&self, ticket: &str) -> ApiResult<ProviderProfile> {
        let json = self.store.get(&ticket_key(ticket)).await?.ok_or_else(|| {
            ApiError::new(
                Reason::SignupTicketExpired,
                "the signup ticket expired or is unknown; log in again",
            )
        })?;
        if json == SPENT_TICKET {
            return Err(ticket_spent());
        }
        let stored: StoredProfile = serde_json::from_str(&json).map_err(ApiError::internal)?;
        Ok(ProviderProfile {
            provider: stored.provider,
            subject: stored.subject,
            email: Email::parse(&stored.email).map_err(ApiError::internal)?,
            name: UserName::parse(&stored.name).map_err(ApiError::internal)?,
            phone: if stored.phone.is_empty() {
                None
            } else {
                Some(Phone::parse(&stored.phone).map_err(ApiError::internal)?)
            },
        })
    }

    /// Spends a ticket that was read: exactly one SignUp of all those racing with it wins
    /// and gets tokens; the others, and any later use, are refused. The spent ticket is
    /// remembered until it would have expired, so a second use says why it failed.
    pub async fn spend_ticket(&self, ticket: &str) -> ApiResult<()> {
        let key = ticket_key(ticket);
        match self.store.get(&key).await? {
            Some(json) if json != SPENT_TICKET => {
                if self
                    .store
                    .compare_and_swap(&key, &json, SPENT_TICKET, SIGNUP_TICKET_TTL)
                    .await?
                {
                    Ok(())
                } else {
                    Err(ticket_spent())
                }
            }
            Some(_) => Err(ticket_spent()),
            // It expired while the signup ran: the account exists, a login reaches it.
            None => Err(ApiError::new(
                Reason::SignupTicketExpired,
                "the signup ticket expired; log in to reach the account",
            )),
        }
    }
}

/// What a spent ticket's key holds instead of the identity (never valid JSON of one).
const SPENT_TICKET: &str = "spent";

fn ticket_key(ticket: &str) -> String {
    format!("signup-ticket:{ticket}")
}

fn ticket_spent() -> ApiError {
    ApiError::new(
        Reason::SignupTicketExpired,
        "this signup ticket was already used; log in to reach the account",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc_7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(random_token(48).len(), 64);
    }
}
