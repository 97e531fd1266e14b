//! The naming rule for consortium members and the coordinator.

use crate::CertsError;

/// The longest name accepted (the X.509 upper bound for a Common Name).
pub const MAX_NAME_LEN: usize = 64;

/// Checks a member or coordinator name: 1 to [`MAX_NAME_LEN`] characters,
/// lowercase ASCII letters, digits, `-`, `_` and `.`, starting with a letter
/// or digit. The name becomes the certificate's Common Name, which is the
/// member's identity on the wire and in the task's member list, so it must
/// be unambiguous and safe to print and to use as a file name.
///
/// # Errors
/// [`CertsError::BadName`] naming the rule broken.
pub fn check_name(name: &str) -> Result<(), CertsError> {
    let bad = |reason| {
        Err(CertsError::BadName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("a name cannot be empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("a name has at most 64 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
    {
        return bad("use lowercase letters a-z, digits 0-9, '-', '_' and '.' only");
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return bad("a name starts with a letter or a digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_pass() {
        for name in ["cleveland", "hospital-a", "st.mary_2", "a", &"x".repeat(64)] {
            check_name(name).unwrap();
        }
    }

    #[test]
    fn bad_names_say_why() {
        for (name, reason) in [
            ("", "empty"),
            ("Hospital", "lowercase"),
            ("a b", "lowercase"),
            ("../etc", "lowercase"),
            ("-a", "starts with"),
            (".a", "starts with"),
            (&"x".repeat(65), "64"),
        ] {
            let error = check_name(name).unwrap_err().to_string();
            assert!(error.contains(reason), "{name:?}: {error}");
        }
    }
}
