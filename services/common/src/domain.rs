//! Domain values shared by more than one service, parsed once (parse, don't validate):
//! ids (`OrderId` and `TradeId` included), the store a signup asks for (validated by the
//! user service before the store service creates it), product categories and names, and
//! an order's lines with their limits (`OrderLines`, read by the trade role from a tablet
//! and by the store role from trade). A failed parse is an [`Invalid`] saying why, which
//! handlers turn into a field violation.

use std::borrow::Cow;

use pos_proto::v1::{PosGrade, ProductCategory};

/// Why a value was refused, in words a client can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(Cow<'static, str>);

impl Invalid {
    pub fn new(why: impl Into<Cow<'static, str>>) -> Self {
        Self(why.into())
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(i64);

        impl $name {
            /// A positive id, as clients send it.
            pub fn parse(raw: i64) -> Result<Self, Invalid> {
                if raw > 0 {
                    Ok(Self(raw))
                } else {
                    Err(Invalid::new("must be a positive id"))
                }
            }

            /// An id the database handed out (always positive: sequences start at 1).
            pub fn from_stored(raw: i64) -> Self {
                Self(raw)
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An owner (a row of the user service).
    UserId
);
id_type!(
    /// A store (one per owner).
    StoreId
);
id_type!(
    /// An ordering tablet of a store.
    DeviceId
);
id_type!(
    /// A product of a store's menu.
    ProductId
);
id_type!(
    /// A table's bill (a trade).
    TradeId
);

/// `raw` when it is 1-`max` visible ASCII characters: the rule of opaque keys clients
/// or roles choose (order ids, idempotency keys).
pub fn visible_ascii(raw: &str, max: usize) -> Result<String, Invalid> {
    if !raw.is_empty() && raw.len() <= max && raw.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(raw.to_string())
    } else {
        Err(Invalid::new(format!(
            "must be 1-{max} visible ASCII characters"
        )))
    }
}

/// An order's id, chosen by the trade role before it commits the order; the same id
/// reserves, confirms or releases the order's stock in the store role. A UUID or another
/// opaque key of 1-64 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderId(String);

impl OrderId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        visible_ascii(raw, Self::MAX_LEN).map(Self)
    }

    /// An id a database kept, as it was kept.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Most lines one order may have (the trade role takes orders, the store role reserves
/// their stock: both hold them to the same limits).
pub const MAX_ORDER_LINES: usize = 100;
/// Most of one product one order may ask for, its lines of that product together.
pub const MAX_LINE_COUNT: i64 = 10_000_000;

/// One product and how many of it an order takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub count: i64,
}

/// An order's lines: 1-100 lines of counts 1-10,000,000, lines of the same product
/// merged (stock is checked on the total, and the limit holds for it), in product id
/// order — the order in which the store locks product rows, so concurrent reservations
/// never deadlock. The
/// trade role parses a tablet's order with it, and the store role the reservation the
/// trade role asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLines(Vec<OrderLine>);

impl OrderLines {
    /// Parses `(product_id, count)` pairs as a request sent them, recording a violation
    /// per bad field (`lines`, `lines[i].product_id`, `lines[i].count`). Too many lines
    /// is the one violation of an overlong list: its lines are not read, so a request
    /// of millions of tiny bad lines costs no more than any other refusal.
    pub fn parse(raw: &[(i64, i64)], violations: &mut crate::error::Violations) -> Option<Self> {
        if raw.is_empty() {
            violations.add("lines", "at least one line is required");
            return None;
        }
        if raw.len() > MAX_ORDER_LINES {
            violations.add("lines", format!("at most {MAX_ORDER_LINES} lines"));
            return None;
        }
        let mut valid = true;
        let mut merged: std::collections::BTreeMap<ProductId, i64> = Default::default();
        for (i, &(product_id, count)) in raw.iter().enumerate() {
            let product = violations.check(
                &format!("lines[{i}].product_id"),
                ProductId::parse(product_id),
            );
            if !(1..=MAX_LINE_COUNT).contains(&count) {
                violations.add(
                    &format!("lines[{i}].count"),
                    format!("must be between 1 and {MAX_LINE_COUNT}"),
                );
                valid = false;
                continue;
            }
            let Some(product) = product else {
                valid = false;
                continue;
            };
            // At most 100 counts of at most 10^7 each: the sum cannot overflow.
            let total = merged.entry(product).or_insert(0);
            *total += count;
            if *total > MAX_LINE_COUNT {
                violations.add(
                    &format!("lines[{i}].count"),
                    format!(
                        "with the earlier lines of product {product} comes to more than {MAX_LINE_COUNT}"
                    ),
                );
                valid = false;
            }
        }
        valid.then(|| {
            Self(
                merged
                    .into_iter()
                    .map(|(product_id, count)| OrderLine { product_id, count })
                    .collect(),
            )
        })
    }

    pub fn lines(&self) -> &[OrderLine] {
        &self.0
    }

    /// Whether `other` (product, count) pairs, in product id order, are exactly these lines.
    pub fn matches(&self, other: impl ExactSizeIterator<Item = (ProductId, i64)>) -> bool {
        self.0.len() == other.len()
            && self.0.iter().zip(other).all(|(want, (product_id, count))| {
                want.product_id == product_id && want.count == count
            })
    }
}

/// The card company of a card payment; each charges its own fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardCompany {
    K,
    H,
    S,
}

impl CardCompany {
    pub const ALL: [CardCompany; 3] = [CardCompany::K, CardCompany::H, CardCompany::S];

    /// The company's fee in thousandths of the amount paid.
    pub fn fee_permille(self) -> i64 {
        match self {
            Self::K => 4,
            Self::H => 6,
            Self::S => 8,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::K => "K",
            Self::H => "H",
            Self::S => "S",
        }
    }

    pub fn from_name(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == stored)
    }
}

/// Menu category of a product; fixed once the product exists, and kept on each order
/// line as it was ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    MainMenu,
    SubMenu,
    Drink,
}

impl Category {
    pub const ALL: [Category; 3] = [Category::MainMenu, Category::SubMenu, Category::Drink];

    pub fn parse(raw: i32) -> Result<Self, Invalid> {
        match ProductCategory::try_from(raw) {
            Ok(ProductCategory::MainMenu) => Ok(Self::MainMenu),
            Ok(ProductCategory::SubMenu) => Ok(Self::SubMenu),
            Ok(ProductCategory::Drink) => Ok(Self::Drink),
            _ => Err(Invalid::new("must be MAIN_MENU, SUB_MENU or DRINK")),
        }
    }

    /// An optional filter: unspecified means every category.
    pub fn parse_filter(raw: i32) -> Result<Option<Self>, Invalid> {
        if raw == ProductCategory::Unspecified as i32 {
            Ok(None)
        } else {
            Self::parse(raw).map(Some)
        }
    }

    /// The name stored in databases.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MainMenu => "MAIN_MENU",
            Self::SubMenu => "SUB_MENU",
            Self::Drink => "DRINK",
        }
    }

    /// The category a stored name stands for; `None` for one this build does not know.
    pub fn from_name(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == stored)
    }

    pub fn to_proto(self) -> ProductCategory {
        match self {
            Self::MainMenu => ProductCategory::MainMenu,
            Self::SubMenu => ProductCategory::SubMenu,
            Self::Drink => ProductCategory::Drink,
        }
    }
}

/// Whether `c` may not appear in a name shown on one line (a store's, a product's), by
/// its Unicode general category (from `unicode-properties`, not a hand-kept list): every
/// control character (Cc: NUL, BEL, ESC, tabs, line feeds, form feed, NEL U+0085 ...),
/// the line and paragraph separators (Zl U+2028, Zp U+2029), the invisible format
/// characters (Cf) that reorder, hide or smuggle text (bidirectional controls,
/// zero-width space, word joiners, the byte order mark, soft hyphen, tag characters ...),
/// private-use and unassigned code points, and letters that render as nothing (the
/// Hangul fillers, the blank braille pattern, the combining grapheme joiner). The
/// zero-width joiner and non-joiner stay allowed: emoji sequences and several scripts
/// need them.
pub fn is_forbidden_in_name(c: char) -> bool {
    use unicode_properties::{GeneralCategory as Category, UnicodeGeneralCategory};
    const JOINERS: [char; 2] = ['\u{200C}', '\u{200D}'];
    const BLANK_LOOKING: [char; 6] = [
        '\u{034F}', '\u{115F}', '\u{1160}', '\u{2800}', '\u{3164}', '\u{FFA0}',
    ];
    match c.general_category() {
        Category::Control
        | Category::LineSeparator
        | Category::ParagraphSeparator
        | Category::Surrogate
        | Category::PrivateUse
        | Category::Unassigned => true,
        Category::Format => !JOINERS.contains(&c),
        _ => BLANK_LOOKING.contains(&c),
    }
}

/// A one-line name: `raw` without its surrounding spaces, 1 to `max` characters, none of
/// them [forbidden](is_forbidden_in_name). Forbidden characters are refused wherever they
/// are, even at either end (where trimming would hide a vertical tab or U+2028).
pub fn one_line_name(raw: &str, max: usize) -> Result<String, Invalid> {
    if raw.chars().any(is_forbidden_in_name) {
        return Err(Invalid::new(
            "must not contain control characters, line or paragraph separators, or \
             invisible formatting characters",
        ));
    }
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > max {
        return Err(Invalid::new(format!("must be 1-{max} characters")));
    }
    Ok(name.to_string())
}

/// A store's name: 1-20 characters after trimming, on one line (see [`one_line_name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreName(String);

impl StoreName {
    pub const MAX_CHARS: usize = 20;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        one_line_name(raw, Self::MAX_CHARS).map(Self)
    }

    /// A name the database kept, as it was kept: it passed the rule of the build that
    /// wrote it, which may have been looser than today's, and it must stay readable.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The POS plan a store signed up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grade {
    Bronze,
    Silver,
    Gold,
}

impl Grade {
    pub const ALL: [Grade; 3] = [Grade::Bronze, Grade::Silver, Grade::Gold];

    pub fn parse(raw: i32) -> Result<Self, Invalid> {
        match PosGrade::try_from(raw) {
            Ok(PosGrade::Bronze) => Ok(Self::Bronze),
            Ok(PosGrade::Silver) => Ok(Self::Silver),
            Ok(PosGrade::Gold) => Ok(Self::Gold),
            _ => Err(Invalid::new("must be BRONZE, SILVER or GOLD")),
        }
    }

    /// How many ordering tablets a store of this grade gets at signup.
    pub fn device_count(self) -> i32 {
        match self {
            Self::Bronze => 30,
            Self::Silver => 50,
            Self::Gold => 100,
        }
    }

    /// The name stored in databases.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bronze => "BRONZE",
            Self::Silver => "SILVER",
            Self::Gold => "GOLD",
        }
    }

    /// The grade a stored name stands for; `None` for a name this build does not know.
    pub fn from_name(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|grade| grade.as_str() == stored)
    }

    pub fn to_proto(self) -> PosGrade {
        match self {
            Self::Bronze => PosGrade::Bronze,
            Self::Silver => PosGrade::Silver,
            Self::Gold => PosGrade::Gold,
        }
    }
}

/// The day of month a store's monthly settlement closes: 1, 5, 10, 15, 20 or 25.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlementDay(i32);

impl SettlementDay {
    pub const ALLOWED: [i32; 6] = [1, 5, 10, 15, 20, 25];

    pub fn parse(raw: i32) -> Result<Self, Invalid> {
        if Self::ALLOWED.contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(Invalid::new("must be one of 1, 5, 10, 15, 20, 25"))
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// What a new owner's store is to be: validated by the user service at signup, kept
/// until the store service has created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRequest {
    pub name: StoreName,
    pub grade: Grade,
    pub settlement_day: SettlementDay,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_grades_and_days() {
        assert_eq!(
            StoreName::parse("  Cafe  ").map(|n| n.0),
            Ok("Cafe".to_string())
        );
        assert!(StoreName::parse("").is_err());
        assert!(StoreName::parse("a\nb").is_err());
        assert!(StoreName::parse(&"가".repeat(20)).is_ok());
        assert!(StoreName::parse(&"가".repeat(21)).is_err());
        assert!(
            StoreName::parse("Cafe \u{200D} ☕").is_ok(),
            "a joiner is allowed"
        );
        assert_eq!(
            Grade::parse(PosGrade::Gold as i32).map(Grade::device_count),
            Ok(100)
        );
        assert!(Grade::parse(0).is_err());
        for grade in Grade::ALL {
            assert_eq!(Grade::from_name(grade.as_str()), Some(grade));
        }
        assert_eq!(Grade::from_name("PLATINUM"), None);
        assert!(SettlementDay::parse(25).is_ok());
        assert!(SettlementDay::parse(2).is_err());
        assert!(StoreId::parse(0).is_err());
        assert_eq!(StoreId::parse(7).map(StoreId::get), Ok(7));
    }

    /// Every character an attacker got into a store name, anywhere in it.
    pub const UNPRINTABLE: [char; 11] = [
        '\0', '\u{7}', '\u{1b}', '\u{b}', '\u{c}', '\t', '\u{85}', '\u{2028}', '\u{2029}',
        '\u{202E}', '\u{FEFF}',
    ];

    #[test]
    fn names_refuse_control_separator_and_bidi_characters_anywhere() {
        for c in UNPRINTABLE {
            for raw in [format!("Ca{c}fe"), format!("Cafe{c}"), format!("{c}Cafe")] {
                assert!(StoreName::parse(&raw).is_err(), "{raw:?}");
                assert!(one_line_name(&raw, 255).is_err(), "{raw:?}");
            }
        }
    }

    #[test]
    fn names_refuse_invisible_smuggled_and_blank_looking_characters() {
        // Tag characters (ASCII smuggling), Arabic number sign, Hangul filler, blank
        // braille, private use, unassigned.
        for c in [
            '\u{E0041}',
            '\u{E0001}',
            '\u{0600}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{2800}',
            '\u{E000}',
            '\u{0378}',
        ] {
            assert!(one_line_name(&format!("Ca{c}fe"), 255).is_err(), "{c:?}");
        }
        // Letters of any script, emoji with joiners and variation selectors stay fine.
        for fine in [
            "김밥천국",
            "Café",
            "👨\u{200D}🍳 Kitchen",
            "❤\u{FE0F} Bar",
            "نان",
        ] {
            assert!(one_line_name(fine, 255).is_ok(), "{fine:?}");
        }
    }

    #[test]
    fn lines_merge_in_product_order_and_name_every_bad_field() {
        let mut violations = crate::error::Violations::new();
        let lines = OrderLines::parse(&[(4, 2), (2, 4), (4, 3)], &mut violations).expect("valid");
        let pairs: Vec<(i64, i64)> = lines
            .lines()
            .iter()
            .map(|l| (l.product_id.get(), l.count))
            .collect();
        assert_eq!(pairs, vec![(2, 4), (4, 5)]);
        assert!(violations.into_result().is_ok());

        let mut violations = crate::error::Violations::new();
        assert!(
            OrderLines::parse(&[(0, 1), (1, 0), (1, MAX_LINE_COUNT + 1)], &mut violations)
                .is_none()
        );
        let err = violations.into_result().unwrap_err();
        assert!(err.message().contains("lines[0].product_id"));
        assert!(err.message().contains("lines[1].count"));
        assert!(err.message().contains("lines[2].count"));

        // The limit holds for a product's lines together, and huge counts never overflow
        // the sum.
        for raw in [
            [(1, MAX_LINE_COUNT), (1, 1)],
            [(1, i64::MAX), (1, i64::MAX)],
        ] {
            let mut violations = crate::error::Violations::new();
            assert!(OrderLines::parse(&raw, &mut violations).is_none());
            let err = violations.into_result().unwrap_err();
            assert!(err.message().contains("lines[1].count"), "{raw:?}");
        }

        // An overlong list is refused as such; its (bad) lines are not each reported.
        let mut violations = crate::error::Violations::new();
        let flood = vec![(0, 0); 100_000];
        assert!(OrderLines::parse(&flood, &mut violations).is_none());
        let err = violations.into_result().unwrap_err();
        let fields: Vec<&str> = err.violations().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["lines"]);
    }

    #[test]
    fn order_ids_are_bounded_visible_ascii() {
        assert!(OrderId::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "has space", "ünï", &"a".repeat(65)] {
            assert!(OrderId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
