//! What the checks (`classchat check`, and the same checks at start-up) found, kept for
//! the dashboard's Health panel: below both, so the dashboard imports no command.

use std::sync::Mutex;

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// Works, but not as students need it (a `PUBLIC_URL` only this machine or only the
    /// school's network reaches): not a failure, and never "all good" either.
    Warn,
    Fail,
    /// Not applicable, or not run because an earlier check failed.
    Skip,
}

/// One check's name and its one-sentence result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub name: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

impl CheckResult {
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Pass,
            detail: detail.into(),
        }
    }
    pub fn fail(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Fail,
            detail: detail.into(),
        }
    }
    pub fn warn(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Warn,
            detail: detail.into(),
        }
    }
    pub fn skip(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            outcome: Outcome::Skip,
            detail: detail.into(),
        }
    }

    /// `ok    name: detail`, as `classchat check` prints it.
    pub fn line(&self) -> String {
        let tag = match self.outcome {
            Outcome::Pass => "ok  ",
            Outcome::Warn => "warn",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "skip",
        };
        format!("{tag}  {}: {}", self.name, self.detail)
    }
}

/// The latest results, for the dashboard's Health panel.
#[derive(Debug, Default)]
pub struct Health(Mutex<Option<(jiff::Timestamp, Vec<CheckResult>)>>);

impl Health {
    pub fn set(&self, results: Vec<CheckResult>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((jiff::Timestamp::now(), results));
    }

    /// When the checks last finished and what they found; `None` while the first run is going.
    pub fn get(&self) -> Option<(jiff::Timestamp, Vec<CheckResult>)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
