//! The preprocessing every site applies, fitted once from merged
//! aggregates and published by the coordinator.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::histogram::ColumnHistogram;
use super::note::ColumnNote;
use super::spec::{
    Cell, ColumnSpec, Impute, Transform, check_codes, check_name, check_unique_outputs,
    check_unknown_values, classify, output_names, spec_error, validate_specs,
};
use super::summary::{ColumnSummary, column_notes};
use crate::check;
use crate::error::ModelError;

/// How one output column's raw values become design-matrix values:
/// `(value - center) / scale`, with `fill` standing in for a missing value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scaling {
    /// The raw value used when the value is missing.
    pub fill: f64,
    /// Subtracted first.
    pub center: f64,
    /// Divided by next; finite and positive.
    pub scale: f64,
}

/// How a raw column is encoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// One output column.
    Numeric(Scaling),
    /// One 0/1 output column per code, each then scaled; a missing value
    /// gives each column its `fill` (e.g. the category's share).
    Categorical {
        /// The category codes, in output order.
        codes: Vec<i64>,
        /// One scaling per code.
        dummies: Vec<Scaling>,
    },
}

/// One raw column of a [`FittedPreprocessor`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FittedColumn {
    /// The column's name.
    pub name: String,
    /// Raw values that mean "unknown", treated as missing.
    pub unknown_values: Vec<f64>,
    /// Whether a `<name>_missing` 0/1 column follows the value columns.
    pub missing_indicator: bool,
    /// How values are encoded.
    pub encoding: Encoding,
}

/// The fitted preprocessing: turns a raw matrix (NaN for missing, columns
/// in spec order) into the design matrix, identically at every site.
/// Serialisable, so the coordinator can publish it and store it with the
/// model; [`FittedPreprocessor::validate`] checks a received one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FittedPreprocessor {
    /// The raw columns, in input order.
    pub columns: Vec<FittedColumn>,
}

impl FittedPreprocessor {
    /// Fits the preprocessing from merged [`ColumnSummary`]s and, for columns
    /// imputed by their median, merged histograms from the
    /// [`HistogramPlan`](super::HistogramPlan) built from the same
    /// summaries (pass `None` if the plan was empty). Returns notes on
    /// columns that need a person's attention.
    ///
    /// Per output column: `Standardize` centres on the mean and divides by
    /// the population standard deviation; `MinMax` centres on the minimum
    /// and divides by the range; `None` leaves values alone. A constant
    /// column gets scale 1 ([`ColumnNote::ZeroVariance`]); a column with no
    /// values gets fill 0 (or its constant), centre equal to the fill and
    /// scale 1 ([`ColumnNote::AllMissing`]). For a categorical column the
    /// statistics of each 0/1 column follow exactly from the category
    /// counts, and mean imputation fills each with its category's share.
    ///
    /// # Errors
    /// As [`validate_specs`] and [`ColumnSummary::validate`];
    /// [`ModelError::Dimension`] if there is not one summary (and histogram
    /// entry) per spec; [`ModelError::MissingHistogram`] if a median column
    /// lacks a histogram over its summary's range;
    /// [`ModelError::InvalidColumnAggregate`] if a histogram is invalid or
    /// its total differs from the summary's count (the passes saw different
    /// rows).
    pub fn fit(
        specs: &[ColumnSpec],
        summaries: &[ColumnSummary],
        histograms: Option<&[Option<ColumnHistogram>]>,
    ) -> Result<(FittedPreprocessor, Vec<ColumnNote>), ModelError> {
        validate_specs(specs)?;
        check::length("column summaries", specs.len(), summaries.len())?;
        if let Some(h) = histograms {
            check::length("column histograms", specs.len(), h.len())?;
        }
        let mut notes = Vec::new();
        let mut columns = Vec::with_capacity(specs.len());
        for (i, (spec, summary)) in specs.iter().zip(summaries).enumerate() {
            summary.validate(spec)?;
            column_notes(spec, summary, &mut notes);
            let encoding = match &spec.categories {
                None => {
                    let histogram = histograms.and_then(|h| h.get(i)).and_then(Option::as_ref);
                    Encoding::Numeric(numeric_scaling(spec, summary, histogram)?)
                }
                Some(codes) => Encoding::Categorical {
                    codes: codes.clone(),
                    dummies: dummy_scalings(spec, codes, summary),
                },
            };
            columns.push(FittedColumn {
                name: spec.name.clone(),
                unknown_values: spec.unknown_values.clone(),
                missing_indicator: spec.missing_indicator,
                encoding,
            });
        }
        Ok((FittedPreprocessor { columns }, notes))
    }

    /// Names of the design matrix's columns, in order: per raw column,
    /// `name` or `name=code` for each category, then `name_missing` if it
    /// has an indicator.
    pub fn output_names(&self) -> Vec<String> {
        self.columns
            .iter()
            .flat_map(FittedColumn::output_names)
            .collect()
    }

    /// Number of design-matrix columns.
    pub fn width(&self) -> usize {
        self.columns.iter().map(FittedColumn::width).sum()
    }

    /// Checks a preprocessor received from elsewhere: per column the rules
    /// of [`ColumnSpec::validate`] for the name, unknown values and codes,
    /// one scaling per code, finite fills and centres, finite positive
    /// scales; and unique column and output names.
    ///
    /// # Errors
    /// [`ModelError::InvalidColumnSpec`] naming the first offending column
    /// and field.
    pub fn validate(&self) -> Result<(), ModelError> {
        for column in &self.columns {
            column.validate()?;
        }
        check_unique_outputs(
            self.columns
                .iter()
                .map(|c| (c.name.as_str(), c.output_names())),
        )
    }

    /// The design matrix of a raw matrix: NaN (or an unknown-value code)
    /// means missing, columns are in the fitted order. The result has
    /// [`FittedPreprocessor::width`] columns named by
    /// [`FittedPreprocessor::output_names`], and is finite.
    ///
    /// # Errors
    /// As [`FittedPreprocessor::validate`]; [`ModelError::Dimension`] if
    /// `raw` does not have one column per fitted column;
    /// [`ModelError::NonFiniteFeature`] for an infinite value;
    /// [`ModelError::UnknownCategory`] naming the column and row (never the
    /// value) of a categorical value that is not one of its codes.
    pub fn apply(&self, raw: ArrayView2<'_, f64>) -> Result<Array2<f64>, ModelError> {
        self.validate()?;
        check::length("raw columns", self.columns.len(), raw.ncols())?;
        let mut out = Array2::zeros((raw.nrows(), self.width()));
        for (row, (values, mut target)) in raw.rows().into_iter().zip(out.rows_mut()).enumerate() {
            let mut at = 0;
            for (column, (fitted, &v)) in self.columns.iter().zip(&values).enumerate() {
                let codes = match &fitted.encoding {
                    Encoding::Numeric(_) => None,
                    Encoding::Categorical { codes, .. } => Some(codes.as_slice()),
                };
                let cell = classify(v, &fitted.name, &fitted.unknown_values, codes, row, column)?;
                match &fitted.encoding {
                    Encoding::Numeric(s) => {
                        let raw_value = match cell {
                            Cell::Value(v) => v,
                            _ => s.fill,
                        };
                        target[at] = (raw_value - s.center) / s.scale;
                        at += 1;
                    }
                    Encoding::Categorical { dummies, .. } => {
                        for (k, s) in dummies.iter().enumerate() {
                            let raw_value = match cell {
                                Cell::Category(hit) => f64::from(u8::from(hit == k)),
                                _ => s.fill,
                            };
                            target[at] = (raw_value - s.center) / s.scale;
                            at += 1;
                        }
                    }
                }
                if fitted.missing_indicator {
                    target[at] = f64::from(u8::from(cell == Cell::Missing));
                    at += 1;
                }
            }
        }
        Ok(out)
    }
}

impl FittedColumn {
    fn codes(&self) -> Option<&[i64]> {
        match &self.encoding {
            Encoding::Numeric(_) => None,
            Encoding::Categorical { codes, .. } => Some(codes),
        }
    }

    fn output_names(&self) -> Vec<String> {
        output_names(&self.name, self.codes(), self.missing_indicator)
    }

    fn width(&self) -> usize {
        let values = match &self.encoding {
            Encoding::Numeric(_) => 1,
            Encoding::Categorical { dummies, .. } => dummies.len(),
        };
        values + usize::from(self.missing_indicator)
    }

    fn validate(&self) -> Result<(), ModelError> {
        check_name(&self.name)?;
        check_unknown_values(&self.name, &self.unknown_values, self.codes())?;
        let scalings = match &self.encoding {
            Encoding::Numeric(s) => std::slice::from_ref(s),
            Encoding::Categorical { codes, dummies } => {
                check_codes(&self.name, codes)?;
                if dummies.len() != codes.len() {
                    return Err(spec_error(
                        &self.name,
                        "dummies",
                        "must have one scaling per category code",
                    ));
                }
                dummies
            }
        };
        let valid = |s: &Scaling| {
            s.fill.is_finite() && s.center.is_finite() && s.scale.is_finite() && s.scale > 0.0
        };
        if !scalings.iter().all(valid) {
            return Err(spec_error(
                &self.name,
                "encoding",
                "fill and center must be finite and scale finite and positive",
            ));
        }
        Ok(())
    }
}

/// Fill, centre and scale of a numeric column.
fn numeric_scaling(
    spec: &ColumnSpec,
    summary: &ColumnSummary,
    histogram: Option<&ColumnHistogram>,
) -> Result<Scaling, ModelError> {
    let Some(mean) = summary.mean() else {
        // No values anywhere: a constant output that cannot mislead.
        let fill = match spec.missing {
            Impute::Constant(c) => c,
            Impute::Mean | Impute::Median => 0.0,
        };
        return Ok(unscaled(spec.transform, fill));
    };
    let fill = match spec.missing {
        Impute::Mean => mean,
        Impute::Constant(c) => c,
        Impute::Median if summary.min == summary.max => summary.min,
        Impute::Median => histogram_median(spec, summary, histogram)?,
    };
    let constant = summary.is_constant();
    let (center, scale) = match spec.transform {
        Transform::None => (0.0, 1.0),
        Transform::Standardize if constant => (mean, 1.0),
        Transform::Standardize => {
            let n = summary.count as f64;
            // Not constant, so the variance is clearly positive.
            (mean, (summary.sum_sq / n - mean * mean).sqrt())
        }
        Transform::MinMax if constant => (summary.min, 1.0),
        Transform::MinMax => (summary.min, summary.max - summary.min),
    };
    Ok(Scaling {
        fill,
        center,
        scale,
    })
}

/// The median read from a histogram that must match the summary.
fn histogram_median(
    spec: &ColumnSpec,
    summary: &ColumnSummary,
    histogram: Option<&ColumnHistogram>,
) -> Result<f64, ModelError> {
    let missing = || ModelError::MissingHistogram {
        column: spec.name.clone(),
    };
    let h = histogram
        .filter(|h| h.min == summary.min && h.max == summary.max)
        .ok_or_else(missing)?;
    let invalid = |what, allowed| ModelError::InvalidColumnAggregate {
        column: spec.name.clone(),
        what,
        allowed,
    };
    h.validate()
        .map_err(|_| invalid("histogram", "a supported bin count over a finite range"))?;
    if h.total() != summary.count {
        return Err(invalid(
            "histogram total",
            "equal to the summary's count of values (both passes must see the same rows)",
        ));
    }
    h.approximate_median().ok_or_else(missing)
}

/// Scalings of the 0/1 columns of a categorical column, from its counts.
fn dummy_scalings(spec: &ColumnSpec, codes: &[i64], summary: &ColumnSummary) -> Vec<Scaling> {
    let n = summary.count;
    codes
        .iter()
        .zip(&summary.category_counts)
        .map(|(&code, &c)| {
            let indicator = |hit: bool| f64::from(u8::from(hit));
            let share = if n == 0 { 0.0 } else { c as f64 / n as f64 };
            let fill = match spec.missing {
                Impute::Constant(k) => indicator(k == code as f64),
                // Median is refused for categorical columns by validation.
                Impute::Mean | Impute::Median => share,
            };
            if n == 0 {
                return unscaled(spec.transform, fill);
            }
            let constant = c == 0 || c == n;
            let (center, scale) = match spec.transform {
                Transform::None => (0.0, 1.0),
                Transform::Standardize if constant => (share, 1.0),
                Transform::Standardize => (share, (share * (1.0 - share)).sqrt()),
                // The column's min is 1 only if every value is this code.
                Transform::MinMax if constant => (indicator(c == n), 1.0),
                Transform::MinMax => (0.0, 1.0),
            };
            Scaling {
                fill,
                center,
                scale,
            }
        })
        .collect()
}

/// The scaling of a column with no values: `None` keeps the fill as it is;
/// the others centre on it, so the output is 0.
fn unscaled(transform: Transform, fill: f64) -> Scaling {
    let center = match transform {
        Transform::None => 0.0,
        Transform::Standardize | Transform::MinMax => fill,
    };
    Scaling {
        fill,
        center,
        scale: 1.0,
    }
}

#[cfg(test)]
#[path = "fitted_tests.rs"]
mod tests;
