//! What a class's and an activity's fields may hold, and who may change which member: the
//! rules the dashboard's forms are checked by (the same limits as the admin API's).

use super::Role;
use crate::classes::check_starters;

pub const MAX_TITLE: usize = 200;
pub const MAX_GREETING: usize = 2_000;
pub const MAX_PROMPT: usize = 20_000;
pub const MAX_MODEL: usize = 200;
pub const MAX_RATE: i64 = 100_000;
pub const MIN_TTL_SECS: i64 = 60;
pub const MAX_TTL_SECS: i64 = 86_400 * 30;
/// A hundred years: longer than any school keeps anything.
pub const MAX_KEEP_DAYS: i64 = 36_500;

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Empty,
    TooLong(usize),
    NotANumber,
    OutOfRange(i64, i64),
    UnknownTimeZone,
    /// Not `off`, `flagged` or `full`.
    UnknownVisibility,
    /// The starters' own check, in English.
    Starters(String),
}

/// A field (its form name) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: &'static str,
    pub problem: Problem,
}

fn fail<T>(field: &'static str, problem: Problem) -> Result<T, FieldProblem> {
    Err(FieldProblem { field, problem })
}

/// Trimmed text of at most `max` characters; empty is refused when `required` and means
/// "unset" otherwise.
pub fn text(
    field: &'static str,
    v: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, FieldProblem> {
    let v = v.trim();
    if v.is_empty() {
        return if required {
            fail(field, Problem::Empty)
        } else {
            Ok(None)
        };
    }
    if v.chars().count() > max {
        return fail(field, Problem::TooLong(max));
    }
    Ok(Some(v.to_owned()))
}

/// A whole number in `min..=max`, or unset when blank.
pub fn number(
    field: &'static str,
    v: &str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, FieldProblem> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    match v.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        Ok(_) => fail(field, Problem::OutOfRange(min, max)),
        Err(_) => fail(field, Problem::NotANumber),
    }
}

/// Who can read the class's conversations; blank keeps what the class has.
pub fn visibility(
    field: &'static str,
    v: &str,
) -> Result<Option<classchat_shared::Visibility>, FieldProblem> {
    match v.trim() {
        "" => Ok(None),
        v => classchat_shared::Visibility::parse(v)
            .map(Some)
            .ok_or(FieldProblem {
                field,
                problem: Problem::UnknownVisibility,
            }),
    }
}

/// Messages per minute (at least 1) or a daily quota (0: none).
pub fn rate(field: &'static str, v: &str, min: i64) -> Result<Option<i64>, FieldProblem> {
    number(field, v, min, MAX_RATE)
}

/// A widget token's lifetime in seconds.
pub fn token_ttl(field: &'static str, v: &str) -> Result<Option<i64>, FieldProblem> {
    number(field, v, MIN_TTL_SECS, MAX_TTL_SECS)
}

/// Days a class keeps one kind of row (0: until erased), or unset (the server's) when blank.
pub fn keep_days(field: &'static str, v: &str) -> Result<Option<i64>, FieldProblem> {
    number(field, v, 0, MAX_KEEP_DAYS)
}

/// An IANA time zone name, or unset when blank.
pub fn time_zone(field: &'static str, v: &str) -> Result<Option<String>, FieldProblem> {
    let v = text(field, v, 64, false)?;
    if let Some(tz) = &v
        && jiff::tz::TimeZone::get(tz).is_err()
    {
        return fail(field, Problem::UnknownTimeZone);
    }
    Ok(v)
}

/// Conversation starters, one per line; blank lines are skipped.
pub fn starters(field: &'static str, lines: &str) -> Result<Vec<String>, FieldProblem> {
    let given: Vec<String> = lines
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    check_starters(&given).or_else(|p| fail(field, Problem::Starters(p)))
}

/// Why a change to the members was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRefusal {
    /// An owner may not lower their own role: another owner or the administrator must.
    OwnRole,
    /// An owner may not remove themselves.
    RemoveSelf,
}

/// Whether the member change the caller (`caller_teacher`: `None` for the administrator)
/// asks for is allowed once their role allows changing members at all: `new_role` `None`
/// removes `target`.
pub fn check_member_change(
    caller_teacher: Option<&str>,
    target: &str,
    new_role: Option<Role>,
) -> Result<(), MemberRefusal> {
    if caller_teacher != Some(target) {
        return Ok(());
    }
    match new_role {
        None => Err(MemberRefusal::RemoveSelf),
        Some(Role::Owner) => Ok(()),
        Some(_) => Err(MemberRefusal::OwnRole),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_trimmed_bounded_and_blank_means_unset() {
        assert_eq!(text("title", "  Bio ", 10, true), Ok(Some("Bio".into())));
        assert_eq!(
            text("title", " ", 10, true).unwrap_err().problem,
            Problem::Empty
        );
        assert_eq!(text("greeting", "", 10, false), Ok(None));
        assert_eq!(
            text("title", "x".repeat(11).as_str(), 10, true)
                .unwrap_err()
                .problem,
            Problem::TooLong(10)
        );
        assert_eq!(rate("daily_quota", "0", 0), Ok(Some(0)));
        assert_eq!(rate("daily_quota", "", 0), Ok(None));
        assert_eq!(
            rate("messages_per_minute", "0", 1).unwrap_err().problem,
            Problem::OutOfRange(1, MAX_RATE)
        );
        assert_eq!(
            rate("messages_per_minute", "ten", 1).unwrap_err().problem,
            Problem::NotANumber
        );
        assert_eq!(
            token_ttl("t", "59").unwrap_err().problem.clone(),
            Problem::OutOfRange(60, MAX_TTL_SECS)
        );
        assert_eq!(
            time_zone("tz", "Asia/Taipei"),
            Ok(Some("Asia/Taipei".into()))
        );
        assert_eq!(
            time_zone("tz", "Mars/Olympus").unwrap_err().problem,
            Problem::UnknownTimeZone
        );
        assert_eq!(
            starters("starters", "a\n\n b \n"),
            Ok(vec!["a".to_owned(), "b".to_owned()])
        );
    }

    #[test]
    fn owners_cannot_lower_or_remove_themselves() {
        use Role::*;
        assert_eq!(
            check_member_change(Some("t_1"), "t_1", Some(CoTeacher)),
            Err(MemberRefusal::OwnRole)
        );
        assert_eq!(
            check_member_change(Some("t_1"), "t_1", None),
            Err(MemberRefusal::RemoveSelf)
        );
        assert_eq!(check_member_change(Some("t_1"), "t_1", Some(Owner)), Ok(()));
        assert_eq!(check_member_change(Some("t_1"), "t_2", None), Ok(()));
        assert_eq!(check_member_change(None, "t_1", Some(Assistant)), Ok(()));
    }
}
