//! A local stand-in for Kakao's OAuth2 and profile endpoints (the real one is never
//! called from tests). It checks what Kakao checks: the client id, the redirect URI and
//! the PKCE verifier against the challenge of the authorize step.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Form, Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "test-client";

/// A person known to the fake provider.
#[derive(Clone, Debug)]
pub struct Person {
    pub id: u64,
    pub email: String,
    pub name: String,
    pub phone: String,
}

#[derive(Default)]
struct Books {
    /// code → (PKCE challenge, redirect URI, person)
    codes: HashMap<String, (String, String, Person)>,
    /// access token → person
    tokens: HashMap<String, Person>,
}

#[derive(Clone)]
pub struct FakeKakao {
    pub base: String,
    books: Arc<Mutex<Books>>,
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    client_id: String,
    redirect_uri: String,
    code: String,
    code_verifier: String,
}

async fn token(
    State(books): State<Arc<Mutex<Books>>>,
    Form(form): Form<TokenForm>,
) -> (StatusCode, Json<Value>) {
    let mut books = books.lock().expect("lock");
    let Some((challenge, redirect_uri, person)) = books.codes.remove(&form.code) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        );
    };
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(form.code_verifier.as_bytes()));
    if form.grant_type != "authorization_code"
        || form.client_id != CLIENT_ID
        || form.redirect_uri != redirect_uri
        || computed != challenge
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        );
    }
    let access = format!("kakao-access-{}", uuid::Uuid::new_v4());
    books.tokens.insert(access.clone(), person);
    (
        StatusCode::OK,
        Json(json!({"access_token": access, "token_type": "bearer"})),
    )
}

async fn me(
    State(books): State<Arc<Mutex<Books>>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    match books.lock().expect("lock").tokens.get(token) {
        Some(p) => {
            let mut account = json!({"email": p.email, "name": p.name, "is_email_verified": true});
            // Kakao leaves out what the user did not consent to share.
            if !p.phone.is_empty() {
                account["phone_number"] = json!(p.phone);
            }
            (
                StatusCode::OK,
                Json(json!({"id": p.id, "kakao_account": account})),
            )
        }
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"msg": "this access token does not exist"})),
        ),
    }
}

impl FakeKakao {
    pub async fn start() -> Self {
        let books = Arc::new(Mutex::new(Books::default()));
        let app = Router::new()
            .route("/oauth/token", post(token))
            .route("/v2/user/me", get(me))
            .with_state(books.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://{addr}"),
            books,
        }
    }

    /// What the user's browser does at the authorize URL: the person consents and the
    /// provider redirects back with a code. Returns (code, state).
    pub fn consent(&self, authorize_url: &str, person: &Person) -> (String, String) {
        let url = url::Url::parse(authorize_url).expect("authorize url");
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(query.get("client_id").map(String::as_str), Some(CLIENT_ID));
        assert_eq!(
            query.get("code_challenge_method").map(String::as_str),
            Some("S256")
        );
        let code = format!("code-{}", uuid::Uuid::new_v4());
        self.books.lock().expect("lock").codes.insert(
            code.clone(),
            (
                query["code_challenge"].clone(),
                query["redirect_uri"].clone(),
                person.clone(),
            ),
        );
        (code, query["state"].clone())
    }

    /// An access token as a mobile app would hold after logging in with Kakao.
    pub fn access_token_for(&self, person: &Person) -> String {
        let access = format!("kakao-access-{}", uuid::Uuid::new_v4());
        self.books
            .lock()
            .expect("lock")
            .tokens
            .insert(access.clone(), person.clone());
        access
    }
}
