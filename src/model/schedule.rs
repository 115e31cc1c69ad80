//! Digest schedules: cron expressions (seconds first) evaluated in a contact's time zone.
//! Pure: the config, TOT's records and the scheduler all parse schedules here.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use cron::{Schedule, TimeUnitSpec};

/// A schedule as it is entered (config, TOT's contact records, the portal's preferences):
/// [`parse_schedule`], and refused when it is longer than any a person means or names a year
/// (it would stop, and go silent later with no one told). One already stored is read with
/// [`parse_schedule`] alone, so an upgrade never silences a contact.
pub fn check_schedule(expr: &str) -> Result<Schedule, String> {
    /// `0 30 7,12,17 * * Mon-Fri` is 25.
    const MOST: usize = 100;
    if expr.chars().count() > MOST {
        return Err(format!("is longer than {MOST} characters; a schedule is like \"0 0 8 * * Mon-Fri\""));
    }
    let schedule = parse_schedule(expr)?;
    if !schedule.years().is_all() {
        return Err(format!("{} names a year, so it would stop: leave the year out", super::quoted(expr)));
    }
    Ok(schedule)
}

/// The most summaries a contact's own schedule may send in any 24 hours: more often floods the
/// client and hurts delivery.
pub const MOST_A_DAY: usize = 4;

/// The most summaries the configured default (`digest.schedule`) may send in any 24 hours:
/// TOT's own choice may be hourly, never a flood of every contact (`* * * * * *` is 86,400).
pub const MOST_A_DAY_BY_DEFAULT: usize = 24;

/// A contact's schedule (from TOT's record or the portal's preferences): [`check_schedule`],
/// and refused when any 24 hours would hold more than [`MOST_A_DAY`] summaries.
pub fn check_contact_schedule(expr: &str) -> Result<Schedule, String> {
    check_at_most(expr, MOST_A_DAY)
}

/// The configured default schedule: [`check_schedule`], and refused when any 24 hours would
/// hold more than [`MOST_A_DAY_BY_DEFAULT`] summaries.
pub fn check_default_schedule(expr: &str) -> Result<Schedule, String> {
    check_at_most(expr, MOST_A_DAY_BY_DEFAULT)
}

/// [`check_schedule`], and at most `most` summaries in any 24 hours.
///
/// A schedule fires at the same times of day on every day it fires, so 24 hours hold at
/// most one firing of each time of day, and do hold each when two days in a row fire: the
/// most in 24 hours is the number of its times of day, whatever its days (a flood on
/// Christmas Day only is found now, not in the week before it).
fn check_at_most(expr: &str, most: usize) -> Result<Schedule, String> {
    let schedule = check_schedule(expr)?;
    let times_of_day = u64::from(schedule.seconds().count())
        * u64::from(schedule.minutes().count())
        * u64::from(schedule.hours().count());
    if times_of_day > most as u64 {
        return Err(format!("{} sends more than {most} summaries in a day: at most {most}", super::quoted(expr)));
    }
    Ok(schedule)
}

/// Parses a cron expression, explaining the expected form when it is wrong.
pub fn parse_schedule(expr: &str) -> Result<Schedule, String> {
    let wrong = |why: &str| {
        format!(
            "{} is not a cron expression with seconds first, like \"0 0 8 * * Mon-Fri\": {why}",
            super::quoted(expr)
        )
    };
    // Six fields, or seven with a year: said in the reader's terms before the parser is asked,
    // whose words for a count gone wrong point a caret at the input.
    match expr.split_whitespace().count() {
        0 => return Err(wrong("it is empty")),
        // Six fields, seven with a year, or one of the parser's names (`@daily`, `@weekly`).
        6 | 7 => {}
        1 if expr.trim_start().starts_with('@') => {}
        n => {
            return Err(wrong(&format!(
                "it has {n} field(s) where a schedule has six: seconds, minutes, hours, day of month, month, day of week"
            )));
        }
    }
    let schedule = Schedule::from_str(expr).map_err(|e| {
        // The parser's words repeat the input as it came (control characters and all) before a
        // caret, then say what is wrong, with "less than" for the largest value allowed.
        let words = super::one_line(&e.to_string());
        let echoed = super::one_line(expr);
        let after_caret = words.find(&echoed).and_then(|at| words[at + echoed.len()..].trim_start().strip_prefix('^'));
        let detail = after_caret.unwrap_or(&words).trim();
        let detail = match detail {
            "" => "a field holds what no cron field takes".to_string(),
            said => said.replace(" must be less than ", " must be at most "),
        };
        wrong(&super::shorten(&detail, 200))
    })?;
    // One that can never fire (31 February, a year gone by) would silently send nothing.
    if schedule.upcoming(Utc).next().is_none() {
        return Err(format!("{} never fires: no time from now on matches it", super::quoted(expr)));
    }
    Ok(schedule)
}

// The schedule is walked in wall-clock time (the contact's local time laid on UTC's
// timeline) and each slot then placed in `tz` by hand: the cron crate, walking `tz` itself,
// skips a slot that falls in a spring-forward gap (a 02:30 digest would not come that day).

/// `t` as the wall clock in `tz` reads it, laid on UTC's timeline.
fn wall(t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    t.with_timezone(&tz).naive_local().and_utc()
}

/// The instant a wall-clock slot names in `tz`: the first of the two in an autumn repeat, and
/// for one in a spring-forward gap the gap's end (as cron daemons run it).
fn placed(slot: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    let naive = slot.naive_utc();
    // Bounded: no zone skips more than a day.
    (0..=24 * 60)
        .find_map(|m| tz.from_local_datetime(&(naive + Duration::minutes(m))).earliest())
        .map(|t| t.with_timezone(&Utc))
}

/// How far the wall clock may stand from the timeline: the longest clock change (an hour)
/// and then some.
const CLOCK_SLACK: Duration = Duration::hours(2);

/// The first time strictly after `after` that `schedule` fires, read as wall-clock time in `tz`.
pub fn next_run(schedule: &Schedule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // A slot of the hour that comes twice, placed at its first coming, is passed over when
    // `after` is in its second: bounded, as only slots within that hour are.
    schedule.after(&wall(after, tz)).filter_map(|s| placed(s, tz)).find(|t| *t > after)
}

/// The current period of a schedule: its latest slot at or before `now`, in UTC.
pub fn current_period(schedule: &Schedule, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let at = wall(now, tz);
    // In the second coming of an autumn hour, a slot just ahead by the wall clock may have
    // come already, at its first: that is the latest.
    let ahead = schedule
        .after(&at)
        .take_while(|s| *s <= at + CLOCK_SLACK)
        .filter_map(|s| placed(s, tz))
        .take_while(|t| *t <= now)
        .last();
    // `after(t)` iterates forward; stepping back from it yields the slots before `t`.
    ahead.or_else(|| {
        schedule.after(&(at + Duration::seconds(1))).rev().filter_map(|s| placed(s, tz)).find(|t| *t <= now)
    })
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
    use chrono::Datelike;
    use chrono_tz::Europe::London;

    #[test]
    fn a_contacts_schedule_sends_at_most_four_summaries_a_day() {
        // The parser's names for a day, a week, a month and a year are schedules too.
        for ok in
            ["0 0 8 * * Mon-Fri", "0 0 8,12,16,20 * * *", "0 30 7 * * Mon,Wed,Fri", "@daily", "@weekly", "@yearly"]
        {
            assert!(check_contact_schedule(ok).is_ok(), "{ok}");
        }
        // A flood on one day of the year is found whenever it is checked.
        for flood in [
            "* * * * * *",
            "0 0 * * * *",
            "0 0 8,10,12,14,16 * * Mon",
            "0 */5 * * * *",
            "0 */10 * 25 12 *",
            "0 0 * 1 1 *",
        ] {
            let e = check_contact_schedule(flood).unwrap_err();
            assert!(e.contains("more than 4 summaries in a day"), "{flood}: {e}");
        }
    }

    #[test]
    fn the_default_schedule_may_be_hourly_and_no_more() {
        for ok in ["0 0 * * * *", "0 30 */6 * * *", "0 0 8 * * Mon-Fri", "@daily"] {
            assert!(check_default_schedule(ok).is_ok(), "{ok}");
        }
        for flood in ["* * * * * *", "0 * * * * *", "0 */30 * * * *", "0 0,30 8-20 * * *"] {
            let e = check_default_schedule(flood).unwrap_err();
            assert!(e.contains("more than 24 summaries in a day"), "{flood}: {e}");
        }
    }

    #[test]
    fn a_wrong_schedule_is_explained_on_one_line_with_the_right_limit() {
        let e = parse_schedule("0 0 25 * * *").unwrap_err();
        assert!(e.contains("must be at most 23"), "{e}");
        let e = parse_schedule("\u{1b}[31mx * * * * *").unwrap_err();
        assert!(e.starts_with("`<U+001B>[31mx * * * * *`"), "the input quoted: {e}");
        assert!(!e.chars().any(char::is_control), "nothing that would move a terminal's cursor: {e:?}");
    }

    #[test]
    fn weekday_mornings_follow_london_summer_time() {
        let s = parse_schedule("0 0 8 * * Mon-Fri").unwrap();
        // Friday 27 March 2026, after 08:00 → next is Monday 30 March 08:00 BST = 07:00 UTC
        // (clocks went forward on Sunday 29 March).
        let after = utc(2026, 3, 27, 9, 0);
        let next = next_run(&s, London, after).unwrap();
        assert_eq!(next, utc(2026, 3, 30, 7, 0));
        // In winter 08:00 London is 08:00 UTC.
        let after = utc(2026, 11, 25, 9, 0);
        assert_eq!(next_run(&s, London, after).unwrap(), utc(2026, 11, 26, 8, 0));
    }

    #[test]
    fn bad_expressions_are_explained() {
        for (bad, why) in [
            ("every day", "it has 2 field(s) where a schedule has six: seconds, minutes"),
            ("0 0 25 * * *", "must be at most 23"),
            ("", "it is empty"),
            (" \t ", "it is empty"),
            ("garbage * * * * *", "'garbage'"),
            ("@often", "seconds first"),
        ] {
            let e = parse_schedule(bad).unwrap_err();
            assert!(e.contains("seconds first") && e.contains(why), "{bad}: {e}");
            assert!(!e.contains('^'), "no caret pointing at what is not shown: {e}");
        }
        let next_year = Utc::now().year() + 1;
        for (bad, says) in [
            ("0 0 8 31 2 *", "never fires"),
            (&format!("0 0 8 * * * {next_year}"), "names a year"),
            (&format!("0 0 8 * * * {next_year}-2099"), "names a year"),
            (&format!("0 0 8 * * * {}", " ".repeat(120)), "longer than 100 characters"),
        ] {
            let e = check_schedule(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        // Any year is no year; and one stored before the rule still reads, for the scheduler.
        check_schedule("0 0 8 * * * *").unwrap();
        parse_schedule(&format!("0 0 8 * * * {next_year}")).unwrap();
    }

    #[test]
    fn the_period_is_the_latest_slot_in_the_contacts_zone() {
        let s = parse_schedule("0 0 8 * * Mon-Fri").unwrap();
        for (now, began, why) in [
            (utc(2026, 11, 25, 9, 30), utc(2026, 11, 25, 8, 0), "Wednesday 09:30 UTC: 08:00 London (UTC in winter)"),
            (utc(2026, 11, 25, 8, 0), utc(2026, 11, 25, 8, 0), "at exactly 08:00 the new period has begun"),
            (utc(2026, 11, 28, 12, 0), utc(2026, 11, 27, 8, 0), "Saturday: still Friday's period"),
        ] {
            assert_eq!(current_period(&s, London, now), Some(began), "{why}");
        }
    }

    #[test]
    fn dst_change_days_have_exactly_one_slot() {
        let s = parse_schedule("0 0 8 * * *").unwrap();
        // Sunday 29 March 2026, clocks go forward at 01:00 UTC: 08:00 BST is 07:00 UTC.
        let now = utc(2026, 3, 29, 7, 30);
        assert_eq!(current_period(&s, London, now), Some(utc(2026, 3, 29, 7, 0)));
        // Sunday 25 October 2026, clocks go back: 08:00 GMT is 08:00 UTC; at 07:30 UTC the
        // period is still Saturday's (07:00 UTC, BST).
        let before = utc(2026, 10, 25, 7, 30);
        assert_eq!(current_period(&s, London, before), Some(utc(2026, 10, 24, 7, 0)));
        let after = utc(2026, 10, 25, 8, 30);
        assert_eq!(current_period(&s, London, after), Some(utc(2026, 10, 25, 8, 0)));
        // A slot inside the skipped hour (01:30 on spring-forward day) fires at the gap's
        // end (02:00 BST, 01:00 UTC), once: that day has its digest too.
        let night = parse_schedule("0 30 1 * * *").unwrap();
        let sun = utc(2026, 3, 29, 12, 0);
        assert_eq!(current_period(&night, London, sun), Some(utc(2026, 3, 29, 1, 0)));
        assert_eq!(current_period(&night, London, utc(2026, 3, 29, 0, 59)), Some(utc(2026, 3, 28, 1, 30)));
        assert_eq!(next_run(&night, London, utc(2026, 3, 28, 12, 0)), Some(utc(2026, 3, 29, 1, 0)));
        assert_eq!(next_run(&night, London, utc(2026, 3, 29, 1, 0)), Some(utc(2026, 3, 30, 0, 30)));
        // A slot in the hour that comes twice (01:30 on fall-back day) is the first of them,
        // and its period stays that one through the second.
        let first = utc(2026, 10, 25, 0, 30);
        assert_eq!(next_run(&night, London, utc(2026, 10, 24, 12, 0)), Some(first));
        assert_eq!(next_run(&night, London, first), Some(utc(2026, 10, 26, 1, 30)));
        assert_eq!(current_period(&night, London, utc(2026, 10, 25, 1, 45)), Some(first));
        // Through the second coming of that hour, before the slot's wall time comes again,
        // the period is still the day's (not the day before's).
        let quarter = parse_schedule("0 45 1 * * *").unwrap();
        assert_eq!(current_period(&quarter, London, utc(2026, 10, 25, 1, 15)), Some(utc(2026, 10, 25, 0, 45)));
        // A schedule of every minute finds its slots as before; in the hour that comes twice
        // each of its wall-clock slots came at the first coming, so the next is after it.
        let often_in_autumn = parse_schedule("0 * * * * *").unwrap();
        assert_eq!(next_run(&often_in_autumn, London, utc(2026, 10, 25, 1, 10)), Some(utc(2026, 10, 25, 2, 0)));
        let often = parse_schedule("0 * * * * *").unwrap();
        assert_eq!(current_period(&often, London, utc(2026, 3, 29, 0, 59)), Some(utc(2026, 3, 29, 0, 59)));
        assert_eq!(next_run(&often, London, utc(2026, 3, 29, 0, 59)), Some(utc(2026, 3, 29, 1, 0)));
    }
}
