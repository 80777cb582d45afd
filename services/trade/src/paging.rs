//! Pages of ListPayments, by the rules every list follows ([`pos_common::paging`]).
//! Payments come newest first, so the keyset is (paid_at, id): a token reads
//! `payments:<paid_at in microseconds>:<id>` (PostgreSQL keeps microseconds, so a cursor
//! in milliseconds could skip payments).

use chrono::DateTime;
use pos_common::{error::Violations, paging::Paging};
use pos_proto::v1::PageRequest;
use pos_trade_storage::{Payment, PaymentCursor, PaymentPage};

const LIST: &str = "payments";

/// A parsed page request: where to start and how many payments the caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentsPage(Paging<PaymentCursor>);

impl PaymentsPage {
    /// Reads `page` (absent: the first page of the default size), adding a violation per
    /// bad field (`page.page_size`, `page.page_token`).
    pub fn parse(page: Option<&PageRequest>, violations: &mut Violations) -> Option<Self> {
        Paging::parse(LIST, page, read_cursor, violations).map(Self)
    }

    /// What to ask storage for: one payment more than the page.
    pub fn query(self) -> PaymentPage {
        PaymentPage {
            after: self.0.after,
            limit: self.0.limit(),
        }
    }

    /// Cuts storage's payments to the page, and the token of the next page (empty after
    /// the last one).
    pub fn finish(self, payments: Vec<Payment>) -> (Vec<Payment>, String) {
        self.0
            .finish(payments, |last| write_cursor(PaymentCursor::from(last)))
    }
}

fn write_cursor(cursor: PaymentCursor) -> String {
    format!("{}:{}", cursor.paid_at.timestamp_micros(), cursor.id)
}

fn read_cursor(text: &str) -> Option<PaymentCursor> {
    let (micros, id) = text.split_once(':')?;
    let paid_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    let id: i64 = id.parse().ok()?;
    (id > 0).then_some(PaymentCursor { paid_at, id })
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    use pos_common::paging::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, token};

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
        assert_eq!(spec(0, "").map(|s| s.0.size), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(spec(500, "").map(|s| s.0.size), Ok(MAX_PAGE_SIZE));
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
        let next = token(LIST, &write_cursor(cursor));
        assert_eq!(spec(2, &next).map(|s| s.0.after), Ok(Some(cursor)));
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
