//! Identity providers: Kakao (or any provider with Kakao's OAuth2 and profile shape,
//! configured by URL) and, for development only, a provider that trusts any e-mail.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use pos_common::{ApiError, ApiResult, Reason};
use serde::Deserialize;

pub use pos_user_storage::ProviderProfile;
use pos_user_storage::{Email, Phone, UserName};

#[async_trait]
pub trait IdentityProvider: Send + Sync + 'static {
    /// Where to send the browser to log in, with state and the PKCE S256 challenge.
    fn authorize_url(&self, state: &str, code_challenge: &str, redirect_uri: &str) -> String;
    /// Trades an authorization code (and the PKCE verifier) for a provider access token.
    async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
    ) -> ApiResult<String>;
    /// The profile behind a provider access token.
    async fn profile(&self, access_token: &str) -> ApiResult<ProviderProfile>;
}

/// Endpoints and client credentials of a Kakao-compatible provider.
#[derive(Debug, Clone)]
pub struct KakaoConfig {
    pub authorize_url: String,
    pub token_url: String,
    pub profile_url: String,
    pub client_id: String,
    pub client_secret: Option<String>,
}

impl Default for KakaoConfig {
    fn default() -> Self {
        Self {
            authorize_url: "https://kauth.kakao.com/oauth/authorize".into(),
            token_url: "https://kauth.kakao.com/oauth/token".into(),
            profile_url: "https://kapi.kakao.com/v2/user/me".into(),
            client_id: String::new(),
            client_secret: None,
        }
    }
}

pub struct Kakao {
    config: KakaoConfig,
    http: reqwest::Client,
}

impl Kakao {
    pub fn new(config: KakaoConfig) -> Result<Self, reqwest::Error> {
        // TLS uses ring (pure Rust and asm, no cmake); installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self { config, http })
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

#[derive(Deserialize)]
struct KakaoProfile {
    id: serde_json::Value,
    #[serde(default)]
    kakao_account: KakaoAccount,
}

#[derive(Deserialize, Default)]
struct KakaoAccount {
    email: Option<String>,
    is_email_verified: Option<bool>,
    name: Option<String>,
    phone_number: Option<String>,
}

fn provider_down(err: reqwest::Error) -> ApiError {
    ApiError::unavailable("identity provider", err)
}

fn refused(what: &str) -> ApiError {
    ApiError::new(
        Reason::TokenInvalid,
        format!("the identity provider refused the {what}"),
    )
}

#[async_trait]
impl IdentityProvider for Kakao {
    fn authorize_url(&self, state: &str, code_challenge: &str, redirect_uri: &str) -> String {
        let mut url = match url::Url::parse(&self.config.authorize_url) {
            Ok(url) => url,
            Err(_) => return self.config.authorize_url.clone(),
        };
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        url.into()
    }

    async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
    ) -> ApiResult<String> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("client_id", self.config.client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("code", code),
            ("code_verifier", code_verifier),
        ];
        if let Some(secret) = &self.config.client_secret {
            form.push(("client_secret", secret));
        }
        let response = self
            .http
            .post(&self.config.token_url)
            .form(&form)
            .send()
            .await
            .map_err(provider_down)?;
        if response.status().is_client_error() {
            return Err(refused("authorization code"));
        }
        let response = response.error_for_status().map_err(provider_down)?;
        let token: TokenResponse = response.json().await.map_err(provider_down)?;
        Ok(token.access_token)
    }

    async fn profile(&self, access_token: &str) -> ApiResult<ProviderProfile> {
        let response = self
            .http
            .get(&self.config.profile_url)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(provider_down)?;
        if response.status().is_client_error() {
            return Err(refused("access token"));
        }
        let response = response.error_for_status().map_err(provider_down)?;
        let profile: KakaoProfile = response.json().await.map_err(provider_down)?;
        let account = profile.kakao_account;
        if account.is_email_verified == Some(false) {
            return Err(ApiError::invalid(
                "provider_token",
                "the provider has not verified this e-mail address",
            ));
        }
        let email = account
            .email
            .ok_or_else(|| {
                ApiError::invalid("provider_token", "the provider shared no e-mail address")
            })
            .and_then(|e| {
                Email::parse(&e).map_err(|why| ApiError::invalid("provider_token", why))
            })?;
        let name = UserName::parse(
            account
                .name
                .as_deref()
                .unwrap_or(email.as_str().split('@').next().unwrap_or("owner")),
        )
        .map_err(|why| ApiError::invalid("provider_token", format!("name {why}")))?;
        let phone = account
            .phone_number
            .as_deref()
            .map(Phone::parse)
            .transpose()
            .map_err(|why| ApiError::invalid("provider_token", format!("phone {why}")))?;
        Ok(ProviderProfile {
            provider: "kakao".into(),
            subject: profile.id.to_string().trim_matches('"').to_string(),
            email,
            name,
            phone,
        })
    }
}

/// DEVELOPMENT ONLY: trusts any e-mail address as an access token or authorization code,
/// so a newcomer can sign up without Kakao credentials. Enabled by `pos up` or
/// explicitly; never by default in production roles.
pub struct DevProvider;

/// The phone number the development provider gives everyone.
pub const DEV_PHONE: &str = "01000000000";

#[async_trait]
impl IdentityProvider for DevProvider {
    fn authorize_url(&self, state: &str, _code_challenge: &str, redirect_uri: &str) -> String {
        // There is no login page: the "code" to send back is any e-mail address.
        format!("{redirect_uri}?state={state}&code=YOUR_EMAIL&provider=dev")
    }

    async fn exchange_code(
        &self,
        code: &str,
        _code_verifier: &str,
        _redirect_uri: &str,
    ) -> ApiResult<String> {
        Ok(code.to_string())
    }

    async fn profile(&self, access_token: &str) -> ApiResult<ProviderProfile> {
        let email = Email::parse(access_token)
            .map_err(|_| refused("access token (the dev provider takes an e-mail address)"))?;
        let local = email.as_str().split('@').next().unwrap_or("owner");
        let name: String = local.chars().take(50).collect();
        Ok(ProviderProfile {
            provider: "dev".into(),
            subject: email.as_str().to_string(),
            name: UserName::parse(&name).map_err(|why| ApiError::invalid("provider_token", why))?,
            phone: Some(Phone::parse(DEV_PHONE).map_err(ApiError::internal)?),
            email,
        })
    }
}

/// The providers this deployment accepts, by name.
#[derive(Clone, Default)]
pub struct Providers {
    providers: HashMap<String, Arc<dyn IdentityProvider>>,
}

impl Providers {
    pub fn with(mut self, name: &str, provider: Arc<dyn IdentityProvider>) -> Self {
        self.providers.insert(name.to_string(), provider);
        self
    }

    pub fn get(&self, name: &str) -> ApiResult<&Arc<dyn IdentityProvider>> {
        self.providers.get(name).ok_or_else(|| {
            let mut known: Vec<&str> = self.providers.keys().map(String::as_str).collect();
            known.sort_unstable();
            ApiError::invalid(
                "provider",
                format!("unknown provider; use one of: {}", known.join(", ")),
            )
        })
    }
}
