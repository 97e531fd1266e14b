//! Which regression a task trains.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The model family. It fixes the loss, the link from the linear predictor to
/// a prediction, and which labels are valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Logistic regression: labels 0/1, log-loss, predictions are probabilities.
    Logistic,
    /// Linear regression: finite labels, squared error, predictions are values.
    Linear,
}

impl ModelKind {
    /// What a label must be for this kind, for error messages.
    pub(crate) fn label_rule(self) -> &'static str {
        match self {
            ModelKind::Logistic => "exactly 0 or 1",
            ModelKind::Linear => "a finite number",
        }
    }

    /// Whether `y` is a valid label for this kind.
    #[inline]
    pub(crate) fn is_valid_label(self, y: f64) -> bool {
        match self {
            ModelKind::Logistic => y == 0.0 || y == 1.0,
            ModelKind::Linear => y.is_finite(),
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelKind::Logistic => "logistic",
            ModelKind::Linear => "linear",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_the_serde_names() {
        assert_eq!(ModelKind::Logistic.to_string(), "logistic");
        assert_eq!(ModelKind::Linear.to_string(), "linear");
    }

    #[test]
    fn label_rules() {
        assert!(ModelKind::Logistic.is_valid_label(0.0));
        assert!(ModelKind::Logistic.is_valid_label(1.0));
        assert!(!ModelKind::Logistic.is_valid_label(0.5));
        assert!(!ModelKind::Logistic.is_valid_label(f64::NAN));
        assert!(ModelKind::Linear.is_valid_label(-3.5));
        assert!(!ModelKind::Linear.is_valid_label(f64::INFINITY));
        assert!(!ModelKind::Linear.is_valid_label(f64::NAN));
    }
}
