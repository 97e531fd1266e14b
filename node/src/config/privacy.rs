//! The site's privacy budget settings (`[privacy]`, `--dp-epsilon`,
//! `--dp-delta`): the checks on ε and δ, and the budget taken from the flags
//! and the file.

use std::path::PathBuf;

use super::{NodeConfigError, NodeFile, RunFlags};

/// A site's ε budget must be finite and positive.
///
/// # Errors
/// What is wrong with it.
pub fn check_epsilon(epsilon: f64) -> Result<(), String> {
    if epsilon.is_finite() && epsilon > 0.0 {
        Ok(())
    } else {
        Err("expected a finite number > 0, e.g. 1.0".into())
    }
}

/// A site's δ must lie strictly between 0 and 1 (well below 1 / its rows).
///
/// # Errors
/// What is wrong with it.
pub fn check_delta(delta: f64) -> Result<(), String> {
    if delta > 0.0 && delta < 1.0 {
        Ok(())
    } else {
        Err("expected a number with 0 < δ < 1, e.g. 1e-5".into())
    }
}

/// The privacy budget from `--dp-epsilon`/`--dp-delta`, else the file's
/// `[privacy]`, each value on its own; both or neither must be given.
pub(super) fn privacy_budget(
    flags: &RunFlags,
    file: Option<&NodeFile>,
) -> Result<Option<medfed_secure::dp::Budget>, NodeConfigError> {
    let path = file.map(|f| f.source.clone());
    let flag_invalid = |key: &str, value: f64, problem: String| NodeConfigError::Invalid {
        path: PathBuf::from("(command line)"),
        line: None,
        key: key.to_owned(),
        value: value.to_string(),
        problem,
    };
    if let Some(e) = flags.dp_epsilon {
        check_epsilon(e).map_err(|p| flag_invalid("--dp-epsilon", e, p))?;
    }
    if let Some(d) = flags.dp_delta {
        check_delta(d).map_err(|p| flag_invalid("--dp-delta", d, p))?;
    }
    let epsilon = flags
        .dp_epsilon
        .or_else(|| file.and_then(|f| f.privacy_epsilon));
    let delta = flags
        .dp_delta
        .or_else(|| file.and_then(|f| f.privacy_delta));
    match (epsilon, delta) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(NodeConfigError::HalfBudget {
            path,
            given: "ε",
            absent: "δ",
            flag: "--dp-delta",
            key: "delta",
        }),
        (None, Some(_)) => Err(NodeConfigError::HalfBudget {
            path,
            given: "δ",
            absent: "ε",
            flag: "--dp-epsilon",
            key: "epsilon",
        }),
        (Some(e), Some(d)) => medfed_secure::dp::Budget::new(e, d)
            .map(Some)
            .map_err(|err| flag_invalid("[privacy]", e, err.to_string())),
    }
}
