//! Pages of list RPCs, the same for every service: `page.page_size` rows at most — 0
//! means [`DEFAULT_PAGE_SIZE`], more than [`MAX_PAGE_SIZE`] is INVALID_ARGUMENT, never
//! silently less — and an opaque `page_token` naming where the previous page ended (a
//! keyset cursor). A token is URL-safe base64 of `<list>:<cursor>`: it only goes back to
//! the list that made it, and anything else in `page.page_token` is INVALID_ARGUMENT
//! naming that field. Each list says how its cursor reads as text.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use pos_proto::v1::PageRequest;

use crate::error::Violations;

/// Rows of a page when the request names no size.
pub const DEFAULT_PAGE_SIZE: i64 = 100;
/// The most rows one page may hold.
pub const MAX_PAGE_SIZE: i64 = 500;

/// A parsed page request of the list `list`: where to start (after `after`, or at the
/// beginning) and how many rows the caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging<C> {
    list: &'static str,
    pub after: Option<C>,
    pub size: i64,
}

impl<C> Paging<C> {
    /// Reads `page` (absent: the first page of the default size), adding a violation per
    /// bad field (`page.page_size`, `page.page_token`). `cursor` reads the cursor's text;
    /// `None` refuses it.
    pub fn parse(
        list: &'static str,
        page: Option<&PageRequest>,
        cursor: impl Fn(&str) -> Option<C>,
        violations: &mut Violations,
    ) -> Option<Self> {
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
            let after = decode(list, token).and_then(|text| cursor(&text));
            if after.is_none() {
                violations.add(
                    "page.page_token",
                    "not a token this list gave in a previous page",
                );
            }
            after.map(Some)
        };
        Some(Self {
            list,
            after: after?,
            size: size?,
        })
    }

    /// How many rows to ask storage for: one more than the page, to learn whether another
    /// page follows without a second query.
    pub fn limit(&self) -> i64 {
        self.size + 1
    }

    /// Cuts storage's rows to the page, and the token of the next page (empty after the
    /// last one). `cursor` writes a row's cursor as text.
    pub fn finish<T>(&self, mut rows: Vec<T>, cursor: impl Fn(&T) -> String) -> (Vec<T>, String) {
        let more = rows.len() as i64 > self.size;
        rows.truncate(usize::try_from(self.size).unwrap_or(usize::MAX));
        let next = match rows.last() {
            Some(last) if more => token(self.list, &cursor(last)),
            _ => String::new(),
        };
        (rows, next)
    }
}

/// The token of `list` whose cursor reads `cursor`.
pub fn token(list: &str, cursor: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{list}:{cursor}"))
}

/// The cursor text of a token `list` made.
fn decode(list: &str, token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (name, cursor) = text.split_once(':')?;
    (name == list).then(|| cursor.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(size: i32, token: &str) -> Result<Paging<i64>, Vec<String>> {
        let mut violations = Violations::new();
        let request = PageRequest {
            page_size: size,
            page_token: token.into(),
        };
        let id = |text: &str| text.parse::<i64>().ok();
        let paging = Paging::parse("rows", Some(&request), id, &mut violations);
        violations
            .finish(|| paging)
            .map_err(|err| err.violations().iter().map(|v| v.field.clone()).collect())
    }

    #[test]
    fn sizes_default_and_are_bounded() {
        assert_eq!(parse(0, "").map(|p| p.size), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(parse(1, "").map(|p| p.size), Ok(1));
        assert_eq!(parse(500, "").map(|p| p.size), Ok(MAX_PAGE_SIZE));
        for size in [-1, 501, i32::MAX, i32::MIN] {
            assert_eq!(parse(size, ""), Err(vec!["page.page_size".to_string()]));
        }
    }

    #[test]
    fn tokens_round_trip_to_their_list_only() {
        let first = parse(2, "").expect("first");
        assert_eq!(first.limit(), 3);
        let (rows, next) = first.finish(vec![10, 20, 30], |id: &i64| id.to_string());
        assert_eq!(rows, [10, 20]);
        assert_eq!(parse(2, &next).map(|p| p.after), Ok(Some(20)));
        let (_, last) = first.finish(vec![10], |id: &i64| id.to_string());
        assert_eq!(last, "");
        for garbage in ["x", "!!!", &token("other", "20"), &token("rows", "x")] {
            assert_eq!(
                parse(0, garbage),
                Err(vec!["page.page_token".to_string()]),
                "{garbage}"
            );
        }
    }
}
