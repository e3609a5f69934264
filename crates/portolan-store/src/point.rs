//! Points of history (`last`, `baseline`, a run id, a time) and durations (`90d`).

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::error::ParseError;

/// One point of a host's history, as a user names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Point {
    /// A run id (`12`, `#12`, `run:12`).
    Run(i64),
    /// The latest run.
    Last,
    /// The run accepted as the baseline.
    Baseline,
    /// The last run at or before this time.
    Time(Timestamp),
    /// A file (portolan JSON or nmap XML) outside the database; the caller reads it.
    File(PathBuf),
}

const EXPECTED: &str = "expected a run id, last, baseline, yesterday, a time (2026-11-30T12:00, \
    RFC 3339), a duration ago (2h ago) or a file (.json, .xml)";

impl Point {
    /// Parses a point with the current time and the system time zone.
    pub fn parse(text: &str) -> Result<Point, ParseError> {
        Point::parse_at(text, Timestamp::now(), &TimeZone::system())
    }

    /// Parses a point; relative times count back from `now`, and times without an
    /// offset are in `tz`.
    ///
    /// ```
    /// use portolan_store::Point;
    /// let now: jiff::Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
    /// let tz = jiff::tz::TimeZone::UTC;
    /// assert_eq!(Point::parse_at("last", now, &tz).unwrap(), Point::Last);
    /// assert_eq!(Point::parse_at("12", now, &tz).unwrap(), Point::Run(12));
    /// assert_eq!(Point::parse_at("2h ago", now, &tz).unwrap(),
    ///            Point::Time("2026-12-01T10:00:00Z".parse().unwrap()));
    /// assert!(Point::parse_at("soon", now, &tz).is_err());
    /// ```
    pub fn parse_at(text: &str, now: Timestamp, tz: &TimeZone) -> Result<Point, ParseError> {
        let bad = || ParseError::new("point", text, EXPECTED);
        let t = text.trim();
        match t {
            "" => return Err(bad()),
            "last" | "latest" => return Ok(Point::Last),
            "baseline" => return Ok(Point::Baseline),
            "now" => return Ok(Point::Time(now)),
            "yesterday" => return back(now, Duration::from_secs(86_400)).ok_or_else(bad),
            _ => {}
        }
        let digits = t
            .strip_prefix('#')
            .or_else(|| t.strip_prefix("run:"))
            .unwrap_or(t);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return digits
                .parse::<i64>()
                .ok()
                .filter(|&n| n > 0)
                .map(Point::Run)
                .ok_or_else(bad);
        }
        if let Some(d) = t.strip_suffix("ago") {
            let d = parse_duration(d.trim()).map_err(|_| bad())?;
            return back(now, d).ok_or_else(bad);
        }
        if t.ends_with(".json") || t.ends_with(".xml") || t.contains('/') {
            return Ok(Point::File(PathBuf::from(t)));
        }
        if let Ok(ts) = t.parse::<Timestamp>() {
            return Ok(Point::Time(ts));
        }
        if let Ok(dt) = t.parse::<jiff::civil::DateTime>() {
            return dt
                .to_zoned(tz.clone())
                .map(|z| Point::Time(z.timestamp()))
                .map_err(|_| bad());
        }
        Err(bad())
    }
}

fn back(now: Timestamp, d: Duration) -> Option<Point> {
    let span = jiff::SignedDuration::try_from(d).ok()?;
    now.checked_sub(span).ok().map(Point::Time)
}

/// Parses a duration: numbers with units `s`, `m`, `h`, `d` (24 h), `w` (7 d), in any
/// sequence (`90d`, `1h30m`, `15 min`, `2 hours`).
///
/// ```
/// use std::time::Duration;
/// use portolan_store::parse_duration;
/// assert_eq!(parse_duration("90d").unwrap(), Duration::from_secs(90 * 86_400));
/// assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5_400));
/// assert!(parse_duration("90").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, ParseError> {
    let bad = || {
        ParseError::new(
            "duration",
            text,
            "expected a number and a unit: 30s, 15m, 2h, 90d, 1w, 1h30m",
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if n_end == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..n_end].parse().map_err(|_| bad())?;
        rest = rest[n_end..].trim_start();
        let u_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hour" | "hours" => 3_600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 604_800,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .filter(|&s| s <= 100 * 365 * 86_400)
            .ok_or_else(|| ParseError::new("duration", text, "longer than 100 years"))?;
        rest = rest[u_end..].trim_start();
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_duration_over_the_bound_says_so_not_that_the_unit_is_missing() {
        let e = parse_duration("99999w").unwrap_err().to_string();
        assert!(e.contains("longer than 100 years"), "{e}");
        let e = parse_duration("99999999999999999999w")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a number and a unit"), "{e}");
    }

    fn now() -> Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn p(s: &str) -> Result<Point, ParseError> {
        Point::parse_at(s, now(), &TimeZone::UTC)
    }

    fn at(s: &str) -> Point {
        Point::Time(s.parse().unwrap())
    }

    #[test]
    fn points() {
        assert_eq!(p("baseline").unwrap(), Point::Baseline);
        assert_eq!(p("#7").unwrap(), Point::Run(7));
        assert_eq!(p("yesterday").unwrap(), at("2026-11-30T12:00:00Z"));
        assert_eq!(p("2026-11-30T12:00").unwrap(), at("2026-11-30T12:00:00Z"));
        assert_eq!(
            p("2026-11-30T12:00:00+01:00").unwrap(),
            at("2026-11-30T11:00:00Z")
        );
        assert_eq!(p("90 min ago").unwrap(), at("2026-12-01T10:30:00Z"));
        assert_eq!(p("a.xml").unwrap(), Point::File("a.xml".into()));
        let tz = TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(
            Point::parse_at("2026-11-30T12:00", now(), &tz).unwrap(),
            at("2026-11-30T10:00:00Z")
        );
    }

    #[test]
    fn bad_points_name_the_text() {
        for s in [
            "",
            "0",
            "tomorrow",
            "2026-13-01T00:00",
            "xh ago",
            "99999999999999999999",
        ] {
            let e = p(s).unwrap_err();
            assert!(e.to_string().contains(&format!("'{s}'")), "{e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("2 hours").unwrap(),
            Duration::from_secs(7200)
        );
        assert_eq!(parse_duration("1w").unwrap(), Duration::from_secs(604_800));
        for s in ["", "d", "5x", "-1d", "1.5h", "99999999999999d"] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }

    proptest! {
        #[test]
        fn point_parser_never_panics(s in "\\PC{0,40}") {
            let _ = p(&s);
            let _ = parse_duration(&s);
        }

        #[test]
        fn durations_round_trip(n in 0u64..30_000, u in prop::sample::select(vec![("s", 1u64), ("m", 60), ("h", 3600), ("d", 86400)])) {
            prop_assert_eq!(parse_duration(&format!("{n}{}", u.0)).unwrap(), Duration::from_secs(n * u.1));
        }
    }
}
