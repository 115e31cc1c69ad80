//! Dates and times as cport reads them from TOT's records and from forms: strictly.
//!
//! chrono's own readers take `2026-1-5` for a date and years of any length. Both are refused
//! here: a date is `YYYY-MM-DD` to the letter, and every year has four digits, so that the
//! order of dates as text (how SQLite stores them) is their order in time.

use std::ops::RangeInclusive;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Deserializer};

use super::quoted;

/// The years a record's date or time may fall in: four digits, none before TOT's trade could
/// have a record.
pub const YEARS: RangeInclusive<i32> = 1900..=9999;

/// A date written `YYYY-MM-DD`, a real day of the calendar, in [`YEARS`]. The error says why
/// not, quoting (the start of) what was given.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    if !shaped {
        return Err(format!("{} is not a date written YYYY-MM-DD", quoted(s)));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("`{s}` is not a day of the calendar"))?;
    in_years(d.year(), s)?;
    Ok(d)
}

/// A time in RFC 3339 (`2026-11-25T09:30:00Z`, any offset), in [`YEARS`]. The `T` is
/// required: chrono also takes the space RFC 3339 allows in prose, which TOT's system does not
/// send, so a time with one is more likely a local time pasted by hand.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let refused = || format!("{} is not a time in RFC 3339, for example 2026-11-25T09:30:00Z", quoted(s));
    // RFC 3339 allows `t` and `z` in lower case (section 5.6).
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't')) {
        return Err(refused());
    }
    // The year is checked in UTC, as the time is kept: `9999-12-31T23:30:00-01:00` is past
    // the last year.
    let t = DateTime::parse_from_rfc3339(s).map_err(|_| refused())?.with_timezone(&Utc);
    in_years(t.year(), s)?;
    Ok(t)
}

fn in_years(year: i32, s: &str) -> Result<(), String> {
    if YEARS.contains(&year) {
        Ok(())
    } else {
        Err(format!("{} is not between the years {} and {}", quoted(s), YEARS.start(), YEARS.end()))
    }
}

/// Reads a record's date with [`parse_date`] (`#[serde(deserialize_with = "dates::date")]`).
pub fn date<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    parse_date(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// [`date`] for a date that may be absent or null.
pub fn optional_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| parse_date(&s).map_err(serde::de::Error::custom)).transpose()
}

/// Reads a record's time with [`parse_time`].
pub fn time<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    parse_time(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// [`time`] for a time that may be absent or null.
pub fn optional_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| parse_time(&s).map_err(serde::de::Error::custom)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_yyyy_mm_dd_to_the_letter_and_a_real_day_in_four_digit_years() {
        assert_eq!(parse_date("2026-01-05"), Ok(NaiveDate::from_ymd_opt(2026, 1, 5).unwrap()));
        for bad in ["2026-1-5", "2026-01-5", "26-01-05", "+2026-01-05", "10000-01-01", "2026/01/05", " 2026-01-05", ""]
        {
            let e = parse_date(bad).unwrap_err();
            assert!(e.contains("YYYY-MM-DD"), "{bad}: {e}");
        }
        assert!(parse_date("2026-02-30").unwrap_err().contains("not a day of the calendar"));
        assert!(parse_date("0000-01-01").unwrap_err().contains("between the years 1900 and 9999"));
        assert!(parse_date("1899-12-31").is_err() && parse_date("9999-12-31").is_ok());
        // What an error quotes is bounded.
        assert!(parse_date(&"9".repeat(10_000)).unwrap_err().len() < 100);
    }

    #[test]
    fn a_time_is_rfc_3339_in_four_digit_years() {
        let t = parse_time("2026-11-25T09:30:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T08:30:00+00:00");
        assert_eq!(parse_time("2026-11-25t08:30:00z"), Ok(t), "lower case as RFC 3339 allows");
        for bad in
            ["2026-11-25", "2026-11-25T09:30:00", "2026-11-25 09:30:00Z", "yesterday", "2026-11-25T25:00:00Z", "é"]
        {
            assert!(parse_time(bad).unwrap_err().contains("RFC 3339"), "{bad}");
        }
        assert!(parse_time("0001-01-01T00:00:00Z").unwrap_err().contains("between the years"));
    }

    #[test]
    fn records_read_their_dates_through_the_strict_readers() {
        #[derive(Deserialize)]
        struct R {
            #[serde(deserialize_with = "date")]
            on: NaiveDate,
            #[serde(default, deserialize_with = "optional_date")]
            by: Option<NaiveDate>,
            #[serde(default, deserialize_with = "optional_time")]
            at: Option<DateTime<Utc>>,
        }
        let r: R = serde_json::from_value(serde_json::json!({"on": "2026-01-05", "by": null})).unwrap();
        assert_eq!((r.on.day(), r.by, r.at), (5, None, None));
        let e = serde_json::from_value::<R>(serde_json::json!({"on": "2026-1-5"})).err().unwrap();
        assert!(e.to_string().contains("YYYY-MM-DD"), "{e}");
        assert!(serde_json::from_value::<R>(serde_json::json!({"on": 20260105})).is_err());
    }
}
