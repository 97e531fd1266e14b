//! Turning the node file's TOML values into settings: each key's type and
//! range checked, paths resolved against the file's folder, and every
//! refusal naming the file, the line and the key.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use super::{
    NodeConfigError, NodeFile, check_address, check_delta, check_epsilon, check_server_name,
};

/// Longest `connect_timeout_seconds` accepted: one day.
pub const MAX_CONNECT_TIMEOUT_SECONDS: i64 = 86_400;

/// Turns spans into lines and values into settings, naming the file.
pub(super) struct Reader<'a> {
    pub(super) text: &'a str,
    pub(super) path: &'a Path,
}

impl Reader<'_> {
    /// 1-based line of the start of `span`.
    pub(super) fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    pub(super) fn unknown(
        &self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        table: &str,
        allowed: &'static [&'static str],
    ) -> NodeConfigError {
        NodeConfigError::UnknownKey {
            path: self.path.to_path_buf(),
            line: Some(self.line(&key.span())),
            table: table.to_owned(),
            key: key.get_ref().to_string(),
            allowed,
        }
    }

    pub(super) fn wrong_type(
        &self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        expected: &'static str,
    ) -> NodeConfigError {
        NodeConfigError::WrongType {
            path: self.path.to_path_buf(),
            line: Some(self.line(&value.span())),
            key: key.to_owned(),
            expected,
            got: value.get_ref().type_str(),
        }
    }

    pub(super) fn invalid(
        &self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        problem: &str,
    ) -> NodeConfigError {
        let written = self
            .text
            .get(value.span())
            .unwrap_or("the value")
            .to_owned();
        NodeConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: Some(self.line(&value.span())),
            key: key.to_owned(),
            value: written,
            problem: problem.to_owned(),
        }
    }

    /// A non-empty string.
    pub(super) fn text(
        &self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<String, NodeConfigError> {
        let DeValue::String(text) = value.get_ref() else {
            return Err(self.wrong_type(key, value, "a string"));
        };
        if text.trim().is_empty() {
            return Err(self.invalid(key, value, "expected a non-empty string"));
        }
        Ok(text.to_string())
    }

    /// A path, resolved against `base` when relative.
    pub(super) fn path(
        &self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        base: &Path,
    ) -> Result<PathBuf, NodeConfigError> {
        let DeValue::String(text) = value.get_ref() else {
            return Err(self.wrong_type(key, value, "a string (a file path)"));
        };
        if text.is_empty() {
            return Err(self.invalid(key, value, "expected a file path, got an empty string"));
        }
        Ok(base.join(text.as_ref()))
    }

    /// A TOML float or integer.
    pub(super) fn number(
        &self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<f64, NodeConfigError> {
        let parsed = match value.get_ref() {
            DeValue::Float(number) => number.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Integer(number) => {
                i64::from_str_radix(&number.as_str().replace('_', ""), number.radix())
                    .ok()
                    .map(|n| n as f64)
            }
            _ => return Err(self.wrong_type(key, value, "a number")),
        };
        parsed.ok_or_else(|| self.invalid(key, value, "expected a number"))
    }

    /// Stores `table.key = value` in `file`.
    pub(super) fn set(
        &self,
        file: &mut NodeFile,
        table: &str,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        base: &Path,
    ) -> Result<(), NodeConfigError> {
        let shown = format!("[{table}] {key}");
        let shown = shown.as_str();
        match (table, key) {
            ("coordinator", "address") => {
                let address = self.text(shown, value)?;
                check_address(&address).map_err(|problem| self.invalid(shown, value, &problem))?;
                file.coordinator = Some(address);
            }
            ("coordinator", "server_name") => {
                let name = self.text(shown, value)?;
                check_server_name(&name).map_err(|problem| self.invalid(shown, value, &problem))?;
                file.server_name = Some(name);
            }
            ("coordinator", "task_id") => file.task_id = Some(self.text(shown, value)?),
            ("coordinator", "connect_timeout_seconds") => {
                let DeValue::Integer(number) = value.get_ref() else {
                    return Err(self.wrong_type(shown, value, "an integer number of seconds"));
                };
                let seconds = i64::from_str_radix(number.as_str(), number.radix()).ok();
                match seconds {
                    Some(s) if (1..=MAX_CONNECT_TIMEOUT_SECONDS).contains(&s) => {
                        file.connect_timeout = Some(Duration::from_secs(s.unsigned_abs()));
                    }
                    Some(s) if s > MAX_CONNECT_TIMEOUT_SECONDS => {
                        return Err(self.invalid(
                            shown,
                            value,
                            &format!(
                                "expected at most {MAX_CONNECT_TIMEOUT_SECONDS} seconds (one day)"
                            ),
                        ));
                    }
                    _ => {
                        return Err(self.invalid(
                            shown,
                            value,
                            "expected a positive number of seconds",
                        ));
                    }
                }
            }
            ("vault", "path") => file.vault = Some(self.path(shown, value, base)?),
            ("vault", "key_file") => file.vault_key_file = Some(self.path(shown, value, base)?),
            ("tls", "ca") => file.ca = Some(self.path(shown, value, base)?),
            ("tls", "cert") => file.cert = Some(self.path(shown, value, base)?),
            ("tls", "key") => file.key = Some(self.path(shown, value, base)?),
            ("tls", "signing_key") => file.signing_key = Some(self.path(shown, value, base)?),
            ("audit", "log") => file.audit_log = Some(self.path(shown, value, base)?),
            ("audit", "key_file") => file.audit_key_file = Some(self.path(shown, value, base)?),
            ("privacy", "epsilon") => {
                let epsilon = self.number(shown, value)?;
                check_epsilon(epsilon).map_err(|problem| self.invalid(shown, value, &problem))?;
                file.privacy_epsilon = Some(epsilon);
            }
            ("privacy", "delta") => {
                let delta = self.number(shown, value)?;
                check_delta(delta).map_err(|problem| self.invalid(shown, value, &problem))?;
                file.privacy_delta = Some(delta);
            }
            ("policy", key) => super::policy::set(self, &mut file.policy, key, value, base)?,
            // SCHEMA and this match list the same keys; `parse` refuses any
            // other before calling here.
            _ => unreachable!("key {table}.{key} is in SCHEMA but not read"),
        }
        Ok(())
    }
}
