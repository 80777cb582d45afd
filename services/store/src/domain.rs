//! Domain values of the store catalog, parsed once from requests so the rest of the
//! service only ever sees valid ones (parse, don't validate). Parse errors are the
//! human-readable reasons that become field violations.

pub use pos_common::domain::{Grade, SettlementDay, StoreName};
use pos_proto::v1::ProductCategory;

/// Largest price and base stock a product may have (SPEC section 3).
pub const MAX_AMOUNT: i64 = 10_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > 255 {
            return Err("must be 1-255 characters".into());
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A price or a base stock: whole won / units in 0..=10,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded(i64);

impl Bounded {
    pub fn parse(raw: i64) -> Result<Self, String> {
        if (0..=MAX_AMOUNT).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(format!("must be between 0 and {MAX_AMOUNT}"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    MainMenu,
    SubMenu,
    Drink,
}

impl Category {
    pub fn parse(raw: i32) -> Result<Self, String> {
        match ProductCategory::try_from(raw) {
            Ok(ProductCategory::MainMenu) => Ok(Self::MainMenu),
            Ok(ProductCategory::SubMenu) => Ok(Self::SubMenu),
            Ok(ProductCategory::Drink) => Ok(Self::Drink),
            _ => Err("must be MAIN_MENU, SUB_MENU or DRINK".into()),
        }
    }

    /// An optional filter: unspecified means every category.
    pub fn parse_filter(raw: i32) -> Result<Option<Self>, String> {
        if raw == ProductCategory::Unspecified as i32 {
            Ok(None)
        } else {
            Self::parse(raw).map(Some)
        }
    }

    pub fn as_db(self) -> &'static str {
        match self {
            Self::MainMenu => "MAIN_MENU",
            Self::SubMenu => "SUB_MENU",
            Self::Drink => "DRINK",
        }
    }

    pub fn proto_from_db(stored: &str) -> ProductCategory {
        match stored {
            "MAIN_MENU" => ProductCategory::MainMenu,
            "SUB_MENU" => ProductCategory::SubMenu,
            "DRINK" => ProductCategory::Drink,
            _ => ProductCategory::Unspecified,
        }
    }
}

/// A positive id of a row.
pub fn parse_id(raw: i64) -> Result<i64, String> {
    if raw > 0 {
        Ok(raw)
    } else {
        Err("must be a positive id".into())
    }
}

/// Order ids are chosen by the trade service: a UUID or another opaque key of 1-64
/// visible ASCII characters.
pub fn parse_order_id(raw: &str) -> Result<String, String> {
    if !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(raw.to_string())
    } else {
        Err("must be 1-64 visible ASCII characters".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_names_are_bounded() {
        assert!(ProductName::parse(&"x".repeat(255)).is_ok());
        assert!(ProductName::parse(&"x".repeat(256)).is_err());
    }

    #[test]
    fn amounts_and_categories() {
        assert!(Bounded::parse(0).is_ok());
        assert!(Bounded::parse(MAX_AMOUNT).is_ok());
        assert!(Bounded::parse(MAX_AMOUNT + 1).is_err());
        assert!(Bounded::parse(-1).is_err());
        assert!(Category::parse(99).is_err());
        assert_eq!(Category::parse_filter(0), Ok(None));
    }
}
