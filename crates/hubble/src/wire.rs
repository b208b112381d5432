//! serde helpers for jsonpb's rules on scalars (protojson with proto field names, which is
//! what `hubble observe -o jsonpb` prints):
//!
//! - integers are read from a JSON number or a decimal string (protojson writes 64-bit integers
//!   as strings and reads both forms for every integer type);
//! - 64-bit integers are written as strings, 32-bit ones as numbers;
//! - `null` stands for an unset field.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Unexpected};
use serde::{Deserialize, Deserializer, Serializer};

/// Reads an integer field: a JSON number, a decimal string, or `null` (unset).
pub(crate) fn opt_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    d.deserialize_option(IntVisitor(PhantomData))
}

/// Writes a 64-bit integer as jsonpb does: a decimal string.
#[expect(
    clippy::ref_option,
    reason = "serde's serialize_with passes a reference to the field"
)]
pub(crate) fn opt_u64_str<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(n) => s.collect_str(n),
        None => s.serialize_none(),
    }
}

/// Reads a field whose `null` means its default (a string or a `bool`).
pub(crate) fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Whether a `bool` is at its zero value (jsonpb omits it then).
#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference to the field"
)]
pub(crate) fn is_false(v: &bool) -> bool {
    !*v
}

struct IntVisitor<T>(PhantomData<T>);

impl<T: TryFrom<i128>> IntVisitor<T> {
    fn fit<E: de::Error>(&self, v: i128, unexpected: Unexpected<'_>) -> Result<Option<T>, E> {
        T::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(unexpected, self))
    }
}

impl<'de, T: TryFrom<i128>> de::Visitor<'de> for IntVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an integer of {} (a number or a decimal string)",
            std::any::type_name::<T>()
        )
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.fit(i128::from(v), Unexpected::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.fit(i128::from(v), Unexpected::Signed(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // protojson accepts a number with a fraction or an exponent when its value is whole.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_precision_loss,
            reason = "checked: whole and within i64 before the cast"
        )]
        if v.fract() == 0.0 && v >= i64::MIN as f64 && v <= i64::MAX as f64 {
            return self.fit(v as i128, Unexpected::Float(v));
        }
        Err(E::invalid_value(Unexpected::Float(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match v.parse::<i128>() {
            Ok(n) => self.fit(n, Unexpected::Str(v)),
            Err(_) => Err(E::invalid_value(Unexpected::Str(v), &self)),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Ints {
        #[serde(deserialize_with = "super::opt_int")]
        small: Option<u32>,
        #[serde(deserialize_with = "super::opt_int")]
        signed: Option<i32>,
        #[serde(deserialize_with = "super::opt_int")]
        big: Option<u64>,
    }

    fn ints(json: &str) -> Result<Ints, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn integers_are_read_from_numbers_and_strings() {
        let want = Ints {
            small: Some(7),
            signed: Some(-3),
            big: Some(u64::MAX),
        };
        let from_numbers = ints(r#"{"small": 7, "signed": -3, "big": 18446744073709551615}"#);
        let from_strings = ints(r#"{"small": "7", "signed": "-3", "big": "18446744073709551615"}"#);
        assert_eq!(from_numbers.unwrap(), want);
        assert_eq!(from_strings.unwrap(), want);
        assert_eq!(
            ints(r#"{"small": 7.0, "big": 1e3}"#).unwrap().big,
            Some(1000)
        );
    }

    #[test]
    fn null_and_missing_integers_are_unset() {
        assert_eq!(
            ints(r#"{"small": null}"#).unwrap(),
            Ints::default(),
            "null is unset"
        );
        assert_eq!(ints("{}").unwrap(), Ints::default());
    }

    #[test]
    fn integers_out_of_range_or_not_integers_are_errors() {
        for bad in [
            r#"{"small": 4294967296}"#,
            r#"{"small": -1}"#,
            r#"{"signed": "2147483648"}"#,
            r#"{"big": "-1"}"#,
            r#"{"small": 1.5}"#,
            r#"{"small": "seven"}"#,
            r#"{"small": true}"#,
            r#"{"small": [1]}"#,
        ] {
            let err = ints(bad).unwrap_err().to_string();
            assert!(err.contains("an integer of"), "{bad}: {err}");
        }
    }
}
