//! The scenario's calendar: t=0 is 2026-11-29 16:00:00 UTC, and times are written as Hubble
//! writes them. The calendar arithmetic is jiff's.

use fqdnpath_cache::Timestamp;
use fqdnpath_hubble::Time;
use jiff::fmt::strtime;

/// t=0 of every scenario, 2026-11-29T16:00:00Z, in seconds since the Unix epoch.
const START: i64 = 1_795_968_000;

/// The calendar time of `t`. Every [`Timestamp`] (at most 585 years after the start) is in
/// jiff's range.
fn civil(t: Timestamp) -> jiff::Timestamp {
    let nanos = t.as_nanos();
    let seconds = i64::try_from(nanos / 1_000_000_000).unwrap_or(i64::MAX);
    let subsecond = i32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    jiff::Timestamp::new(START.saturating_add(seconds), subsecond).unwrap_or(jiff::Timestamp::MAX)
}

/// The time as `hubble observe` prints it: `Nov 29 16:00:00.000` (milliseconds, truncated).
pub(crate) fn text(t: Timestamp) -> String {
    // The pattern is valid and applies to every timestamp: formatting cannot fail.
    strtime::format("%b %d %H:%M:%S%.3f", civil(t)).unwrap_or_default()
}

/// The time of a flow at `t`, which Hubble's JSON writes in RFC 3339 with nanoseconds
/// (`2026-11-29T16:00:00.000000000Z`) and `hubble observe` as [`text`] does.
pub(crate) fn time(t: Timestamp) -> Time {
    Time::from_timestamp(civil(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    fn at(seconds: u64, nanos: u64) -> Timestamp {
        Timestamp::from_nanos(seconds * 1_000_000_000 + nanos)
    }

    /// The time of a flow as Hubble's JSON writes it; its compact form is [`text`]'s.
    fn rfc3339(t: Timestamp) -> String {
        let time = time(t);
        assert_eq!(time.stamp_milli().to_string(), text(t));
        time.as_str().to_owned()
    }

    #[test]
    fn the_start_is_the_last_sunday_of_november_2026_at_four_pm() {
        assert_eq!(text(Timestamp::ZERO), "Nov 29 16:00:00.000");
        assert_eq!(rfc3339(Timestamp::ZERO), "2026-11-29T16:00:00.000000000Z");
    }

    #[test]
    fn text_truncates_to_milliseconds_and_json_keeps_nanoseconds() {
        let t = at(61, 123_987_654);
        assert_eq!(text(t), "Nov 29 16:01:01.123");
        assert_eq!(rfc3339(t), "2026-11-29T16:01:01.123987654Z");
        let t = at(0, 999_999_999);
        assert_eq!(text(t), "Nov 29 16:00:00.999");
        assert_eq!(rfc3339(t), "2026-11-29T16:00:00.999999999Z");
        assert_eq!(rfc3339(at(0, 1)), "2026-11-29T16:00:00.000000001Z");
    }

    #[test]
    fn days_months_and_the_year_roll_over() {
        // Two days: into December.
        assert_eq!(text(at(2 * DAY, 0)), "Dec 01 16:00:00.000");
        // The last instant of 2026 and the first of 2027.
        let new_year = 32 * DAY + 8 * 3600;
        assert_eq!(
            rfc3339(at(new_year - 1, 999_999_999)),
            "2026-12-31T23:59:59.999999999Z"
        );
        assert_eq!(text(at(new_year - 1, 999_999_999)), "Dec 31 23:59:59.999");
        assert_eq!(rfc3339(at(new_year, 0)), "2027-01-01T00:00:00.000000000Z");
        assert_eq!(text(at(new_year, 0)), "Jan 01 00:00:00.000");
    }

    #[test]
    fn leap_years_have_a_february_29th() {
        // 2027 is not a leap year: February 28th is followed by March 1st.
        let jan_1_2027 = 32 * DAY + 8 * 3600;
        let mar_1_2027 = jan_1_2027 + (31 + 28) * DAY;
        assert_eq!(rfc3339(at(mar_1_2027, 0)), "2027-03-01T00:00:00.000000000Z");
        // 2028 is: 365 days after March 1st 2027 is February 29th 2028.
        let feb_29_2028 = mar_1_2027 + 365 * DAY;
        assert_eq!(
            rfc3339(at(feb_29_2028, 0)),
            "2028-02-29T00:00:00.000000000Z"
        );
        assert_eq!(
            text(at(feb_29_2028 + 3723, 4_000_000)),
            "Feb 29 01:02:03.004"
        );
        assert_eq!(
            rfc3339(at(feb_29_2028 + DAY, 0)),
            "2028-03-01T00:00:00.000000000Z"
        );
    }

    #[test]
    fn the_last_timestamp_is_still_a_date() {
        assert_eq!(rfc3339(Timestamp::MAX), "2611-06-20T15:34:33.709551615Z");
        assert_eq!(text(Timestamp::MAX), "Jun 20 15:34:33.709");
    }
}
