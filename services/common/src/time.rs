//! Instants on the wire: protobuf `Timestamp`s to and from UTC `DateTime`s.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

/// The protobuf timestamp of an instant.
pub fn to_timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The instant of a protobuf timestamp; `None` when it is out of range or malformed.
pub fn from_timestamp(ts: &Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(ts.nanos).ok()?;
    DateTime::from_timestamp(ts.seconds, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_including_before_epoch() {
        for millis in [0, 1, 999, 1_733_011_200_123, -1, -1001] {
            let at = DateTime::from_timestamp_millis(millis).expect("in range");
            assert_eq!(from_timestamp(&to_timestamp(at)), Some(at));
        }
        let bad = Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(from_timestamp(&bad), None);
    }
}
