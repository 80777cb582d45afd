//! The one error type every RPC returns. It maps to a gRPC status carrying
//! `google.rpc.ErrorInfo` (reason, domain `pos.v1`, metadata) and, for validation,
//! `google.rpc.BadRequest` field violations. Internal causes are logged, never sent.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error this system returns.
pub const ERROR_DOMAIN: &str = "pos.v1";

/// Machine-readable reasons of SPEC section 5, sent as `ErrorInfo.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    TokenMissing,
    TokenInvalid,
    TokenExpired,
    TokenRevoked,
    WrongTokenType,
    NotYourStore,
    DeviceNotInStore,
    InternalOnly,
    RoleNotAllowed,
    UserNotFound,
    StoreNotFound,
    ProductNotFound,
    DeviceNotFound,
    OpenTradeNotFound,
    ReservationNotFound,
    EmailAlreadyUsed,
    OutOfStock,
    AmountChanged,
    SignupTicketExpired,
    ReservationClosed,
    InvalidArgument,
    RateLimited,
    DependencyUnavailable,
    Internal,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TokenMissing => "TOKEN_MISSING",
            Reason::TokenInvalid => "TOKEN_INVALID",
            Reason::TokenExpired => "TOKEN_EXPIRED",
            Reason::TokenRevoked => "TOKEN_REVOKED",
            Reason::WrongTokenType => "WRONG_TOKEN_TYPE",
            Reason::NotYourStore => "NOT_YOUR_STORE",
            Reason::DeviceNotInStore => "DEVICE_NOT_IN_STORE",
            Reason::InternalOnly => "INTERNAL_ONLY",
            Reason::RoleNotAllowed => "ROLE_NOT_ALLOWED",
            Reason::UserNotFound => "USER_NOT_FOUND",
            Reason::StoreNotFound => "STORE_NOT_FOUND",
            Reason::ProductNotFound => "PRODUCT_NOT_FOUND",
            Reason::DeviceNotFound => "DEVICE_NOT_FOUND",
            Reason::OpenTradeNotFound => "OPEN_TRADE_NOT_FOUND",
            Reason::ReservationNotFound => "RESERVATION_NOT_FOUND",
            Reason::EmailAlreadyUsed => "EMAIL_ALREADY_USED",
            Reason::OutOfStock => "OUT_OF_STOCK",
            Reason::AmountChanged => "AMOUNT_CHANGED",
            Reason::SignupTicketExpired => "SIGNUP_TICKET_EXPIRED",
            Reason::ReservationClosed => "RESERVATION_CLOSED",
            Reason::InvalidArgument => "INVALID_ARGUMENT",
            Reason::RateLimited => "RATE_LIMITED",
            Reason::DependencyUnavailable => "DEPENDENCY_UNAVAILABLE",
            Reason::Internal => "INTERNAL",
        }
    }

    /// The gRPC code each reason travels with.
    pub fn code(self) -> Code {
        use Reason::*;
        match self {
            TokenMissing | TokenInvalid | TokenExpired | TokenRevoked | WrongTokenType => {
                Code::Unauthenticated
            }
            NotYourStore | DeviceNotInStore | InternalOnly | RoleNotAllowed => {
                Code::PermissionDenied
            }
            UserNotFound | StoreNotFound | ProductNotFound | DeviceNotFound | OpenTradeNotFound
            | ReservationNotFound => Code::NotFound,
            EmailAlreadyUsed => Code::AlreadyExists,
            OutOfStock | AmountChanged | SignupTicketExpired | ReservationClosed => {
                Code::FailedPrecondition
            }
            InvalidArgument => Code::InvalidArgument,
            RateLimited => Code::ResourceExhausted,
            DependencyUnavailable => Code::Unavailable,
            Internal => Code::Internal,
        }
    }
}

/// One invalid request field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// An RPC failure: a reason, a human message, optional metadata and field violations.
#[derive(Debug, Clone)]
pub struct ApiError {
    reason: Reason,
    message: String,
    metadata: HashMap<String, String>,
    violations: Vec<FieldViolation>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            metadata: HashMap::new(),
            violations: Vec::new(),
        }
    }

    /// A validation failure naming one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::invalid_fields(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// A validation failure naming every bad field at once.
    pub fn invalid_fields(violations: Vec<FieldViolation>) -> Self {
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        let message = format!("invalid request: {}", fields.join(", "));
        Self {
            violations,
            ..Self::new(Reason::InvalidArgument, message)
        }
    }

    /// An unexpected failure. The cause is logged here and replaced by an opaque message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(Reason::Internal, "internal error")
    }

    /// A dependency (database, cache, another service) is down; the client may retry.
    pub fn unavailable(what: &str, cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, dependency = what, "dependency unavailable");
        Self::new(
            Reason::DependencyUnavailable,
            format!("{what} is unavailable, retry later"),
        )
    }

    pub fn with_metadata(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.metadata.insert(key.into(), value.to_string());
        self
    }

    pub fn reason(&self) -> Reason {
        self.reason
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        let mut details =
            ErrorDetails::with_error_info(err.reason.as_str(), ERROR_DOMAIN, err.metadata.clone());
        for violation in &err.violations {
            details.add_bad_request_violation(&violation.field, &violation.description);
        }
        Status::with_error_details(err.reason.code(), err.message, details)
    }
}

/// Database failures: connection trouble and lock contention (a deadlock victim, a
/// serialization failure, SQLite still busy after its timeout) are retryable
/// UNAVAILABLE; anything else is INTERNAL.
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => ApiError::unavailable("database", err),
            sqlx::Error::Database(ref db) if is_contention(db.code().as_deref()) => {
                ApiError::unavailable("database", err)
            }
            other => ApiError::internal(other),
        }
    }
}

/// PostgreSQL deadlock (40P01), serialization failure (40001), lock not available
/// (55P03); SQLite BUSY (5) and LOCKED (6) with their extended codes.
fn is_contention(code: Option<&str>) -> bool {
    match code {
        Some("40P01" | "40001" | "55P03") => true,
        Some(sqlite) => sqlite
            .parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 5 | 6)),
        None => false,
    }
}

/// Collects field violations so a handler reports every bad field in one error.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.to_string(),
            description: description.into(),
        });
    }

    /// Records the error of a parse, keeping the parsed value when it succeeded.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(why) => {
                self.add(field, why);
                None
            }
        }
    }

    pub fn into_result(self) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_fields(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_carries_error_info_and_field_violations() {
        let status: Status = ApiError::invalid("name", "must not be empty").into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, "INVALID_ARGUMENT");
        assert_eq!(info.domain, ERROR_DOMAIN);
        let bad = details.bad_request().expect("bad request");
        assert_eq!(bad.field_violations[0].field, "name");
    }

    #[test]
    fn lock_contention_is_retryable() {
        for code in ["40P01", "40001", "55P03", "5", "517", "6"] {
            assert!(is_contention(Some(code)), "{code}");
        }
        for code in ["23505", "19", "2067"] {
            assert!(!is_contention(Some(code)), "{code}");
        }
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let status: Status = ApiError::internal("SELECT * FROM secret failed").into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("SELECT"));
    }
}
