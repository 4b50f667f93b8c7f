//! Personal codes (issue 24): one code per student of a class, made from a list of names
//! the teacher pastes. The student signs in with it where a class code goes (the same
//! field, the same wrong-code limits) and the session's name is the teacher's, not typed;
//! the session's student key ([`crate::allowances::code_student`]) carries their allowance
//! across sessions. Only a keyed digest of each code is stored, as for the dashboard's
//! class codes; a code is revoked or re-issued alone, ending the sessions signed in with it.

use crate::classes::{ClassList, CodeKeys, generate_code};
use crate::store::Store;
use crate::store::personal_codes::PersonalCodeRecord;

/// Most names one paste may hold.
pub const MAX_NAMES: usize = 200;

/// Why a pasted list of names was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamesProblem {
    Empty,
    TooMany,
}

/// The names of a pasted list: one per line (a spreadsheet column pastes so), blank lines
/// skipped, each as `clean` leaves it (a name it rejects refuses the list: `Err(line)`).
pub fn split_names<E>(
    text: &str,
    mut clean: impl FnMut(&str) -> Result<Option<String>, E>,
) -> Result<Result<Vec<String>, NamesProblem>, (usize, E)> {
    let mut names = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(name) = clean(line).map_err(|e| (i + 1, e))? {
            names.push(name);
        }
    }
    Ok(if names.is_empty() {
        Err(NamesProblem::Empty)
    } else if names.len() > MAX_NAMES {
        Err(NamesProblem::TooMany)
    } else {
        Ok(names)
    })
}

/// A fresh code that is no class's or activity's code, and its stored (digest) form.
pub fn fresh_code(classes: &ClassList, keys: &CodeKeys) -> (String, String) {
    loop {
        let code = generate_code();
        if classes.find_by_code(&code).is_none() {
            let stored = keys.store(&code);
            return (code, stored);
        }
    }
}

/// The personal code in force that `input` is, if any (compared trimmed and
/// case-insensitively, by its digest under the current and the previous AUTH_SECRET).
pub async fn find(
    store: &Store,
    keys: &CodeKeys,
    input: &str,
) -> sqlx::Result<Option<PersonalCodeRecord>> {
    let code = crate::classes::normalize_code(input);
    if code.is_empty() || code.chars().count() > classchat_shared::limits::MAX_ACCESS_CODE_CHARS {
        return Ok(None);
    }
    store.find_personal_code(&keys.stored_forms(&code)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(line: &str) -> Result<Option<String>, ()> {
        let t = line.trim();
        Ok((!t.is_empty()).then(|| t.to_owned()))
    }

    #[test]
    fn a_pasted_column_becomes_names_without_blank_lines() {
        assert_eq!(
            split_names("Mei Lin\r\n\n  Chen Wei \n", keep),
            Ok(Ok(vec!["Mei Lin".to_owned(), "Chen Wei".to_owned()]))
        );
        assert_eq!(split_names(" \n\n", keep), Ok(Err(NamesProblem::Empty)));
        let many = "x\n".repeat(MAX_NAMES + 1);
        assert_eq!(split_names(&many, keep), Ok(Err(NamesProblem::TooMany)));
        let refuse = |l: &str| {
            if l == "bad" {
                Err("long")
            } else {
                keep(l).map_err(|_| "")
            }
        };
        assert_eq!(split_names("a\nbad", refuse), Err((2, "long")));
    }

    #[test]
    fn codes_are_found_by_their_digest_under_either_key() {
        use secrecy::SecretString;
        let old = SecretString::from("o".repeat(32));
        let new = SecretString::from("n".repeat(32));
        let before = CodeKeys::new(&old, None);
        let after = CodeKeys::new(&new, Some(&old));
        let stored = before.store("abcd-efgh");
        assert!(after.stored_forms(" ABCD-efgh ").contains(&stored));
        assert_ne!(after.stored_forms("abcd-efgh")[0], stored);
    }
}
