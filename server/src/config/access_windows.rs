//! When a class is open: weekly periods in the class's time zone (`mon-fri 08:00–16:30`,
//! several a day allowed) and the course's first and last days. Outside them sign-in and
//! chat are refused with `class_closed` and the next opening ([`AccessWindows::at`]).
//!
//! No periods and no dates: always open (the behaviour before windows existed). Dates
//! without periods: open all day on the course's days. The same [`PeriodSpec`] is what the
//! classes file, the admin API and the store's JSON column hold, so one parser checks all
//! three.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

/// At most this many periods a class (a school timetable has far fewer).
pub const MAX_PERIODS: usize = 50;

/// One weekly period as written: `{"days": ["mon-fri"], "start": "08:00", "end": "16:30"}`.
/// Days are `mon`…`sun` or a range such as `mon-fri`; times are `HH:MM` (24-hour) in the
/// class's time zone, `end` after `start` on the same day (`24:00` for midnight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodSpec {
    #[schema(example = json!(["mon-fri"]))]
    pub days: Vec<String>,
    #[schema(example = "08:00")]
    pub start: String,
    #[schema(example = "16:30")]
    pub end: String,
}

/// A checked period: the weekdays (Monday first) and minutes since midnight, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    days: [bool; 7],
    start: u16,
    end: u16,
}

/// A class's windows, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessWindows {
    pub periods: Vec<Period>,
    /// The course's first day (included), in the class's time zone.
    pub course_start: Option<Date>,
    /// The course's last day (included).
    pub course_end: Option<Date>,
}

/// Open now, or closed until `opens_at` (`None`: the course has ended, or no period is
/// left before its last day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Openness {
    Open,
    Closed { opens_at: Option<Zoned> },
}

/// What is wrong with the windows; nothing is saved. [`WindowsError::code`] is the admin
/// API's error code for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowsError {
    #[error("{0}")]
    BadPeriod(String),
    #[error("{0}")]
    Overlap(String),
    #[error("{0}")]
    BadDate(String),
    #[error("course_end {end} is before course_start {start}")]
    EndBeforeStart { start: Date, end: Date },
}

impl WindowsError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadPeriod(_) => "invalid_window",
            Self::Overlap(_) => "overlapping_windows",
            Self::BadDate(_) => "invalid_course_date",
            Self::EndBeforeStart { .. } => "course_ends_before_start",
        }
    }
}

const FULL: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// `mon` or `monday`, in any case.
fn day_index(name: &str) -> Option<usize> {
    let name = name.trim().to_ascii_lowercase();
    (0..7).find(|&i| name == DAYS[i].0 || name == FULL[i])
}

/// `HH:MM` as minutes since midnight; `24:00` only where `end` allows it.
fn minutes(field: &str, v: &str, allow_24: bool) -> Result<u16, String> {
    let bad = || format!("{field} {v:?} is not a time of day as HH:MM (24-hour, e.g. 08:00)");
    let (h, m) = v.trim().split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    match (h, m) {
        (24, 0) if allow_24 => Ok(24 * 60),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

impl Period {
    /// Checks one period; `n` (from 1) names it in the message.
    pub fn parse(n: usize, spec: &PeriodSpec) -> Result<Self, WindowsError> {
        let bad = |p: String| WindowsError::BadPeriod(format!("window {n}: {p}"));
        if spec.days.is_empty() {
            return Err(bad("days is empty (give e.g. [\"mon-fri\"])".into()));
        }
        let mut days = [false; 7];
        for d in &spec.days {
            let unknown = || {
                bad(format!(
                    "{d:?} is not a day (mon, tue, … sun, or a range such as mon-fri)"
                ))
            };
            match d.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (
                        day_index(a).ok_or_else(unknown)?,
                        day_index(b).ok_or_else(unknown)?,
                    );
                    if a > b {
                        return Err(bad(format!(
                            "the range {d:?} runs backwards (write it Monday first, e.g. mon-fri)"
                        )));
                    }
                    days[a..=b].iter_mut().for_each(|x| *x = true);
                }
                None => days[day_index(d).ok_or_else(unknown)?] = true,
            }
        }
        let start = minutes("start", &spec.start, false).map_err(bad)?;
        let end = minutes("end", &spec.end, true).map_err(bad)?;
        if end <= start {
            return Err(bad(format!(
                "end {} is not after start {} (a period ends on the day it starts)",
                spec.end.trim(),
                spec.start.trim()
            )));
        }
        Ok(Self { days, start, end })
    }

    /// The canonical form: each day named, times as `HH:MM`.
    pub fn spec(&self) -> PeriodSpec {
        PeriodSpec {
            days: DAYS
                .iter()
                .zip(self.days)
                .filter(|(_, on)| *on)
                .map(|((d, _), _)| (*d).to_owned())
                .collect(),
            start: hhmm(self.start),
            end: hhmm(self.end),
        }
    }

    fn on(&self, w: Weekday) -> bool {
        self.days[w.to_monday_zero_offset() as usize]
    }
}

fn date(field: &str, v: Option<&str>) -> Result<Option<Date>, WindowsError> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    v.parse::<Date>()
        .map(Some)
        .map_err(|_| WindowsError::BadDate(format!("{field} {v:?} is not a date as YYYY-MM-DD")))
}

impl AccessWindows {
    /// Checks periods and dates as they come from the file, the API or the store.
    pub fn parse(
        periods: &[PeriodSpec],
        course_start: Option<&str>,
        course_end: Option<&str>,
    ) -> Result<Self, WindowsError> {
        if periods.len() > MAX_PERIODS {
            return Err(WindowsError::BadPeriod(format!(
                "{} windows given, at most {MAX_PERIODS} are allowed",
                periods.len()
            )));
        }
        let periods = periods
            .iter()
            .enumerate()
            .map(|(i, p)| Period::parse(i + 1, p))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in periods.iter().enumerate() {
            for (j, b) in periods.iter().enumerate().skip(i + 1) {
                let shared = DAYS
                    .iter()
                    .enumerate()
                    .find(|(k, _)| a.days[*k] && b.days[*k]);
                if let Some((_, (day, _))) = shared
                    && a.start < b.end
                    && b.start < a.end
                {
                    return Err(WindowsError::Overlap(format!(
                        "windows {} ({}–{}) and {} ({}–{}) overlap on {day}: merge them into one",
                        i + 1,
                        hhmm(a.start),
                        hhmm(a.end),
                        j + 1,
                        hhmm(b.start),
                        hhmm(b.end)
                    )));
                }
            }
        }
        let course_start = date("course_start", course_start)?;
        let course_end = date("course_end", course_end)?;
        if let (Some(start), Some(end)) = (course_start, course_end)
            && end < start
        {
            return Err(WindowsError::EndBeforeStart { start, end });
        }
        Ok(Self {
            periods,
            course_start,
            course_end,
        })
    }

    /// The periods as written back (the API's answer, the store's column).
    pub fn specs(&self) -> Vec<PeriodSpec> {
        self.periods.iter().map(Period::spec).collect()
    }

    /// No period and no date: open at all times.
    pub fn always_open(&self) -> bool {
        self.periods.is_empty() && self.course_start.is_none() && self.course_end.is_none()
    }

    fn in_course(&self, d: Date) -> bool {
        self.course_start.is_none_or(|s| d >= s) && self.course_end.is_none_or(|e| d <= e)
    }

    /// Whether the class is open at `now` in `tz`, and if not, when it opens next.
    pub fn at(&self, now: Timestamp, tz: &TimeZone) -> Openness {
        if self.always_open() {
            return Openness::Open;
        }
        let here = now.to_zoned(tz.clone());
        let today = here.date();
        // Seconds since midnight, against periods in minutes: 16:29:59 is inside 08:00–16:30.
        let secs = i32::from(here.hour()) * 3600
            + i32::from(here.minute()) * 60
            + i32::from(here.second());
        let at_minute = |d: Date, m: u16| {
            let t = jiff::civil::Time::new((m / 60) as i8, (m % 60) as i8, 0, 0).ok()?;
            d.to_datetime(t).to_zoned(tz.clone()).ok()
        };
        if self.periods.is_empty() {
            return match self.course_start {
                _ if self.in_course(today) => Openness::Open,
                Some(s) if today < s => Openness::Closed {
                    opens_at: s.to_zoned(tz.clone()).ok(),
                },
                _ => Openness::Closed { opens_at: None },
            };
        }
        let inside = |p: &Period| {
            p.on(today.weekday()) && i32::from(p.start) * 60 <= secs && secs < i32::from(p.end) * 60
        };
        if self.in_course(today) && self.periods.iter().any(inside) {
            return Openness::Open;
        }
        // Periods repeat weekly: within eight days of the first course day from today,
        // the next one is found or there is none.
        let first = self.course_start.map_or(today, |s| s.max(today));
        let mut day = first;
        for _ in 0..8 {
            if self.course_end.is_some_and(|e| day > e) {
                break;
            }
            let mut starts: Vec<u16> = self
                .periods
                .iter()
                .filter(|p| p.on(day.weekday()))
                .filter(|p| day != today || i32::from(p.start) * 60 > secs)
                .map(|p| p.start)
                .collect();
            starts.sort_unstable();
            if let Some(m) = starts.first() {
                return Openness::Closed {
                    opens_at: at_minute(day, *m),
                };
            }
            let Ok(next) = day.tomorrow() else { break };
            day = next;
        }
        Openness::Closed { opens_at: None }
    }
}

/// `2026-12-08T08:00:00+08:00`: RFC 3339 with the class's offset, as `opens_at` carries it.
pub fn rfc3339(z: &Zoned) -> String {
    z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(days: &[&str], start: &str, end: &str) -> PeriodSpec {
        PeriodSpec {
            days: days.iter().map(|d| (*d).to_owned()).collect(),
            start: start.into(),
            end: end.into(),
        }
    }

    fn taipei() -> TimeZone {
        TimeZone::get("Asia/Taipei").unwrap()
    }

    /// A moment given in Taipei's local time.
    fn at(s: &str) -> Timestamp {
        s.parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(taipei())
            .unwrap()
            .timestamp()
    }

    fn opens(w: &AccessWindows, now: &str) -> Option<String> {
        match w.at(at(now), &taipei()) {
            Openness::Open => Some("open".into()),
            Openness::Closed { opens_at } => opens_at.map(|z| rfc3339(&z)),
        }
    }

    #[test]
    fn weekly_periods_open_and_say_when_they_open_next() {
        // 2026-12-07 is a Monday.
        let w = AccessWindows::parse(
            &[
                spec(&["mon-fri"], "08:00", "12:00"),
                spec(&["mon-fri"], "13:00", "16:30"),
                spec(&["sat"], "09:00", "10:00"),
            ],
            None,
            None,
        )
        .unwrap();
        assert_eq!(opens(&w, "2026-12-07T08:00").as_deref(), Some("open"));
        assert_eq!(opens(&w, "2026-12-07T16:29:59").as_deref(), Some("open"));
        assert_eq!(
            opens(&w, "2026-12-07T07:59:59").as_deref(),
            Some("2026-12-07T08:00:00+08:00")
        );
        assert_eq!(
            opens(&w, "2026-12-07T12:00").as_deref(),
            Some("2026-12-07T13:00:00+08:00"),
            "the lunch break"
        );
        assert_eq!(
            opens(&w, "2026-12-11T16:30").as_deref(),
            Some("2026-12-12T09:00:00+08:00"),
            "Friday evening: Saturday morning"
        );
        assert_eq!(
            opens(&w, "2026-12-12T11:00").as_deref(),
            Some("2026-12-14T08:00:00+08:00"),
            "Saturday after its period: Monday"
        );
        assert_eq!(
            w.specs()[0],
            spec(&["mon", "tue", "wed", "thu", "fri"], "08:00", "12:00")
        );
    }

    #[test]
    fn course_dates_bound_the_periods_and_an_ended_course_never_opens() {
        let w = AccessWindows::parse(
            &[spec(&["mon", "wed"], "10:00", "11:00")],
            Some("2026-12-09"),
            Some("2026-12-14"),
        )
        .unwrap();
        assert_eq!(
            opens(&w, "2026-12-07T10:30").as_deref(),
            Some("2026-12-09T10:00:00+08:00"),
            "a Monday before the course: its first Wednesday"
        );
        assert_eq!(opens(&w, "2026-12-14T10:30").as_deref(), Some("open"));
        assert_eq!(opens(&w, "2026-12-14T11:00"), None, "after the last period");
        assert_eq!(opens(&w, "2027-01-01T10:30"), None);

        let days_only = AccessWindows::parse(&[], Some("2026-12-09"), Some("2026-12-10")).unwrap();
        assert_eq!(
            opens(&days_only, "2026-12-08T23:00").as_deref(),
            Some("2026-12-09T00:00:00+08:00")
        );
        assert_eq!(
            opens(&days_only, "2026-12-10T23:59").as_deref(),
            Some("open")
        );
        assert_eq!(opens(&days_only, "2026-12-11T00:00"), None);
        assert!(AccessWindows::default().always_open());
        assert_eq!(
            AccessWindows::default().at(Timestamp::now(), &taipei()),
            Openness::Open
        );
    }

    #[test]
    fn malformed_and_overlapping_periods_are_refused_by_name() {
        let err = |p: &[PeriodSpec], s: Option<&str>, e: Option<&str>| {
            AccessWindows::parse(p, s, e).unwrap_err()
        };
        let e = err(&[spec(&["mon"], "8:00", "12:00")], None, None);
        assert_eq!(e.code(), "invalid_window");
        assert!(e.to_string().contains("window 1: start \"8:00\""), "{e}");
        let e = err(&[spec(&["someday"], "08:00", "12:00")], None, None);
        assert!(e.to_string().contains("\"someday\" is not a day"), "{e}");
        let e = err(&[spec(&["fri-mon"], "08:00", "12:00")], None, None);
        assert!(e.to_string().contains("backwards"), "{e}");
        let e = err(&[spec(&["mon"], "12:00", "08:00")], None, None);
        assert!(e.to_string().contains("not after start"), "{e}");
        assert_eq!(
            err(&[spec(&[], "08:00", "09:00")], None, None).code(),
            "invalid_window"
        );
        assert_eq!(
            err(&[spec(&["mon"], "08:00", "24:01")], None, None).code(),
            "invalid_window"
        );
        assert!(AccessWindows::parse(&[spec(&["sun"], "20:00", "24:00")], None, None).is_ok());

        let e = err(
            &[
                spec(&["mon-fri"], "08:00", "12:00"),
                spec(&["fri", "sat"], "11:00", "13:00"),
            ],
            None,
            None,
        );
        assert_eq!(e.code(), "overlapping_windows");
        assert!(
            e.to_string()
                .contains("windows 1 (08:00–12:00) and 2 (11:00–13:00) overlap on fri"),
            "{e}"
        );
        // Touching is not overlapping.
        assert!(
            AccessWindows::parse(
                &[
                    spec(&["mon"], "08:00", "12:00"),
                    spec(&["mon"], "12:00", "13:00")
                ],
                None,
                None
            )
            .is_ok()
        );

        assert_eq!(
            err(&[], Some("2026-13-01"), None).code(),
            "invalid_course_date"
        );
        let e = err(&[], Some("2026-12-10"), Some("2026-12-09"));
        assert_eq!(e.code(), "course_ends_before_start");
        assert!(
            e.to_string()
                .contains("2026-12-09 is before course_start 2026-12-10"),
            "{e}"
        );
    }
}
