//! Identity values, parsed once (parse, don't validate), and the owner records the user
//! service keeps.

use chrono::{DateTime, Utc};
use pos_common::domain::{Invalid, StoreId, StoreRequest, UserId};

/// A lower-cased e-mail address: the identity of an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(email))
        } else {
            Err(Invalid::new("must be an e-mail address"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's name: 1-50 characters (the reference allowed 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > 50 || name.chars().any(char::is_control) {
            return Err(Invalid::new("must be 1-50 characters"));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Korean phone number as digits only: `+82 10-1234-5678` and `010-1234-5678` both
/// become `01012345678`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        let international = trimmed.starts_with('+');
        if trimmed
            .chars()
            .any(|c| !(c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')')))
        {
            return Err(Invalid::new(
                "must contain only digits, spaces, dashes and a leading +",
            ));
        }
        let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
        let national = match (international, digits.strip_prefix("82")) {
            (true, Some(rest)) => format!("0{}", rest.trim_start_matches('0')),
            (true, None) => return Err(Invalid::new("only Korean (+82) numbers are supported")),
            (false, _) => digits,
        };
        if !(10..=11).contains(&national.len()) || !national.starts_with('0') {
            return Err(Invalid::new(
                "must be a Korean phone number such as 010-1234-5678",
            ));
        }
        Ok(Self(national))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who an identity provider says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderProfile {
    pub provider: String,
    pub subject: String,
    pub email: Email,
    pub name: UserName,
    /// Absent when the owner did not share one (Kakao's phone scope needs consent).
    pub phone: Option<Phone>,
}

impl ProviderProfile {
    /// The normalised phone number, or "" when the provider shared none.
    pub fn phone_digits(&self) -> &str {
        self.phone.as_ref().map_or("", Phone::as_str)
    }
}

/// An owner. Accounts are found by provider identity (provider and subject): an e-mail
/// address can change at the provider, the subject cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub profile: ProviderProfile,
    /// Absent until signup has created the owner's store.
    pub store_id: Option<StoreId>,
    /// The store an unfinished signup asked for, kept until the store exists, so a
    /// retried signup or the next login completes it.
    pub pending_store: Option<StoreRequest>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_normalised() {
        for raw in [
            "+82 10-1234-5678",
            "010-1234-5678",
            "01012345678",
            "+82 010 1234 5678",
        ] {
            assert_eq!(
                Phone::parse(raw).map(|p| p.0),
                Ok("01012345678".to_string()),
                "{raw}"
            );
        }
        for raw in ["", "12345", "+1 202 555 0100", "010-1234-5678x", "phone"] {
            assert!(Phone::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn emails_and_names() {
        assert_eq!(
            Email::parse(" Owner@Example.COM ").map(|e| e.0),
            Ok("owner@example.com".into())
        );
        for raw in ["", "no-at", "a@b", "a b@c.d", "@c.d"] {
            assert!(Email::parse(raw).is_err(), "{raw}");
        }
        assert!(UserName::parse(&"김".repeat(50)).is_ok());
        assert!(UserName::parse(&"김".repeat(51)).is_err());
        assert!(UserName::parse(" ").is_err());
    }
}
