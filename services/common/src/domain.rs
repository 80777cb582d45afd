//! Domain values shared by more than one service (the store a signup asks for is
//! validated by the user service before the store service creates it), parsed once
//! (parse, don't validate). Parse errors are the reasons that become field violations.

use pos_proto::v1::PosGrade;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreName(String);

impl StoreName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > 20 {
            return Err("must be 1-20 characters".into());
        }
        if name.chars().any(|c| c == '\n' || c == '\r') {
            return Err("must not contain line breaks".into());
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grade {
    Bronze,
    Silver,
    Gold,
}

impl Grade {
    pub fn parse(raw: i32) -> Result<Self, String> {
        match PosGrade::try_from(raw) {
            Ok(PosGrade::Bronze) => Ok(Self::Bronze),
            Ok(PosGrade::Silver) => Ok(Self::Silver),
            Ok(PosGrade::Gold) => Ok(Self::Gold),
            _ => Err("must be BRONZE, SILVER or GOLD".into()),
        }
    }

    /// How many ordering tablets a store of this grade gets at signup.
    pub fn device_count(self) -> i64 {
        match self {
            Self::Bronze => 30,
            Self::Silver => 50,
            Self::Gold => 100,
        }
    }

    pub fn as_db(self) -> &'static str {
        match self {
            Self::Bronze => "BRONZE",
            Self::Silver => "SILVER",
            Self::Gold => "GOLD",
        }
    }

    pub fn proto_from_db(stored: &str) -> PosGrade {
        match stored {
            "BRONZE" => PosGrade::Bronze,
            "SILVER" => PosGrade::Silver,
            "GOLD" => PosGrade::Gold,
            _ => PosGrade::Unspecified,
        }
    }
}

/// The day of month a store's monthly settlement closes: 1, 5, 10, 15, 20 or 25.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlementDay(i32);

impl SettlementDay {
    pub const ALLOWED: [i32; 6] = [1, 5, 10, 15, 20, 25];

    pub fn parse(raw: i32) -> Result<Self, String> {
        if Self::ALLOWED.contains(&raw) {
            Ok(Self(raw))
        } else {
            Err("must be one of 1, 5, 10, 15, 20, 25".into())
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
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
        assert_eq!(
            Grade::parse(PosGrade::Gold as i32).map(Grade::device_count),
            Ok(100)
        );
        assert!(Grade::parse(0).is_err());
        assert!(SettlementDay::parse(25).is_ok());
        assert!(SettlementDay::parse(2).is_err());
    }
}
