//! The rules for one field at a time: names, kinds, metadata and tokens.
//! Shared by the writer (before it writes) and the parser (on every line
//! read), so that nothing a writer writes is refused by a reader.

use std::collections::BTreeMap;

use crate::entry::MAX_NAME_BYTES;

/// Most metadata fields on one entry.
const MAX_META_FIELDS: usize = 16;
/// Longest metadata value, in bytes.
const MAX_META_VALUE_BYTES: usize = 1024;
/// Longest kind (and metadata key).
const MAX_KIND_BYTES: usize = 32;

/// Task ids, peer and writer names: at most [`MAX_NAME_BYTES`], no control
/// characters (which would make a line's JSON escapes ambiguous to read and
/// a listing misleading).
pub(crate) fn check_name(text: &str) -> Result<(), String> {
    if text.len() > MAX_NAME_BYTES {
        return Err(format!(
            "{} bytes, more than the limit of {MAX_NAME_BYTES}",
            text.len()
        ));
    }
    if let Some(position) = text.chars().position(char::is_control) {
        return Err(format!("character {} is a control character", position + 1));
    }
    Ok(())
}

/// Kinds and metadata keys: `[a-z0-9-]{1,32}`.
pub(crate) fn check_kind(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > MAX_KIND_BYTES {
        return Err(format!(
            "expected 1 to {MAX_KIND_BYTES} characters, got {}",
            text.chars().count()
        ));
    }
    if let Some(position) = text
        .chars()
        .position(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        return Err(format!(
            "character {} of {:?} is not one of a-z 0-9 -",
            position + 1,
            shorten(text)
        ));
    }
    Ok(())
}

pub(crate) fn check_meta(meta: &BTreeMap<String, String>) -> Result<(), String> {
    if meta.len() > MAX_META_FIELDS {
        return Err(format!(
            "{} fields, more than the limit of {MAX_META_FIELDS}",
            meta.len()
        ));
    }
    for (key, value) in meta {
        check_kind(key).map_err(|r| format!("key: {r}"))?;
        if value.len() > MAX_META_VALUE_BYTES {
            return Err(format!(
                "`{key}`: {} bytes, more than the limit of {MAX_META_VALUE_BYTES}",
                value.len()
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(format!("`{key}`: contains a control character"));
        }
    }
    Ok(())
}

/// A Fernet token: non-empty url-safe base64.
pub(crate) fn check_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err("empty; expected a Fernet token".into());
    }
    if let Some(position) = token
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'='))
    {
        return Err(format!(
            "character {} is not url-safe base64; expected a Fernet token",
            position + 1
        ));
    }
    Ok(())
}

/// At most 40 characters of `text`, for messages about untrusted input.
pub(crate) fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        short.push_str("...");
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_the_decoder_knows_is_a_valid_kind() {
        for (kind, types) in crate::message_types() {
            assert!(check_kind(kind).is_ok(), "{kind}");
            assert!(!types.is_empty());
        }
    }

    #[test]
    fn kind_rule() {
        for good in ["update", "global-model", "a", "x0-9"] {
            assert!(check_kind(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Update",
            "global_model",
            "a b",
            &"a".repeat(33),
            "\u{e9}",
        ] {
            assert!(check_kind(bad).is_err(), "{bad}");
        }
    }
}
