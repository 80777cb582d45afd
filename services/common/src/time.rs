//! Instants are stored as UTC Unix milliseconds (`BIGINT`) so both databases and the
//! `Any` driver handle them alike; these helpers convert at the edges.

use prost_types::Timestamp;

/// Now, in UTC Unix milliseconds.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A protobuf timestamp for stored UTC Unix milliseconds.
pub fn timestamp_from_millis(millis: i64) -> Timestamp {
    Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Stored UTC Unix milliseconds for a protobuf timestamp (sub-millisecond part dropped).
pub fn millis_from_timestamp(ts: &Timestamp) -> Option<i64> {
    ts.seconds
        .checked_mul(1000)?
        .checked_add(i64::from(ts.nanos) / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip_including_before_epoch() {
        for millis in [0, 1, 999, 1_733_011_200_123, -1, -1001] {
            assert_eq!(
                millis_from_timestamp(&timestamp_from_millis(millis)),
                Some(millis)
            );
        }
    }
}
