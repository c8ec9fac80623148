use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// The length of a billing or usage period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Hour,
    Day,
    Month,
}

impl Granularity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

impl FromStr for Granularity {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hour" => Ok(Self::Hour),
            "day" => Ok(Self::Day),
            "month" => Ok(Self::Month),
            _ => Err(ValidationError::new("granularity", s, "one of hour, day, month")),
        }
    }
}

/// The first instant Tally accepts in data: 1970-01-01T00:00:00Z (milliseconds since the epoch).
pub const FIRST_INSTANT_MS: i64 = 0;
/// The first instant after the last one Tally accepts: 10000-01-01T00:00:00Z.
pub const END_INSTANT_MS: i64 = 253_402_300_800_000;

/// Checks that an instant lies from 1970 through 9999, the range of Tally's
/// months; `what` names it in the error.
pub fn check_instant(what: &'static str, ts: DateTime<Utc>) -> Result<(), ValidationError> {
    let ms = ts.timestamp_millis();
    if (FIRST_INSTANT_MS..END_INSTANT_MS).contains(&ms) { Ok(()) } else { Err(ValidationError::new(what, ts.to_rfc3339(), "a time from 1970 through 9999")) }
}

/// A calendar month in UTC, such as 2026-10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    pub fn new(year: i32, month: u32) -> Result<Self, ValidationError> {
        if !(1..=12).contains(&month) || !(1970..=9999).contains(&year) {
            return Err(ValidationError::new("month", format!("{year:04}-{month:02}"), "a month from 1970-01 to 9999-12"));
        }
        Ok(Self { year, month })
    }

    /// Parses `YYYY-MM`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let err = || ValidationError::new("month", value, "YYYY-MM, e.g. 2026-10");
        let (y, m) = value.split_once('-').ok_or_else(err)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(err());
        }
        let year = y.parse().map_err(|_| err())?;
        let month = m.parse().map_err(|_| err())?;
        Self::new(year, month).map_err(|_| err())
    }

    /// The month of an instant already known to lie in Tally's range (see [`check_instant`]).
    pub fn of(ts: DateTime<Utc>) -> Self {
        Self { year: ts.year(), month: ts.month() }
    }

    /// The month of any instant, refusing those before 1970 or after 9999.
    pub fn checked_of(ts: DateTime<Utc>) -> Result<Self, ValidationError> {
        Self::new(ts.year(), ts.month())
    }

    pub fn of_date(date: NaiveDate) -> Self {
        Self { year: date.year(), month: date.month() }
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    /// `October 2026`.
    pub fn long_name(self) -> String {
        self.first_day().format("%B %Y").to_string()
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("validated month")
    }

    pub fn start(self) -> DateTime<Utc> {
        Utc.from_utc_datetime(&self.first_day().and_hms_opt(0, 0, 0).expect("midnight"))
    }

    pub fn end(self) -> DateTime<Utc> {
        self.next().start()
    }

    pub fn next(self) -> Self {
        if self.month == 12 { Self { year: self.year + 1, month: 1 } } else { Self { year: self.year, month: self.month + 1 } }
    }

    pub fn prev(self) -> Self {
        if self.month == 1 { Self { year: self.year - 1, month: 12 } } else { Self { year: self.year, month: self.month - 1 } }
    }

    pub fn days(self) -> u32 {
        (self.next().first_day() - self.first_day()).num_days() as u32
    }

    pub fn hours(self) -> u32 {
        self.days() * 24
    }

    pub fn period(self) -> Period {
        Period { start: self.start(), end: self.end(), granularity: Granularity::Month }
    }

    /// Months from `self` up to and including `last`.
    pub fn through(self, last: Month) -> impl Iterator<Item = Month> {
        std::iter::successors(Some(self), move |m| (*m < last).then(|| m.next())).take_while(move |m| *m <= last)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Month {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Month> for String {
    fn from(value: Month) -> Self {
        value.to_string()
    }
}

/// A half-open interval `[start, end)` in UTC aligned to an hour, a day or a
/// calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Period {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    granularity: Granularity,
}

impl Period {
    /// The hour that starts at `start`, which must be on the hour.
    pub fn hour(start: DateTime<Utc>) -> Result<Self, ValidationError> {
        if start.minute() != 0 || start.second() != 0 || start.nanosecond() != 0 {
            return Err(ValidationError::new("hour", start.to_rfc3339(), "a UTC timestamp on the hour, e.g. 2026-10-01T13:00:00Z"));
        }
        Ok(Self { start, end: start + Duration::hours(1), granularity: Granularity::Hour })
    }

    pub fn day(date: NaiveDate) -> Self {
        let start = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"));
        Self { start, end: start + Duration::days(1), granularity: Granularity::Day }
    }

    pub fn month(month: Month) -> Self {
        month.period()
    }

    /// The period `[start, end)` if it is exactly one hour, day or month.
    pub fn from_bounds(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, ValidationError> {
        let expected = "an aligned hour, day or calendar month, given as [start, end) in UTC";
        let err = || ValidationError::new("period", format!("{}/{}", start.to_rfc3339(), end.to_rfc3339()), expected);
        if end <= start {
            return Err(err());
        }
        if let Ok(p) = Self::hour(start)
            && p.end == end
        {
            return Ok(p);
        }
        if start.time() == chrono::NaiveTime::MIN {
            let d = Self::day(start.date_naive());
            if d.end == end {
                return Ok(d);
            }
            let m = Month::of(start);
            if m.start() == start && m.end() == end {
                return Ok(m.period());
            }
        }
        Err(err())
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    pub fn granularity(&self) -> Granularity {
        self.granularity
    }

    pub fn month_of(&self) -> Month {
        Month::of(self.start)
    }

    pub fn contains(&self, ts: DateTime<Utc>) -> bool {
        self.start <= ts && ts < self.end
    }

    pub fn hours(&self) -> i64 {
        (self.end - self.start).num_hours()
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.granularity {
            Granularity::Hour => write!(f, "{}", self.start.format("%Y-%m-%dT%H:00Z")),
            Granularity::Day => write!(f, "{}", self.start.format("%Y-%m-%d")),
            Granularity::Month => write!(f, "{}", self.month_of()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn an_hour_period_is_half_open() {
        let p = Period::hour(ts("2026-10-01T13:00:00Z")).unwrap();
        assert!(p.contains(ts("2026-10-01T13:00:00Z")));
        assert!(p.contains(ts("2026-10-01T13:59:59Z")));
        assert!(!p.contains(ts("2026-10-01T14:00:00Z")));
    }

    #[test]
    fn an_hour_that_does_not_start_on_the_hour_is_rejected() {
        assert!(Period::hour(ts("2026-10-01T13:30:00Z")).is_err());
    }

    #[test]
    fn a_month_knows_its_days_and_hours_including_leap_years() {
        assert_eq!(Month::parse("2024-02").unwrap().days(), 29);
        assert_eq!(Month::parse("2026-02").unwrap().hours(), 28 * 24);
        assert_eq!(Month::parse("2026-10").unwrap().days(), 31);
    }

    #[test]
    fn december_is_followed_by_january_of_the_next_year() {
        assert_eq!(Month::parse("2026-12").unwrap().next(), Month::parse("2027-01").unwrap());
        assert_eq!(Month::parse("2027-01").unwrap().prev(), Month::parse("2026-12").unwrap());
    }

    #[test]
    fn a_month_must_be_written_yyyy_mm() {
        for bad in ["2026-1", "2026-13", "26-10", "2026/10", "", "2026-00"] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bounds_are_recognised_as_hour_day_or_month() {
        let h = Period::from_bounds(ts("2026-10-01T05:00:00Z"), ts("2026-10-01T06:00:00Z")).unwrap();
        assert_eq!(h.granularity(), Granularity::Hour);
        let d = Period::from_bounds(ts("2026-10-01T00:00:00Z"), ts("2026-10-02T00:00:00Z")).unwrap();
        assert_eq!(d.granularity(), Granularity::Day);
        let m = Period::from_bounds(ts("2026-10-01T00:00:00Z"), ts("2026-11-01T00:00:00Z")).unwrap();
        assert_eq!(m.granularity(), Granularity::Month);
    }

    #[test]
    fn unaligned_or_empty_bounds_are_rejected() {
        assert!(Period::from_bounds(ts("2026-10-01T00:00:00Z"), ts("2026-10-01T00:00:00Z")).is_err());
        assert!(Period::from_bounds(ts("2026-10-01T00:00:00Z"), ts("2026-10-03T00:00:00Z")).is_err());
        assert!(Period::from_bounds(ts("2026-10-01T00:30:00Z"), ts("2026-10-01T01:30:00Z")).is_err());
    }

    #[test]
    fn months_through_a_later_month_are_listed_in_order() {
        let from = Month::parse("2026-11").unwrap();
        let to = Month::parse("2027-02").unwrap();
        let listed: Vec<String> = from.through(to).map(|m| m.to_string()).collect();
        assert_eq!(listed, ["2026-11", "2026-12", "2027-01", "2027-02"]);
        assert_eq!(to.through(from).count(), 0);
    }
}
