//! The one error type every RPC returns. It maps to a gRPC status carrying
//! `google.rpc.ErrorInfo` (reason, domain `pos.v1`, metadata) and, for validation,
//! `google.rpc.BadRequest` field violations. An internal cause travels with the error so
//! it can be logged where the error leaves the process, and is never sent to a client.

use std::{collections::HashMap, sync::Arc};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::Invalid;

/// The `ErrorInfo.domain` of every error this system returns (defined beside the codec,
/// which answers messages that do not decode itself).
pub const ERROR_DOMAIN: &str = pos_proto::codec::ERROR_DOMAIN;

/// Machine-readable reasons, sent as `ErrorInfo.reason`; each travels with one gRPC code.
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
    IdempotencyKeyReused,
    ProductLimitReached,
    /// The window asked for has not been aggregated (for this store) yet.
    NotAggregated,
    /// Another run holds the aggregation window; try again when it is done.
    WindowBusy,
    InvalidArgument,
    /// The request body is not one well-formed message (empty, truncated, more than one,
    /// or bytes that do not decode).
    MalformedRequest,
    /// A request message over the size limit.
    MessageTooLarge,
    RateLimited,
    DependencyUnavailable,
    /// The server is stopping: a long-lived call (a watch) ends so its client reconnects
    /// to a replica that stays.
    ServerStopping,
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
            Reason::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Reason::ProductLimitReached => "PRODUCT_LIMIT_REACHED",
            Reason::NotAggregated => "NOT_AGGREGATED",
            Reason::WindowBusy => "WINDOW_BUSY",
            Reason::InvalidArgument => "INVALID_ARGUMENT",
            Reason::MalformedRequest => pos_proto::codec::MALFORMED_REQUEST,
            Reason::MessageTooLarge => "MESSAGE_TOO_LARGE",
            Reason::RateLimited => "RATE_LIMITED",
            Reason::DependencyUnavailable => "DEPENDENCY_UNAVAILABLE",
            Reason::ServerStopping => "SERVER_STOPPING",
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
            | ReservationNotFound | NotAggregated => Code::NotFound,
            EmailAlreadyUsed => Code::AlreadyExists,
            WindowBusy => Code::Aborted,
            OutOfStock | AmountChanged | SignupTicketExpired | ReservationClosed
            | IdempotencyKeyReused | ProductLimitReached => Code::FailedPrecondition,
            InvalidArgument | MalformedRequest => Code::InvalidArgument,
            RateLimited | MessageTooLarge => Code::ResourceExhausted,
            DependencyUnavailable | ServerStopping => Code::Unavailable,
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

/// What caused an internal or unavailable error: kept for the log, never sent.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// An RPC failure: a reason, a human message, optional metadata and field violations,
/// and for internal failures the cause.
#[derive(Debug, Clone)]
pub struct ApiError {
    reason: Reason,
    message: String,
    metadata: HashMap<String, String>,
    violations: Vec<FieldViolation>,
    cause: Option<Cause>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            metadata: HashMap::new(),
            violations: Vec::new(),
            cause: None,
        }
    }

    /// A validation failure naming one field.
    pub fn invalid(field: impl Into<String>, why: impl std::fmt::Display) -> Self {
        Self::invalid_fields(vec![FieldViolation {
            field: field.into(),
            description: why.to_string(),
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

    /// An unexpected failure. The client sees an opaque message; the cause is logged when
    /// the error becomes a status.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::new(Reason::Internal, "internal error").caused_by(cause)
    }

    /// A dependency (database, cache, another service) is down; the client may retry.
    pub fn unavailable(
        what: &str,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::new(
            Reason::DependencyUnavailable,
            format!("{what} is unavailable, retry later"),
        )
        .caused_by(cause)
    }

    pub fn caused_by(mut self, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.cause = Some(Arc::from(cause.into()));
        self
    }

    pub fn with_metadata(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.metadata.insert(key.into(), value.to_string());
        self
    }

    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The fields a validation failure names.
    pub fn violations(&self) -> &[FieldViolation] {
        &self.violations
    }

    /// The message a client sees.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Writes the error and its whole cause chain to the log, at a level that fits it.
    fn log(&self) {
        let Some(cause) = &self.cause else { return };
        let chain = cause_chain(cause.as_ref());
        match self.reason {
            Reason::Internal => tracing::error!(cause = %chain, "internal error"),
            _ => tracing::warn!(cause = %chain, reason = self.reason.as_str(), "{}", self.message),
        }
    }
}

/// `cause: its cause: ...`, so one log line says everything.
fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        chain.push_str(": ");
        chain.push_str(&source.to_string());
        next = source.source();
    }
    chain
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|cause| cause as &(dyn std::error::Error + 'static))
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        err.log();
        let mut details =
            ErrorDetails::with_error_info(err.reason.as_str(), ERROR_DOMAIN, err.metadata);
        for violation in &err.violations {
            details.add_bad_request_violation(&violation.field, &violation.description);
        }
        Status::with_error_details(err.reason.code(), err.message, details)
    }
}

/// Collects field violations so a handler reports every bad field in one error — up to
/// [`Violations::MAX_REPORTED`]: a request of many bad fields costs no more to refuse.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// The most violations one error names; the rest are dropped unnamed.
    pub const MAX_REPORTED: usize = 50;

    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, why: impl std::fmt::Display) {
        if self.0.len() < Self::MAX_REPORTED {
            self.0.push(FieldViolation {
                field: field.to_string(),
                description: why.to_string(),
            });
        } else if self.0.len() == Self::MAX_REPORTED {
            self.0.push(FieldViolation {
                field: "...".to_string(),
                description: "more fields are invalid".to_string(),
            });
        }
    }

    /// Records the error of a parse, keeping the parsed value when it succeeded.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, Invalid>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(why) => {
                self.add(field, why);
                None
            }
        }
    }

    /// `Err` naming every recorded field, or `Ok` with `value` when there were none.
    /// `value` is only computed when every check passed, so it may unwrap what they parsed.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> ApiResult<T> {
        if !self.0.is_empty() {
            return Err(ApiError::invalid_fields(self.0));
        }
        value()
            .ok_or_else(|| ApiError::internal("a field passed validation without a parsed value"))
    }

    pub fn into_result(self) -> ApiResult<()> {
        self.finish(|| Some(()))
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
    fn a_flood_of_bad_fields_is_reported_in_part() {
        let mut violations = Violations::new();
        for i in 0..10_000 {
            violations.add(&format!("lines[{i}].count"), "must be positive");
        }
        let err = violations.into_result().expect_err("invalid");
        assert_eq!(err.violations().len(), Violations::MAX_REPORTED + 1);
        assert_eq!(err.violations()[Violations::MAX_REPORTED].field, "...");
        assert!(err.message().len() < 2_000, "{}", err.message().len());
    }

    #[test]
    fn internal_errors_keep_their_cause_but_never_send_it() {
        let io = std::io::Error::other("SELECT * FROM secret failed");
        let err = ApiError::internal(io);
        let source = std::error::Error::source(&err).expect("the cause is kept");
        assert!(source.to_string().contains("SELECT"));
        let status: Status = err.into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("SELECT"));
    }

    #[test]
    fn violations_name_every_field() {
        let mut violations = Violations::new();
        let name: Option<u8> = violations.check("name", Err(Invalid::new("too long")));
        violations.add("price", "negative");
        let err = violations.finish(|| name).unwrap_err();
        assert_eq!(err.violations.len(), 2);
        assert_eq!(err.reason(), Reason::InvalidArgument);
    }
}
