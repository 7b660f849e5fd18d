//! A strict deserializer over the `config` crate's merged value tree: settings are never
//! coerced. Text stays exactly the text given; an integer setting takes a whole number in range
//! and nothing else; a number setting takes a finite number; a list given as one environment
//! variable is split at commas here, because only the target type knows it is a list.
//!
//! Written by hand because `config`'s own deserializer coerces: it rounds `19001.6` to a port,
//! reads `false` or `-0.4` as 0, saturates `1e30`, and (with `try_parsing`) turns `007` into 7
//! before a text setting sees it. No library offers a strict one for its tree; serde's value
//! deserializers do the plumbing, this file only decides what each value may become.

use std::fmt;

use config::{Value, ValueKind};
use serde::de::value::{MapDeserializer, SeqDeserializer, StringDeserializer};
use serde::de::{self, IntoDeserializer, Visitor};

/// Why a value does not fit its setting; the caller adds the key and where the value came from.
#[derive(Debug)]
pub struct Mismatch(pub String);

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Mismatch {}

impl de::Error for Mismatch {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// One value of the tree, to be read as whatever its setting's type asks for.
pub struct Strict(pub Value);

impl<'de> IntoDeserializer<'de, Mismatch> for Strict {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// How a value reads in an error message: `the number 19001.6`, `the text "abc"`.
fn describe(kind: &ValueKind) -> String {
    match kind {
        ValueKind::Nil => "nothing".into(),
        ValueKind::Boolean(b) => format!("the boolean {b}"),
        ValueKind::I64(n) => format!("the number {n}"),
        ValueKind::I128(n) => format!("the number {n}"),
        ValueKind::U64(n) => format!("the number {n}"),
        ValueKind::U128(n) => format!("the number {n}"),
        ValueKind::Float(x) => format!("the number {x}"),
        ValueKind::String(s) => format!("the text {s:?}"),
        ValueKind::Table(_) => "a table".into(),
        ValueKind::Array(_) => "a list".into(),
    }
}

impl Strict {
    fn mismatch(&self, expected: &str) -> Mismatch {
        Mismatch(format!(
            "must be {expected}, not {}",
            describe(&self.0.kind)
        ))
    }

    /// A whole number: a TOML integer, or text of digits (an environment variable).
    fn integer(&self, expected: &str) -> Result<i128, Mismatch> {
        match &self.0.kind {
            ValueKind::I64(n) => Ok(i128::from(*n)),
            ValueKind::U64(n) => Ok(i128::from(*n)),
            ValueKind::I128(n) => Ok(*n),
            ValueKind::U128(n) => i128::try_from(*n).map_err(|_| self.mismatch(expected)),
            ValueKind::String(s) if is_integer_text(s) => {
                s.parse().map_err(|_| self.mismatch(expected))
            }
            _ => Err(self.mismatch(expected)),
        }
    }

    fn number(&self) -> Result<f64, Mismatch> {
        let x = match &self.0.kind {
            ValueKind::I64(n) => *n as f64,
            ValueKind::U64(n) => *n as f64,
            ValueKind::I128(n) => *n as f64,
            ValueKind::U128(n) => *n as f64,
            ValueKind::Float(x) => *x,
            ValueKind::String(s) => s.trim().parse().map_err(|_| self.mismatch("a number"))?,
            _ => return Err(self.mismatch("a number")),
        };
        if x.is_finite() {
            Ok(x)
        } else {
            Err(self.mismatch("a finite number"))
        }
    }
}

/// Digits with an optional sign, as an integer is written; nothing else (no `1e3`, no `7.0`).
fn is_integer_text(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

macro_rules! integers {
    ($($method:ident $visit:ident $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mismatch> {
            let expected = format!(
                "a whole number from {} to {}",
                <$ty>::MIN,
                <$ty>::MAX
            );
            let n = self.integer(&expected)?;
            let n = <$ty>::try_from(n).map_err(|_| self.mismatch(&expected))?;
            visitor.$visit(n)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Strict {
    type Error = Mismatch;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mismatch> {
        match self.0.kind {
            ValueKind::Nil => visitor.visit_unit(),
            ValueKind::Boolean(b) => visitor.visit_bool(b),
            ValueKind::I64(n) => visitor.visit_i64(n),
            ValueKind::I128(n) => visitor.visit_i128(n),
            ValueKind::U64(n) => visitor.visit_u64(n),
            ValueKind::U128(n) => visitor.visit_u128(n),
            ValueKind::Float(x) => visitor.visit_f64(x),
            ValueKind::String(s) => visitor.visit_string(s),
            ValueKind::Table(table) => {
                let mut entries: Vec<_> = table.into_iter().collect();
                // A fixed order, so the first error reported is the same on every run.
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let entries = entries.into_iter().map(|(k, v)| (k, Strict(v)));
                visitor.visit_map(MapDeserializer::new(entries))
            }
            ValueKind::Array(items) => {
                visitor.visit_seq(SeqDeserializer::new(items.into_iter().map(Strict)))
            }
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mismatch> {
        match &self.0.kind {
            ValueKind::Boolean(b) => visitor.visit_bool(*b),
            ValueKind::String(s) if s == "true" => visitor.visit_bool(true),
            ValueKind::String(s) if s == "false" => visitor.visit_bool(false),
            _ => Err(self.mismatch("true or false")),
        }
    }

    integers! {
        deserialize_i8 visit_i8 i8,
        deserialize_i16 visit_i16 i16,
        deserialize_i32 visit_i32 i32,
        deserialize_i64 visit_i64 i64,
        deserialize_u8 visit_u8 u8,
        deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32,
        deserialize_u64 visit_u64 u64,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mismatch> {
        visitor.visit_f64(self.number()?)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mismatch> {
        visitor.visit_f64(self.number()?)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mismatch> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mismatch> {
        match self.0.kind {
            ValueKind::String(s) => visitor.visit_string(s),
            _ => Err(self.mismatch("text (in quotes)")),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mismatch> {
        match self.0.kind {
            ValueKind::Nil => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mismatch> {
        let origin = self.0.origin().map(str::to_owned);
        match self.0.kind {
            // A list set by one environment variable: entries separated by commas.
            ValueKind::String(s) => {
                let entries: Vec<Strict> = s
                    .split(',')
                    .map(str::trim)
                    .filter(|entry| !entry.is_empty())
                    .map(|entry| Strict(Value::new(origin.as_ref(), entry)))
                    .collect();
                visitor.visit_seq(SeqDeserializer::new(entries.into_iter()))
            }
            ValueKind::Array(_) => self.deserialize_any(visitor),
            _ => Err(self.mismatch("a list")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Mismatch> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Mismatch> {
        match self.0.kind {
            ValueKind::Table(_) => self.deserialize_any(visitor),
            _ => Err(self.mismatch("a table")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Mismatch> {
        match self.0.kind {
            ValueKind::String(s) => visitor.visit_enum(StringDeserializer::<Mismatch>::new(s)),
            _ => Err(self.mismatch(&format!("one of {}", variants.join(", ")))),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Mismatch> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct tuple tuple_struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    fn read<T: for<'de> Deserialize<'de>>(kind: impl Into<ValueKind>) -> Result<T, String> {
        T::deserialize(Strict(Value::new(None, kind))).map_err(|e| e.0)
    }

    /// Integers take whole numbers in range only, from TOML or from text.
    #[test]
    fn integers_are_never_coerced() {
        assert_eq!(read::<u16>(19001i64), Ok(19001));
        assert_eq!(read::<u16>("19001"), Ok(19001));
        assert_eq!(read::<u64>("007"), Ok(7));
        for bad in ["19001.6", "-1", "false", "1e3", "", " 5", "0x10"] {
            assert!(read::<u16>(bad).is_err(), "{bad:?}");
        }
        assert!(read::<u16>(19001.6).is_err());
        assert!(read::<usize>(-0.4).is_err());
        assert!(read::<u64>(1e30).is_err());
        assert!(read::<u32>(true).is_err());
        assert!(read::<u16>(70000i64).is_err());
        let err = read::<u16>(-1i64).unwrap_err();
        assert_eq!(
            err,
            "must be a whole number from 0 to 65535, not the number -1"
        );
    }

    /// Text stays exactly the text given, digits and leading zeros included.
    #[test]
    fn text_stays_text() {
        assert_eq!(read::<String>("007"), Ok("007".to_owned()));
        let digits = "12345678901234567890123456789012345678";
        assert_eq!(read::<String>(digits), Ok(digits.to_owned()));
        assert!(read::<String>(7i64).is_err());
    }

    /// Numbers must be finite; booleans are true or false.
    #[test]
    fn numbers_and_booleans() {
        assert_eq!(read::<f64>("2.5"), Ok(2.5));
        assert_eq!(read::<f64>(3i64), Ok(3.0));
        assert!(read::<f64>("NaN").is_err());
        assert!(read::<f64>(f64::INFINITY).is_err());
        assert_eq!(read::<bool>("true"), Ok(true));
        assert!(read::<bool>("yes").is_err());
        assert!(read::<bool>(1i64).is_err());
    }

    /// One variable sets a whole list, split at commas.
    #[test]
    fn lists_from_text() {
        assert_eq!(
            read::<Vec<String>>("a, b,c"),
            Ok(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()])
        );
        assert_eq!(read::<Vec<String>>(""), Ok(vec![]));
    }
}
