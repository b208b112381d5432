//! jsonpb's rules (protojson with proto field names, which is what `hubble observe -o jsonpb`
//! prints), once, and [`message!`], which declares a message that follows them:
//!
//! - keys are the proto field names; reading also takes each in lowerCamelCase
//!   (`source_port` or `sourcePort`), as protojson does ([`CamelKeys`]);
//! - a field at its zero value is omitted: an empty string, `false`, an enum's first value,
//!   `None`; `null` reads as that zero value;
//! - integers are read from a JSON number or a decimal string (protojson writes 64-bit integers
//!   as strings and reads both forms for every integer type);
//! - 64-bit integers are written as strings, 32-bit ones as numbers.
//!
//! [`Field`] holds the rules on values, by type: a new field type gets them with an `impl`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Unexpected,
    Visitor,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::Time;

/// Declares proto messages: structs that serde reads and writes as jsonpb does, every field
/// through [`Field`], every key through [`CamelKeys`].
///
/// Each struct derives `Clone`, `Debug`, `Default`, `PartialEq` and `Eq` (more with its own
/// `#[derive]`), and keeps its attributes and its fields' (their docs, and
/// `#[serde(rename = "...")]` where the proto name is not the field's). Every field is `pub`.
/// Reading takes an absent field as unset and ignores unknown ones. `Option<Message>` is a
/// [`Field`] too, so that a message can hold another.
macro_rules! message {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident: $ty:ty, )*
        }
    )+) => {$(
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
        pub struct $name {
            $(
                $(#[$field_meta])*
                #[serde(
                    skip_serializing_if = "crate::wire::Field::is_unset",
                    serialize_with = "crate::wire::Field::write"
                )]
                pub $field: $ty,
            )*
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // serde's reader of the same fields, under the same name (its errors say
                // it), given the keys through `CamelKeys`.
                #[derive(Default, serde::Deserialize)]
                #[serde(default)]
                #[allow(
                    clippy::struct_field_names,
                    reason = "the message's field names, which the proto chose"
                )]
                struct $name {
                    $(
                        $(#[$field_meta])*
                        #[serde(deserialize_with = "crate::wire::Field::read")]
                        $field: $ty,
                    )*
                }
                let $name { $($field),* } =
                    <$name as serde::Deserialize>::deserialize(crate::wire::CamelKeys(d))?;
                Ok(Self { $($field),* })
            }
        }

        impl crate::wire::Field for Option<$name> {}
    )+};
}
pub(crate) use message;

/// The type of a message field, as jsonpb writes and reads it. The provided methods are the
/// rule for a value written as serde writes it: omitted at its [`Default`] (the zero value),
/// `null` read as that. Integers override them.
pub(crate) trait Field: Serialize + DeserializeOwned + Default + PartialEq {
    /// Whether jsonpb omits the field: it is at its zero value.
    fn is_unset(&self) -> bool {
        *self == Self::default()
    }

    /// Writes the field's value.
    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.serialize(s)
    }

    /// Reads the field's value, `null` as the zero value.
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<Self>::deserialize(d)?.unwrap_or_default())
    }
}

impl Field for String {}
impl Field for bool {}
impl Field for Option<bool> {}
impl Field for Option<Time> {}
impl Field for Option<serde_json::Value> {}
impl<T: Serialize + DeserializeOwned + PartialEq> Field for Option<Vec<T>> {}

/// A 32-bit integer: a JSON number, read from a number or a decimal string.
impl Field for Option<u32> {
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_int(d)
    }
}

/// A 32-bit integer: a JSON number, read from a number or a decimal string.
impl Field for Option<i32> {
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_int(d)
    }
}

/// A 64-bit integer: a decimal string, read from a string or a number.
impl Field for Option<u64> {
    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Some(n) => s.collect_str(n),
            None => s.serialize_none(),
        }
    }

    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_int(d)
    }
}

/// Reads an integer field: a JSON number, a decimal string, or `null` (unset).
fn opt_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    d.deserialize_option(IntVisitor(PhantomData))
}

/// Reads a message's keys in either of protojson's forms: a key that is not the name of a field
/// but is one in lowerCamelCase (`sourcePort`) reads as that name (`source_port`); any other
/// key reads as it is. Wraps the deserializer given to the reader [`message!`] derives, which
/// asks it for a struct and nothing else.
pub(crate) struct CamelKeys<D>(pub(crate) D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for CamelKeys<D> {
    type Error = D::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = Keys {
            inner: visitor,
            fields,
        };
        self.0.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The struct visitor and the map of [`CamelKeys`]: they pass everything on, each key through
/// [`Key`].
struct Keys<T> {
    inner: T,
    fields: &'static [&'static str],
}

/// One key of [`CamelKeys`], read as its field's name.
struct Key<K> {
    inner: K,
    fields: &'static [&'static str],
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Keys<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Keys {
            inner: map,
            fields: self.fields,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(seq)
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Keys<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(Key {
            inner: seed,
            fields: self.fields,
        })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for Key<K> {
    type Value = K::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K::Value, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de, K: DeserializeSeed<'de>> Visitor<'de> for Key<K> {
    type Value = K::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<K::Value, E> {
        let name = if self.fields.contains(&key) {
            key
        } else {
            self.fields
                .iter()
                .find(|name| is_lower_camel_of(key, name))
                .map_or(key, |name| *name)
        };
        self.inner.deserialize(name.into_deserializer())
    }
}

/// Whether `key` is `name` in lowerCamelCase: each `_` dropped, the letter after it upper case
/// (`source_port` -> `sourcePort`).
fn is_lower_camel_of(key: &str, name: &str) -> bool {
    let mut key = key.chars();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
            continue;
        }
        let want = if upper { c.to_ascii_uppercase() } else { c };
        upper = false;
        if key.next() != Some(want) {
            return false;
        }
    }
    key.next().is_none()
}

struct IntVisitor<T>(PhantomData<T>);

impl<T: TryFrom<i128>> IntVisitor<T> {
    fn fit<E: de::Error>(&self, v: i128, unexpected: Unexpected<'_>) -> Result<Option<T>, E> {
        T::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(unexpected, self))
    }
}

impl<'de, T: TryFrom<i128>> Visitor<'de> for IntVisitor<T> {
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
    fn a_key_reads_as_its_proto_name_or_that_name_in_lower_camel_case() {
        use crate::layers::Tcp;
        let tcp = |json: &str| serde_json::from_str::<Tcp>(json);
        let read = tcp(r#"{"sourcePort": 1, "destination_port": 2}"#).unwrap();
        assert_eq!(
            (read.source_port, read.destination_port),
            (Some(1), Some(2))
        );
        let other_spellings = r#"{"SourcePort": 1, "source_Port": 2, "sourceport": 3}"#;
        assert_eq!(tcp(other_spellings).unwrap(), Tcp::default(), "ignored");
        let both = tcp(r#"{"source_port": 1, "sourcePort": 2}"#).unwrap_err();
        assert!(
            both.to_string().contains("duplicate field `source_port`"),
            "{both}"
        );
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
