//! [`Time`]: a `google.protobuf.Timestamp` as jsonpb writes it, an RFC 3339 string
//! (`2026-11-29T16:00:00.000000000Z`).

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::tz::Offset;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time as Hubble's JSON writes it: RFC 3339, UTC, with fractional seconds.
///
/// It keeps the text it was read from, so that writing it gives back the same characters
/// (protojson writes 0, 3, 6 or 9 fractional digits; the simulator always writes 9), and the
/// instant it names, for comparisons and for the compact printer. Reading checks the text:
/// anything [`jiff::Timestamp`] does not parse (RFC 3339 with an offset) is an error.
///
/// Ordered by instant first, then by text.
#[doc(alias = "Timestamp")]
#[doc(alias = "google.protobuf.Timestamp")]
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Time {
    at: Timestamp,
    text: String,
}

/// A time that is not RFC 3339.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an RFC 3339 time: {reason}")]
pub struct TimeError {
    /// The text read.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Time {
    /// Reads an RFC 3339 time, keeping its text as it is.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        text.parse::<Timestamp>()
            .map(|at| Self {
                at,
                text: text.to_owned(),
            })
            .map_err(|e| TimeError {
                text: text.to_owned(),
                reason: e.to_string(),
            })
    }

    /// The time at `at`, written in UTC with nine fractional digits
    /// (`2026-11-29T16:00:00.000000000Z`), as the simulator writes every time.
    pub fn from_timestamp(at: Timestamp) -> Self {
        Self {
            at,
            text: format!("{at:.9}"),
        }
    }

    /// The instant.
    pub fn timestamp(&self) -> Timestamp {
        self.at
    }

    /// The text, as read or written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The time as `hubble observe` prints it (Go's `StampMilli`, in UTC, day zero-padded as
    /// the simulator prints it): `Nov 29 16:00:00.000`.
    pub fn stamp_milli(&self) -> impl fmt::Display + '_ {
        StampMilli(self.at)
    }
}

struct StampMilli(Timestamp);

impl fmt::Display for StampMilli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let t = Offset::UTC.to_datetime(self.0);
        let month = MONTHS[usize::try_from(t.month() - 1).unwrap_or(0) % 12];
        write!(
            f,
            "{month} {:02} {:02}:{:02}:{:02}.{:03}",
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.subsec_nanosecond() / 1_000_000
        )
    }
}

impl From<Timestamp> for Time {
    fn from(at: Timestamp) -> Self {
        Self::from_timestamp(at)
    }
}

impl FromStr for Time {
    type Err = TimeError;

    fn from_str(s: &str) -> Result<Self, TimeError> {
        Self::parse(s)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.parse::<Timestamp>() {
            Ok(at) => Ok(Self { at, text }),
            Err(e) => Err(serde::de::Error::custom(TimeError {
                reason: e.to_string(),
                text,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Time;

    #[test]
    fn the_text_read_is_the_text_written() {
        for text in [
            "2026-11-29T16:00:00Z",
            "2026-11-29T16:00:00.123Z",
            "2026-11-29T16:00:00.123456Z",
            "2026-11-29T16:00:00.000000000Z",
            "2026-11-29T18:00:00.5+02:00",
        ] {
            let t = Time::parse(text).unwrap();
            assert_eq!(t.as_str(), text);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<Time>(&json).unwrap(), t);
        }
    }

    #[test]
    fn a_time_from_an_instant_has_nine_digits_in_utc() {
        let at = "2026-11-29T18:00:00.5+02:00".parse().unwrap();
        assert_eq!(
            Time::from_timestamp(at).as_str(),
            "2026-11-29T16:00:00.500000000Z"
        );
    }

    #[test]
    fn stamp_milli_is_utc_with_milliseconds() {
        let t = Time::parse("2026-11-29T18:00:01.999999999+02:00").unwrap();
        assert_eq!(t.stamp_milli().to_string(), "Nov 29 16:00:01.999");
        let t = Time::parse("2027-01-05T00:00:00Z").unwrap();
        assert_eq!(t.stamp_milli().to_string(), "Jan 05 00:00:00.000");
    }

    #[test]
    fn not_rfc3339_is_an_error_naming_the_text() {
        for bad in [
            "",
            "yesterday",
            "2026-11-29T16:00:00",
            "2026-02-30T00:00:00Z",
            "2026-11-29T16:00:00.1234567891Z",
        ] {
            let err = Time::parse(bad).unwrap_err();
            assert_eq!(err.text, bad);
            let json = serde_json::to_string(bad).unwrap();
            let err = serde_json::from_str::<Time>(&json).unwrap_err().to_string();
            assert!(err.contains("is not an RFC 3339 time"), "{err}");
        }
        assert!(serde_json::from_str::<Time>("17").is_err());
    }

    #[test]
    fn times_order_by_instant() {
        let a = Time::parse("2026-11-29T17:00:00+02:00").unwrap();
        let b = Time::parse("2026-11-29T16:00:00Z").unwrap();
        assert!(a < b);
    }
}
