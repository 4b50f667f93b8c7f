//! Allowances that follow the student (issue 24): for a student known by identity (a
//! personal code, or an LTI launch), a class's per-student messages per local day and per
//! week count across all their sessions, devices and replicas, in the store (one row per
//! student and period; on PostgreSQL shared by every replica). Class-code students have no
//! identity, so theirs stay the per-session limits of `limits`.
//!
//! Called from the chat path beside `limits::admit_message`: [`admit`] before it, and
//! [`Admitted::give_back`] when that refuses the message.

use classchat_shared::{Allowance, LimitKind, LimitsLeft};
use jiff::Zoned;

use crate::error::AppError;
use crate::store::Store;
use crate::store::allowances::{AllowanceRecord, Counted, Period};

/// The student key of a personal code's holder.
pub fn code_student(code_id: &str) -> String {
    format!("code:{code_id}")
}

/// The student key of an LTI user (the keyed digest of issuer and `sub`).
pub fn lti_student(user_digest: &str) -> String {
    format!("lti:{user_digest}")
}

/// The keys of the local day and week (starting Monday) `now` falls in, and the seconds
/// until each ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Periods {
    pub day: String,
    pub week: String,
    pub day_ends_in: u64,
    pub week_ends_in: u64,
}

impl Periods {
    pub fn at(now: &Zoned) -> Self {
        let date = now.date();
        let monday = date
            .checked_sub(jiff::Span::new().days(i64::from(date.weekday().to_monday_zero_offset())))
            .unwrap_or(date);
        let until = |d: jiff::civil::Date| {
            d.to_zoned(now.time_zone().clone())
                .ok()
                .and_then(|m| now.until(&m).ok())
                .and_then(|s| s.total(jiff::Unit::Second).ok())
                .map_or(3600, |s| s.max(1.0) as u64)
        };
        let next_day = date.tomorrow().unwrap_or(date);
        let next_week = monday
            .checked_add(jiff::Span::new().days(7))
            .unwrap_or(next_day);
        Self {
            day: format!("d:{date}"),
            week: format!("w:{monday}"),
            day_ends_in: until(next_day),
            week_ends_in: until(next_week),
        }
    }
}

/// A message counted against a student's allowance, and what is left of it.
#[derive(Debug, Clone)]
#[must_use = "give the message back when another limit refuses it"]
pub struct Admitted {
    class_id: String,
    student: String,
    counted: Vec<String>,
    /// The tighter of the day's and the week's allowance after this message.
    pub left: Option<Allowance>,
}

impl Admitted {
    /// Un-counts the message: another limit refused it.
    pub async fn give_back(self, store: &Store) {
        let periods: Vec<&str> = self.counted.iter().map(String::as_str).collect();
        if let Err(e) = store
            .uncount_student_message(&self.class_id, &self.student, &periods)
            .await
        {
            tracing::warn!(class = %self.class_id, error = %e, "a refused message's allowance could not be given back");
        }
    }

    /// The widget's `day` figures: the tighter of the class's quota and this allowance.
    pub fn merge(&self, left: Option<LimitsLeft>) -> Option<LimitsLeft> {
        let Some(mine) = self.left else { return left };
        let mut left = left.unwrap_or(LimitsLeft {
            minute: None,
            day: None,
        });
        left.day = Some(match left.day {
            Some(day) if day.left <= mine.left => day,
            _ => mine,
        });
        Some(left)
    }
}

/// [`admit`] for the student a widget token names, if it names one (class-code students
/// do not: their limits stay per session).
pub async fn admit_session(
    store: &Store,
    claims: &crate::auth::token::Claims,
    class_id: &str,
    now: &Zoned,
) -> Result<Option<Admitted>, AppError> {
    match &claims.stu {
        Some(student) => admit(store, class_id, student, now).await,
        None => Ok(None),
    }
}

/// The figures the widget shows, with the student's allowance where it is the tighter.
pub fn merge(student: &Option<Admitted>, left: Option<LimitsLeft>) -> Option<LimitsLeft> {
    match student {
        Some(a) => a.merge(left),
        None => left,
    }
}

/// Gives a counted message back, if one was counted.
pub async fn give_back(student: Option<Admitted>, store: &Store) {
    if let Some(a) = student {
        a.give_back(store).await;
    }
}

/// Counts one message of `student` in `class_id` against the class's allowance, if it has
/// one. `Ok(None)`: no allowance is set, nothing counted.
pub async fn admit(
    store: &Store,
    class_id: &str,
    student: &str,
    now: &Zoned,
) -> Result<Option<Admitted>, AppError> {
    let allowance = store
        .student_allowance(class_id)
        .await
        .map_err(AppError::DatabaseAway)?
        .unwrap_or_default();
    let p = Periods::at(now);
    let mut periods = Vec::new();
    // (limit, seconds to its end, whether it is the week)
    let mut meta = Vec::new();
    if allowance.per_day > 0 {
        periods.push(Period {
            key: &p.day,
            limit: allowance.per_day,
        });
        meta.push((allowance.per_day, p.day_ends_in, false));
    }
    if allowance.per_week > 0 {
        periods.push(Period {
            key: &p.week,
            limit: allowance.per_week,
        });
        meta.push((allowance.per_week, p.week_ends_in, true));
    }
    if periods.is_empty() {
        return Ok(None);
    }
    match store
        .count_student_message(class_id, student, &periods)
        .await
        .map_err(AppError::DatabaseAway)?
    {
        Counted::Full(i) => {
            let (_, secs, week) = meta[i];
            Err(refused(week, secs))
        }
        Counted::Admitted(used) => {
            let left = used
                .iter()
                .zip(&meta)
                .map(|(n, (limit, secs, _))| Allowance {
                    left: (limit - n).clamp(0, i64::from(u32::MAX)) as u32,
                    reset_secs: *secs,
                })
                .min_by_key(|a| a.left);
            Ok(Some(Admitted {
                class_id: class_id.to_owned(),
                student: student.to_owned(),
                counted: periods.iter().map(|p| p.key.to_owned()).collect(),
                left,
            }))
        }
    }
}

/// The refusal a student reads when their own allowance is spent: the widget says whose
/// messages are used up, and when the day's come back (the week's start on Monday).
fn refused(week: bool, secs: u64) -> AppError {
    AppError::limit_hit(
        if week {
            LimitKind::StudentWeek
        } else {
            LimitKind::StudentDay
        },
        secs,
        if week {
            "You have used your messages for this week. Your allowance starts again on Monday."
        } else {
            "You have used your messages for today. Please try again tomorrow."
        },
    )
}

/// How much of an allowance a count is, for the dashboard: `Some(true)` over (or at) the
/// limit, `Some(false)` close to it (80 % or more), `None` neither or no limit.
pub fn standing(used: i64, limit: i64) -> Option<bool> {
    if limit <= 0 {
        None
    } else if used >= limit {
        Some(true)
    } else if used * 5 >= limit * 4 {
        Some(false)
    } else {
        None
    }
}

/// A class's allowance as the dashboard's form reads it: each a whole number, 0 for none.
pub fn parse_allowance(per_day: &str, per_week: &str) -> Result<AllowanceRecord, &'static str> {
    let n = |s: &str, field: &'static str| {
        let s = s.trim();
        if s.is_empty() {
            return Ok(0);
        }
        s.parse::<u32>()
            .ok()
            .filter(|n| *n <= 100_000)
            .map(i64::from)
            .ok_or(field)
    };
    Ok(AllowanceRecord {
        per_day: n(per_day, "per_day")?,
        per_week: n(per_week, "per_week")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_the_local_day_and_the_week_from_monday() {
        let tz = jiff::tz::TimeZone::get("Asia/Taipei").unwrap();
        // Sunday 2026-12-13 23:30 in Taipei is still in the week of Monday 2026-12-07.
        let now = jiff::civil::date(2026, 12, 13)
            .at(23, 30, 0, 0)
            .to_zoned(tz.clone())
            .unwrap();
        let p = Periods::at(&now);
        assert_eq!(p.day, "d:2026-12-13");
        assert_eq!(p.week, "w:2026-12-07");
        assert_eq!(p.day_ends_in, 30 * 60);
        assert_eq!(p.week_ends_in, 30 * 60);
        let monday = jiff::civil::date(2026, 12, 7)
            .at(0, 0, 0, 0)
            .to_zoned(tz)
            .unwrap();
        let p = Periods::at(&monday);
        assert_eq!(p.week, "w:2026-12-07");
        assert_eq!(p.week_ends_in, 7 * 86_400);
    }

    #[test]
    fn close_means_eighty_percent_and_over_means_at_the_limit() {
        assert_eq!(standing(3, 5), None);
        assert_eq!(standing(4, 5), Some(false));
        assert_eq!(standing(5, 5), Some(true));
        assert_eq!(standing(9, 0), None);
        assert_eq!(
            parse_allowance(" 5 ", ""),
            Ok(AllowanceRecord {
                per_day: 5,
                per_week: 0
            })
        );
        assert_eq!(parse_allowance("-1", ""), Err("per_day"));
        assert_eq!(parse_allowance("1", "x"), Err("per_week"));
    }

    #[test]
    fn the_tighter_figure_shows() {
        let a = Admitted {
            class_id: "c".into(),
            student: "s".into(),
            counted: vec![],
            left: Some(Allowance {
                left: 2,
                reset_secs: 10,
            }),
        };
        let class_day = |left| LimitsLeft {
            minute: None,
            day: Some(Allowance {
                left,
                reset_secs: 99,
            }),
        };
        assert_eq!(a.merge(None).unwrap().day.unwrap().left, 2);
        assert_eq!(a.merge(Some(class_day(7))).unwrap().day.unwrap().left, 2);
        assert_eq!(a.merge(Some(class_day(1))).unwrap().day.unwrap().left, 1);
    }
}
