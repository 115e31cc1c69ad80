//! Money: amounts in a client's currency as integer minor units, and line totals that
//! saturate instead of overflowing.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::quoted;

/// A line's total, `qty × unit_price` in minor units. It saturates rather than overflow, so no
/// figure TOT sends can stop a page or an answer (records whose totals do not fit are refused
/// on the way in: see `records::check_line_total`).
pub fn line_total(qty: i64, unit_price: i64) -> i64 {
    qty.saturating_mul(unit_price)
}

/// The sum of line totals, saturating like [`line_total`].
pub fn lines_total(lines: impl IntoIterator<Item = (i64, i64)>) -> i64 {
    lines.into_iter().map(|(q, p)| line_total(q, p)).fold(0, i64::saturating_add)
}

/// What is still owed on an invoice, `total − paid`; on a credit note (a negative total),
/// what is left of its credit, `total + paid` (`paid` is what was paid out of it). Zero once
/// settled either way: the one rule statements, invoice pages and answers show.
pub fn outstanding(total: i64, paid: i64) -> i64 {
    if total < 0 { total.saturating_add(paid) } else { total.saturating_sub(paid) }
}

/// Money in the client's currency, held as integer minor units (pence, cents).
/// In JSON it is a number or string with at most two decimals: `12.5`, `"12.50"`, `1200`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub i64);

impl Money {
    /// The largest whole amount, in either direction: 13 digits, so that sums of many
    /// amounts stay far inside an `i64` of minor units.
    pub const MOST_WHOLE: u64 = 9_999_999_999_999;

    pub fn minor(self) -> i64 {
        self.0
    }

    /// Parses a decimal amount without going through floating point.
    /// The text exactly as the data format gives it: no spaces around it.
    pub fn parse(s: &str) -> Result<Money, String> {
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        // What is wrong, said: a thousands separator or a currency sign reads as an amount to
        // a person, and "at most 2 decimals" alone would not tell them why it is refused.
        let bad = || format!("{} is not an amount like 1234.50: digits only, `-` before them if below zero", quoted(s));
        if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        if !frac.chars().all(|c| c.is_ascii_digit()) || (digits.contains('.') && frac.is_empty()) {
            return Err(bad());
        }
        if frac.len() > 2 {
            return Err(format!("{} has more than 2 decimals", quoted(s)));
        }
        if whole.len() > 13 {
            return Err(format!("{} is too large (at most 13 digits before the point)", quoted(s)));
        }
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let frac: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().map_err(|_| bad())? * 10,
            _ => frac.parse().map_err(|_| bad())?,
        };
        let v = whole * 100 + frac;
        Ok(Money(if neg { -v } else { v }))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Total(i128::from(self.0)).fmt(f)
    }
}

/// A sum of amounts across records (a statement's invoices), exact however many there are:
/// an `i64` of minor units holds the sum of only about 92 thousand of the largest amounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Total(pub i128);

impl Total {
    pub fn of(amounts: impl IntoIterator<Item = i64>) -> Total {
        Total(amounts.into_iter().map(i128::from).sum())
    }
}

impl fmt::Display for Total {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

/// In the API contract: a number, or a string of digits with at most two decimals.
impl schemars::JsonSchema for Money {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Money".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An amount in the client's currency with at most two decimals: `12.5`, `\"12.50\"`, `1200`. Answers spell it as a string.",
            "anyOf": [
                {"type": "number"},
                {"type": "string", "pattern": "^-?[0-9]{1,13}(\\.[0-9]{1,2})?$"}
            ]
        })
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an amount like 1234.50, with at most 2 decimals")
            }
            // A whole number has the same bound as a written amount: 13 digits.
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
                if v.unsigned_abs() > Money::MOST_WHOLE {
                    return Err(E::custom(format!("{v} is too large (at most 13 digits before the point)")));
                }
                Ok(Money(v * 100))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
                match i64::try_from(v) {
                    Ok(v) => self.visit_i64(v),
                    Err(_) => Err(E::custom(format!("{v} is too large (at most 13 digits before the point)"))),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
                // Display of f64 is the shortest text that reads back as the same number,
                // so 12.3 arrives as "12.3", never "12.29999".
                Money::parse(&format!("{v}")).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
                Money::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_totals_saturate_instead_of_overflowing() {
        assert_eq!(line_total(3, 250), 750);
        assert_eq!(line_total(1_000_000_000, 999_999_999_999_999), i64::MAX);
        assert_eq!(lines_total([(1, i64::MAX), (1, 1)]), i64::MAX);
        assert_eq!(lines_total([(2, 5), (1, -3)]), 7);
    }

    #[test]
    fn a_total_of_many_large_amounts_is_exact() {
        let most = 999_999_999_999_999;
        assert_eq!(Total::of(std::iter::repeat_n(most, 9300)).to_string(), "92999999999999907.00");
        assert_eq!(Total::of([-5, 2]).to_string(), "-0.03");
        assert_eq!(Money(-307).to_string(), "-3.07");
    }

    #[test]
    fn money_parses_exactly() {
        let cases = [
            ("12.5", Some(1250)),
            ("12.50", Some(1250)),
            ("0.1", Some(10)),
            ("1200", Some(120000)),
            ("-3.07", Some(-307)),
            ("1.234", None),
            ("1.", None),
            ("abc", None),
            ("", None),
            (".5", None),
            (" 12.5", None),
            ("12.5 ", None),
            ("- 3", None),
        ];
        for (text, want) in cases {
            assert_eq!(Money::parse(text).ok().map(|m| m.0), want, "{text}");
        }
        // What is wrong is said: a separator or a sign is not "too many decimals".
        for odd in ["1,000.00", "£12", "+1", "12 GBP"] {
            let e = Money::parse(odd).unwrap_err();
            assert!(e.contains("is not an amount like 1234.50: digits only"), "{odd}: {e}");
        }
        assert!(Money::parse("1.234").unwrap_err().contains("has more than 2 decimals"));
        let m: Money = serde_json::from_str("19.99").unwrap();
        assert_eq!(m, Money(1999));
        for huge in ["10000000000000", "-90000000000000000", "18446744073709551615", "1e20"] {
            let e = serde_json::from_str::<Money>(huge).unwrap_err().to_string();
            assert!(e.contains("too large"), "{huge}: {e}");
        }
        assert_eq!(serde_json::from_str::<Money>("9999999999999").unwrap(), Money(999_999_999_999_900));
        let m: Money = serde_json::from_str("7").unwrap();
        assert_eq!(m.to_string(), "7.00");
        assert!(serde_json::from_str::<Money>("0.005").is_err());
        assert_eq!(Money(-5).to_string(), "-0.05");
    }
}
