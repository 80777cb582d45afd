//! Gives every unary call a deadline: the client's if it is shorter, else the default,
//! so a slow dependency cannot pin edge resources forever. Streams are left open by
//! design. [`crate::dispatch::Dispatch`] enforces it; services enforce it again.
//!
//! The `grpc-timeout` parser is our own: tonic has one, but keeps it private.

use std::time::Duration;

use async_trait::async_trait;
use tonic::{Status, body::Body};

use crate::{gate::Gate, policy::Route};

#[derive(Clone)]
pub struct DefaultDeadline {
    deadline: Duration,
    header: http::HeaderValue,
}

impl DefaultDeadline {
    pub fn new(deadline: Duration) -> Self {
        // grpc-timeout: at most 8 digits and a unit; milliseconds cover ~27 hours.
        let millis = deadline.as_millis().clamp(1, 99_999_999);
        let header = http::HeaderValue::from_str(&format!("{millis}m"))
            .expect("digits and a unit are a valid header value");
        Self { deadline, header }
    }
}

#[async_trait]
impl Gate for DefaultDeadline {
    async fn check(&self, request: &mut http::Request<Body>) -> Result<(), Status> {
        let streaming = matches!(
            request.extensions().get::<Route>(),
            Some(Route::Rpc { rule, .. }) if rule.streaming
        );
        if streaming {
            return Ok(());
        }
        let asked = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        if asked.is_none_or(|asked| asked > self.deadline) {
            request
                .headers_mut()
                .insert("grpc-timeout", self.header.clone());
        }
        Ok(())
    }
}

/// Parses a `grpc-timeout` header value: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(
            parse_grpc_timeout("1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("10S"), Some(Duration::from_secs(10)));
        for bad in ["", "m", "12x", "123456789m", "-1S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }
}
