//! The card fee of a payment: what the card company keeps, rounded down to the won.

use crate::model::CardCompany;

/// `floor(amount × permille / 1000)` in integer arithmetic (an i128 product, so no
/// amount overflows it). Amounts are never negative; a negative one pays no fee.
pub fn card_fee(amount: i64, company: CardCompany) -> i64 {
    if amount <= 0 {
        return 0;
    }
    let fee = i128::from(amount) * i128::from(company.fee_permille()) / 1000;
    // At most 8‰ of an i64: it always fits.
    i64::try_from(fee).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_round_down_to_the_won() {
        assert_eq!(card_fee(3_900, CardCompany::H), 23);
        assert_eq!(card_fee(3_900, CardCompany::K), 15);
        assert_eq!(card_fee(3_900, CardCompany::S), 31);
        assert_eq!(card_fee(1_000, CardCompany::S), 8);
        assert_eq!(card_fee(124, CardCompany::S), 0);
        assert_eq!(card_fee(125, CardCompany::S), 1);
        assert_eq!(card_fee(0, CardCompany::K), 0);
        assert_eq!(card_fee(i64::MAX, CardCompany::S), 73_786_976_294_838_206);
    }

    /// splitmix64: a small deterministic generator, so a failure reproduces.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn fees_match_the_exact_fraction_for_many_amounts() {
        let mut state = 42;
        for _ in 0..100_000 {
            let amount = (next(&mut state) % 1_000_000_000_001) as i64;
            for company in CardCompany::ALL {
                let fee = card_fee(amount, company);
                // floor(a·p/1000) is the one f with 1000·f <= a·p < 1000·(f + 1).
                let exact = i128::from(amount) * i128::from(company.fee_permille());
                let fee = i128::from(fee);
                assert!(
                    1000 * fee <= exact && exact < 1000 * (fee + 1),
                    "{amount} by {company:?}"
                );
            }
        }
    }
}
