//! Pages of the store service's lists (ListProducts, ListDevices, ListProductHistory),
//! by the rules every list follows ([`pos_common::paging`]): the cursor is the last id a
//! page held (keyset), so a token reads `<list>:<last id>`. Every page of the largest rows
//! fits a gRPC message many times over (see the tests).

pub use pos_common::paging::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use pos_common::{error::Violations, paging::Paging};
use pos_proto::v1::PageRequest;
use pos_store_storage::Page;

/// Which list a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Products,
    Devices,
    History,
}

impl List {
    fn name(self) -> &'static str {
        match self {
            Self::Products => "products",
            Self::Devices => "devices",
            Self::History => "history",
        }
    }
}

/// A parsed page request: where to start and how many rows the caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSpec(Paging<i64>);

impl PageSpec {
    /// Reads `page` (absent: the first page of the default size), adding a violation per
    /// bad field (`page.page_size`, `page.page_token`).
    pub fn parse(
        list: List,
        page: Option<&PageRequest>,
        violations: &mut Violations,
    ) -> Option<Self> {
        Paging::parse(list.name(), page, last_id, violations).map(Self)
    }

    /// What to ask storage for: one row more than the page.
    pub fn query(self) -> Page {
        Page {
            after: self.after(),
            limit: self.0.limit(),
        }
    }

    /// Cuts storage's rows to the page, and the token of the next page (empty after the
    /// last one). `id` is a row's keyset id.
    pub fn finish<T>(self, rows: Vec<T>, id: impl Fn(&T) -> i64) -> (Vec<T>, String) {
        self.0.finish(rows, |row| id(row).to_string())
    }

    /// The id the page starts after; 0 for the first page (ids start at 1).
    fn after(self) -> i64 {
        self.0.after.unwrap_or(0)
    }
}

/// A token's cursor: a positive id.
fn last_id(text: &str) -> Option<i64> {
    text.parse().ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    use pos_common::{paging::token, role::MAX_MESSAGE_BYTES};
    use pos_proto::v1 as pb;
    use prost::Message;

    use super::*;

    fn spec(size: i32, token: &str) -> Result<PageSpec, Vec<String>> {
        let mut violations = Violations::new();
        let request = PageRequest {
            page_size: size,
            page_token: token.into(),
        };
        let spec = PageSpec::parse(List::Products, Some(&request), &mut violations);
        violations
            .finish(|| spec)
            .map_err(|err| err.violations().iter().map(|v| v.field.clone()).collect())
    }

    #[test]
    fn sizes_default_and_are_bounded() {
        assert_eq!(spec(0, "").map(|s| s.0.size), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(spec(1, "").map(|s| s.0.size), Ok(1));
        assert_eq!(spec(500, "").map(|s| s.0.size), Ok(MAX_PAGE_SIZE));
        for size in [-1, 501, i32::MAX, i32::MIN] {
            assert_eq!(spec(size, ""), Err(vec!["page.page_size".to_string()]));
        }
        let mut violations = Violations::new();
        let absent = PageSpec::parse(List::Devices, None, &mut violations);
        assert_eq!(
            absent.map(|s| (s.after(), s.0.size)),
            Some((0, DEFAULT_PAGE_SIZE))
        );
    }

    #[test]
    fn tokens_go_back_only_to_their_list() {
        let first = spec(2, "").expect("first");
        let (rows, token) = first.finish(vec![10, 20, 30], |id| *id);
        assert_eq!(rows, [10, 20]);
        assert_eq!(spec(2, &token).map(|s| s.after()), Ok(20));
        let (rows, token) = first.finish(vec![10, 20], |id| *id);
        assert_eq!((rows, token.as_str()), (vec![10, 20], ""), "the last page");
        let devices = pos_common::paging::token(List::Devices.name(), "20");
        let garbage = [
            "x",
            "!!!",
            "20",
            devices.as_str(),
            &URL_SAFE_NO_PAD.encode("products:-5"),
            &URL_SAFE_NO_PAD.encode("products:"),
            &URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
        ];
        for token in garbage {
            assert_eq!(
                spec(0, token),
                Err(vec!["page.page_token".to_string()]),
                "{token}"
            );
        }
    }

    /// The largest page (of products with the longest names, each character 4 bytes)
    /// and the largest answer of any write stay far below the message limit.
    #[test]
    fn the_largest_page_and_write_answers_fit_a_message() {
        let product = pb::Product {
            id: i64::MAX,
            store_id: i64::MAX,
            name: "😀".repeat(pos_store_storage::ProductName::MAX_CHARS),
            category: 3,
            price: i64::MAX,
            stock: i64::MAX,
            base_stock: i64::MAX,
            deleted: true,
            created_at: Some(prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 999_999_999,
            }),
            updated_at: Some(prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 999_999_999,
            }),
        };
        let page = pb::ListProductsResponse {
            products: vec![product.clone(); MAX_PAGE_SIZE as usize],
            next_page_token: token(List::Products.name(), &i64::MAX.to_string()),
        };
        assert!(
            page.encoded_len() * 4 < MAX_MESSAGE_BYTES,
            "{}",
            page.encoded_len()
        );
        let write = pb::UpdateProductResponse {
            product: Some(product),
        };
        assert!(write.encoded_len() < 2 * 1024);
        let restock = pb::RestockResponse {
            restocked_count: i64::MAX,
            ..Default::default()
        };
        assert!(restock.encoded_len() < 32);
    }
}
