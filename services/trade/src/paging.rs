//! Pages of ListPayments, as the store's lists page: `page.page_size` payments at most —
//! 0 means [`DEFAULT_PAGE_SIZE`], more than [`MAX_PAGE_SIZE`] is INVALID_ARGUMENT — and an
//! opaque `page_token` naming where the previous page ended. Payments come newest first,
//! so the keyset is (paid_at, id): a token is URL-safe base64 of
//! `payments:<paid_at in microseconds>:<id>` (PostgreSQL keeps microseconds, so a
//! cursor in milliseconds could skip payments), and anything else in `page.page_token` is
//! INVALID_ARGUMENT naming that field.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::DateTime;
use pos_common::error::Violations;
use pos_proto::v1::PageRequest;
use pos_trade_storage::{Payment, PaymentCursor, PaymentPage};

/// Payments of a page when the request names no size.
pub const DEFAULT_PAGE_SIZE: i64 = 100;
/// The most payments one page may hold.
pub const MAX_PAGE_SIZE: i64 = 500;

const LIST: &str = "payments";

/// A parsed page request: where to start and how many payments the caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentsPage {
    after: Option<PaymentCursor>,
    size: i64,
}

impl PaymentsPage {
    /// Reads `page` (absent: the first page of the default size), adding a violation per
    /// bad field (`page.page_size`, `page.page_token`).
    pub fn parse(page: Option<&PageRequest>, violations: &mut Violations) -> Option<Self> {
        let (raw_size, token) = page.map_or((0, ""), |p| (p.page_size, p.page_token.as_str()));
        let size = match i64::from(raw_size) {
            0 => Some(DEFAULT_PAGE_SIZE),
            n if (1..=MAX_PAGE_SIZE).contains(&n) => Some(n),
            _ => {
                violations.add(
                    "page.page_size",
                    format!(
                        "must be between 0 (the default, {DEFAULT_PAGE_SIZE}) and {MAX_PAGE_SIZE}"
                    ),
                );
                None
            }
        };
        let after = if token.is_empty() {
            Some(None)
        } else {
            let after = decode(token);
            if after.is_none() {
                violations.add(
                    "page.page_token",
                    "not a token this list gave in a previous page",
                );
            }
            after.map(Some)
        };
        Some(Self {
            after: after?,
            size: size?,
        })
    }

    /// What to ask storage for: one payment more than the page, to learn whether another
    /// page follows without a second query.
    pub fn query(self) -> PaymentPage {
        PaymentPage {
            after: self.after,
            limit: self.size + 1,
        }
    }

    /// Cuts storage's payments to the page, and the token of the next page (empty after
    /// the last one).
    pub fn finish(self, mut payments: Vec<Payment>) -> (Vec<Payment>, String) {
        let more = payments.len() as i64 > self.size;
        payments.truncate(usize::try_from(self.size).unwrap_or(usize::MAX));
        let next = match payments.last() {
            Some(last) if more => encode(PaymentCursor::from(last)),
            _ => String::new(),
        };
        (payments, next)
    }
}

fn encode(cursor: PaymentCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{LIST}:{}:{}",
        cursor.paid_at.timestamp_micros(),
        cursor.id
    ))
}

fn decode(token: &str) -> Option<PaymentCursor> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.split(':');
    let (list, micros, id) = (parts.next()?, parts.next()?, parts.next()?);
    if list != LIST || parts.next().is_some() {
        return None;
    }
    let paid_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    let id: i64 = id.parse().ok()?;
    (id > 0).then_some(PaymentCursor { paid_at, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(size: i32, token: &str) -> Result<PaymentsPage, Vec<String>> {
        let mut violations = Violations::new();
        let request = PageRequest {
            page_size: size,
            page_token: token.into(),
        };
        let spec = PaymentsPage::parse(Some(&request), &mut violations);
        violations
            .finish(|| spec)
            .map_err(|err| err.violations().iter().map(|v| v.field.clone()).collect())
    }

    #[test]
    fn sizes_default_and_are_bounded() {
        assert_eq!(spec(0, "").map(|s| s.size), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(spec(500, "").map(|s| s.size), Ok(MAX_PAGE_SIZE));
        for size in [-1, 501, i32::MAX, i32::MIN] {
            assert_eq!(spec(size, ""), Err(vec!["page.page_size".to_string()]));
        }
    }

    #[test]
    fn tokens_round_trip_and_anything_else_is_refused() {
        let cursor = PaymentCursor {
            paid_at: DateTime::from_timestamp_micros(1_733_011_200_123_456).expect("instant"),
            id: 42,
        };
        assert_eq!(spec(2, &encode(cursor)).map(|s| s.after), Ok(Some(cursor)));
        for token in [
            "x",
            "!!!",
            &URL_SAFE_NO_PAD.encode("products:1:2"),
            &URL_SAFE_NO_PAD.encode("payments:1:-2"),
            &URL_SAFE_NO_PAD.encode("payments:1:2:3"),
            &URL_SAFE_NO_PAD.encode("payments:x:2"),
        ] {
            assert_eq!(
                spec(0, token),
                Err(vec!["page.page_token".to_string()]),
                "{token}"
            );
        }
    }
}
