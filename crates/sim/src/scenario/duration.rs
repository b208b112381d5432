//! Durations as a scenario writes them: Go syntax (`100ms`, `1m30s`, `0s`), or a plain number
//! of seconds.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration as written in a scenario: Go syntax (`100ms`, `1m30s`, `0s`), or a plain number
/// of seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

/// Parses a Go-style duration (`300ms`, `1.5s`, `2h45m`); `None` if malformed.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    (total.is_finite() && (0.0..1e12).contains(&total)).then(|| Duration::from_secs_f64(total))
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let parsed = match &value {
            serde_json::Value::String(s) => parse_duration(s),
            serde_json::Value::Number(n) => n
                .as_f64()
                .filter(|f| *f >= 0.0 && *f < 1e12)
                .map(Duration::from_secs_f64),
            _ => None,
        };
        parsed.map(Dur).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid duration {value}: write e.g. 100ms, 30s, 1m30s"
            ))
        })
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
