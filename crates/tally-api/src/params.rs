//! Query parameters, parsed by hand so that every bad one is a 400 that
//! names it (never a framework rejection, never a 500).

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::NaiveDate;
use tally_domain::Month;
use tally_reports::costs::Measure;

use crate::error::ApiError;

/// The longest query string a route reads; the longest real one (a costs
/// query with every filter) is under 300 characters.
pub const MAX_QUERY_LEN: usize = 2048;

/// The query string as name -> value; repeated names are an error, and so
/// is a query string longer than [`MAX_QUERY_LEN`].
#[derive(Debug, Clone, Default)]
pub struct Params(pub BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        if query.len() > MAX_QUERY_LEN {
            return Err(ApiError::bad_parameter("(query string)", format!("is {} characters long; at most {MAX_QUERY_LEN} are read", query.len())));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map_err(|e| ApiError::bad_parameter("(query string)", format!("cannot be decoded: {e}")))?;
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            if map.insert(k.clone(), v).is_some() {
                return Err(ApiError::bad_parameter(&k, "given more than once"));
            }
        }
        Ok(Self(map))
    }
}

/// A span of whole months, and the days within it for daily reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: Month,
    pub to: Month,
    pub from_day: Option<NaiveDate>,
    /// Exclusive.
    pub to_day: Option<NaiveDate>,
}

impl Params {
    /// Rejects parameters the route does not know, naming the first.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::bad_parameter(k, format!("unknown parameter; this route takes {}", allowed.join(", ")))),
            None => Ok(()),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn parse<T: FromStr>(&self, name: &str, expected: &str) -> Result<Option<T>, ApiError> {
        self.get(name).map(|v| v.parse::<T>().map_err(|_| ApiError::bad_parameter(name, format!("{v:?} is not {expected}")))).transpose()
    }

    /// `measure=unblended|amortized`, `default` when not given.
    pub fn measure(&self, default: Measure) -> Result<Measure, ApiError> {
        Ok(self.get("measure").map(str::parse).transpose().map_err(|e: String| ApiError::bad_parameter("measure", e))?.unwrap_or(default))
    }

    /// `month=YYYY-MM`, or `from`/`to` as months (YYYY-MM) or days
    /// (YYYY-MM-DD, `to` exclusive); `default` when none is given.
    pub fn span(&self, default: Month) -> Result<Span, ApiError> {
        if let Some(m) = self.parse::<Month>("month", "a month such as 2026-10")? {
            if self.get("from").is_some() || self.get("to").is_some() {
                return Err(ApiError::bad_parameter("month", "give either month or from/to, not both"));
            }
            return Ok(Span { from: m, to: m, from_day: None, to_day: None });
        }
        let bound = |name: &str| -> Result<Option<(Month, Option<NaiveDate>)>, ApiError> {
            let Some(v) = self.get(name) else { return Ok(None) };
            if let Ok(m) = Month::parse(v) {
                return Ok(Some((m, None)));
            }
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map(|d| Some((Month::of_date(d), Some(d))))
                .map_err(|_| ApiError::bad_parameter(name, format!("{v:?} is not a month (YYYY-MM) or a day (YYYY-MM-DD)")))
        };
        let from = bound("from")?;
        let to = bound("to")?;
        let (from_m, from_day) = from.unwrap_or((to.map_or(default, |t| t.0), None));
        let (to_m, to_day) = match to {
            // An exclusive day bound on the 1st ends in the month before.
            Some((m, Some(d))) if d == m.first_day() => (m.prev(), Some(d)),
            Some(t) => t,
            None => (from_m.max(default), None),
        };
        if to_m < from_m || matches!((from_day, to_day), (Some(a), Some(b)) if b <= a) {
            return Err(ApiError::bad_parameter("to", "lies before from"));
        }
        if from_m.through(to_m).count() > 120 {
            return Err(ApiError::bad_parameter("to", "spans more than ten years"));
        }
        Ok(Span { from: from_m, to: to_m, from_day, to_day })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    fn m(s: &str) -> Month {
        Month::parse(s).unwrap()
    }

    #[test]
    fn a_month_or_a_range_of_months_or_days_selects_the_span() {
        assert_eq!(p(&[("month", "2026-10")]).span(m("2026-11")).unwrap().from, m("2026-10"));
        let s = p(&[("from", "2026-09"), ("to", "2026-10")]).span(m("2026-11")).unwrap();
        assert_eq!((s.from, s.to), (m("2026-09"), m("2026-10")));
        let s = p(&[("from", "2026-10-05"), ("to", "2026-11-01")]).span(m("2026-11")).unwrap();
        assert_eq!((s.from, s.to), (m("2026-10"), m("2026-10")));
        assert_eq!(p(&[]).span(m("2026-11")).unwrap().to, m("2026-11"));
    }

    #[test]
    fn a_bad_or_inverted_span_names_the_parameter() {
        let e = p(&[("month", "Oct")]).span(m("2026-11")).unwrap_err();
        assert_eq!(e.code(), "bad_parameter");
        assert!(format!("{e:?}").contains("month"));
        assert!(p(&[("from", "2026-10"), ("to", "2026-09")]).span(m("2026-11")).is_err());
        assert!(p(&[("from", "2026-10"), ("month", "2026-10")]).span(m("2026-11")).is_err());
    }

    #[test]
    fn unknown_parameters_are_rejected_by_name() {
        let e = p(&[("mnth", "2026-10")]).only(&["month"]).unwrap_err();
        assert!(format!("{e:?}").contains("mnth"));
    }
}
