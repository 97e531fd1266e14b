//! A member's refusal: under its own policy (a rule of the hospital's node
//! file) or for a data reason (a missing column, labels the model cannot
//! take), the member declines a task or a step and leaves. The notice names
//! the rule and says why in plain words; it never carries a record value.

use crate::limits::{MAX_REFUSAL_REASON_BYTES, MAX_RULE_BYTES};

/// A member declines a task or a step and leaves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The step declined (0: the task itself, before any step).
    pub step: u64,
    /// The rule that refuses it: a node-file key of `[policy]`
    /// (`min_rows`, `columns`, ...) or a data reason (`missing_column`,
    /// `invalid_labels`).
    pub rule: String,
    /// Why, in plain words, with no record value.
    pub reason: String,
}

impl Refusal {
    /// A refusal of `step` by `rule`. An over-long reason is cut at a
    /// character boundary, so a notice always fits the wire's bounds.
    pub fn new(step: u64, rule: &str, reason: &str) -> Refusal {
        let mut end = reason.len().min(MAX_REFUSAL_REASON_BYTES);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        Refusal {
            step,
            rule: rule.to_owned(),
            reason: reason[..end].to_owned(),
        }
    }

    /// Checks the bounds a received notice must keep: a rule of 1 to
    /// [`MAX_RULE_BYTES`] bytes of `a-z`, `0-9` and `_`, and a reason of at
    /// most [`MAX_REFUSAL_REASON_BYTES`] bytes without control characters.
    ///
    /// # Errors
    /// What is wrong, naming the bound.
    pub fn validate(&self) -> Result<(), String> {
        let rule_ok = !self.rule.is_empty()
            && self.rule.len() <= MAX_RULE_BYTES
            && self
                .rule
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !rule_ok {
            return Err(format!(
                "the rule must be 1 to {MAX_RULE_BYTES} characters of a-z, 0-9 and _"
            ));
        }
        if self.reason.len() > MAX_REFUSAL_REASON_BYTES {
            return Err(format!(
                "the reason is {} bytes, more than {MAX_REFUSAL_REASON_BYTES}",
                self.reason.len()
            ));
        }
        if self.reason.chars().any(char::is_control) {
            return Err("the reason holds control characters".into());
        }
        Ok(())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused by rule `{}`: {}", self.rule, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reason_is_cut_at_a_character_boundary_and_fits() {
        let long = "é".repeat(MAX_REFUSAL_REASON_BYTES);
        let refusal = Refusal::new(3, "min_rows", &long);
        assert!(refusal.reason.len() <= MAX_REFUSAL_REASON_BYTES);
        assert!(refusal.reason.len() > MAX_REFUSAL_REASON_BYTES - 2);
        assert_eq!(refusal.validate(), Ok(()));
    }

    #[test]
    fn a_rule_outside_the_alphabet_or_a_control_character_is_refused() {
        for rule in ["", "Min_rows", "min-rows", &"a".repeat(MAX_RULE_BYTES + 1)] {
            assert!(Refusal::new(0, rule, "x").validate().is_err(), "{rule:?}");
        }
        assert!(Refusal::new(0, "min_rows", "a\nb").validate().is_err());
        assert_eq!(
            Refusal::new(0, "min_cell", "ok").to_string(),
            "refused by rule `min_cell`: ok"
        );
    }
}
