//! Digest schedules: cron expressions (seconds first) evaluated in a contact's time zone.
//! Pure: the config, TOT's records and the scheduler all parse schedules here.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cron::Schedule;

/// Parses a cron expression, explaining the expected form when it is wrong.
pub fn parse_schedule(expr: &str) -> Result<Schedule, String> {
    let schedule = Schedule::from_str(expr).map_err(|e| {
        format!("{} is not a cron expression with seconds first, like \"0 0 8 * * Mon-Fri\" ({e})", super::quoted(expr))
    })?;
    // One that can never fire (31 February, a year gone by) would silently send nothing.
    if schedule.upcoming(Utc).next().is_none() {
        return Err(format!("{} never fires: no time from now on matches it", super::quoted(expr)));
    }
    Ok(schedule)
}

/// The first time strictly after `after` that `schedule` fires, read as wall-clock time in `tz`.
pub fn next_run(schedule: &Schedule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule.after(&after.with_timezone(&tz)).next().map(|t| t.with_timezone(&Utc))
}

/// A UTC time to the minute, for tests that read like a calendar.
#[cfg(test)]
pub(crate) fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    use chrono::TimeZone;
    Utc.with_ymd_and_hms(year, month, day, hour, minute, 0).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekday_mornings_follow_london_summer_time() {
        let s = parse_schedule("0 0 8 * * Mon-Fri").unwrap();
        let tz: Tz = "Europe/London".parse().unwrap();
        // Friday 27 March 2026, after 08:00 → next is Monday 30 March 08:00 BST = 07:00 UTC
        // (clocks went forward on Sunday 29 March).
        let after = utc(2026, 3, 27, 9, 0);
        let next = next_run(&s, tz, after).unwrap();
        assert_eq!(next, utc(2026, 3, 30, 7, 0));
        // In winter 08:00 London is 08:00 UTC.
        let after = utc(2026, 11, 25, 9, 0);
        assert_eq!(next_run(&s, tz, after).unwrap(), utc(2026, 11, 26, 8, 0));
    }

    #[test]
    fn bad_expressions_are_explained() {
        for bad in ["every day", "0 0 25 * * *", ""] {
            let e = parse_schedule(bad).unwrap_err();
            assert!(e.contains("seconds first"), "{bad}: {e}");
        }
    }
}
