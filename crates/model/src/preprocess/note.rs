//! Findings about columns worth telling a person.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Something about a column found while summarising or fitting the
/// preprocessing. None of these stops training: each comes with a safe
/// choice that never divides by zero. (The older [`FeatureNote`] plays the
/// same role for the plain [`Standardization`].)
///
/// [`FeatureNote`]: super::FeatureNote
/// [`Standardization`]: super::Standardization
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ColumnNote {
    /// The column has no value (every row is NaN or an unknown-value code).
    /// Its outputs are filled with the imputation constant, or 0, and
    /// centred on it with scale 1, so they carry no information.
    AllMissing {
        /// The column's name.
        column: String,
    },
    /// An output column (a numeric column, or one category's `name=code`
    /// column) is constant, within rounding. Its scale is set to 1 so
    /// nothing is divided by zero.
    ZeroVariance {
        /// The output column's name.
        column: String,
    },
}

impl fmt::Display for ColumnNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnNote::AllMissing { column } => {
                write!(
                    f,
                    "column {column:?} has no values; it carries no information"
                )
            }
            ColumnNote::ZeroVariance { column } => {
                write!(f, "column {column:?} is constant; its scale is set to 1")
            }
        }
    }
}
