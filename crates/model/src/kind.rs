//! Which regression a task trains.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The registry of model families a task can name. Each kind's family
/// ([`crate::family`]) fixes the loss, the link from the linear predictor to
/// a prediction, and which labels are valid; the kind-level methods that
/// ask it live beside the families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Logistic regression: labels 0/1, log-loss, predictions are probabilities.
    Logistic,
    /// Linear regression: finite labels, squared error, predictions are values.
    Linear,
    /// Poisson regression: whole-number counts `>= 0`, log link, half the
    /// deviance; predictions are expected counts (rates).
    Poisson,
}

impl ModelKind {
    /// Every registered kind, in a fixed order.
    pub const ALL: [ModelKind; 3] = [ModelKind::Logistic, ModelKind::Linear, ModelKind::Poisson];

    /// The kind of that lowercase name, as in task files.
    pub fn from_name(name: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_the_serde_names() {
        assert_eq!(ModelKind::Logistic.to_string(), "logistic");
        assert_eq!(ModelKind::Linear.to_string(), "linear");
        assert_eq!(ModelKind::Poisson.to_string(), "poisson");
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
        assert!(ModelKind::Poisson.is_valid_label(0.0));
        assert!(ModelKind::Poisson.is_valid_label(3.0));
        assert!(!ModelKind::Poisson.is_valid_label(1.5));
        assert!(!ModelKind::Poisson.is_valid_label(-1.0));
    }
}
