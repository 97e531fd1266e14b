//! How each raw column is to be prepared: the configuration a task
//! declares, and the per-cell rules shared by every pass over raw rows.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Most category codes one column may list; bounds the width of the design
/// matrix and the size of what sites send.
pub const MAX_CATEGORIES: usize = 1024;

/// Longest column name allowed, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Largest category code magnitude: codes must be exactly representable as
/// `f64`, since raw matrices are `f64`.
const MAX_CODE: i64 = 1 << 53;

/// How a column's values are rescaled, using global statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// `(x - mean) / std`, population standard deviation.
    #[default]
    Standardize,
    /// `(x - min) / (max - min)`, into `[0, 1]` for values seen in training.
    MinMax,
    /// Values are used as they are.
    None,
}

/// What a missing value is replaced by, before the transform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impute {
    /// The global mean of the non-missing values. For a categorical column,
    /// each one-hot column gets its category's global share.
    #[default]
    Mean,
    /// The global median, approximated from a histogram (see
    /// [`HistogramPlan`](super::HistogramPlan)); numeric columns only.
    Median,
    /// A fixed value; for a categorical column, one of its codes.
    Constant(f64),
}

/// The preparation of one raw column, as a task declares it.
///
/// In order, each raw value is: mapped to missing if it is NaN or one of
/// `unknown_values`; for a categorical column (`categories` given),
/// one-hot encoded over the listed codes (any other value is an error);
/// imputed if missing; transformed. If `missing_indicator` is set, one more
/// output column says whether the value was missing.
///
/// ```
/// # use medfed_model::preprocess::{ColumnSpec, Impute, Transform};
/// let spec: ColumnSpec = serde_json::from_str(
///     r#"{"name": "chol", "missing": "median", "unknown_values": [0], "missing_indicator": true}"#,
/// ).unwrap();
/// assert_eq!(spec.transform, Transform::Standardize);
/// assert_eq!(spec.missing, Impute::Median);
/// assert_eq!(spec.output_names(), ["chol", "chol_missing"]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// The column's name; output columns are named after it.
    pub name: String,
    /// How values are rescaled; standardised unless stated.
    #[serde(default)]
    pub transform: Transform,
    /// How missing values are filled; the mean unless stated.
    #[serde(default)]
    pub missing: Impute,
    /// Whether to add a `<name>_missing` 0/1 output column.
    #[serde(default)]
    pub missing_indicator: bool,
    /// Values a site uses to mean "unknown" (e.g. a cholesterol of 0),
    /// treated as missing before anything else.
    #[serde(default)]
    pub unknown_values: Vec<f64>,
    /// Integer codes of a categorical column, one-hot encoded in this order
    /// as `<name>=<code>`; `None` for a numeric column.
    #[serde(default)]
    pub categories: Option<Vec<i64>>,
}

impl ColumnSpec {
    /// A numeric column with the defaults: standardised, mean-imputed, no
    /// indicator, no unknown-value codes.
    pub fn numeric(name: impl Into<String>) -> Self {
        ColumnSpec {
            name: name.into(),
            transform: Transform::default(),
            missing: Impute::default(),
            missing_indicator: false,
            unknown_values: Vec::new(),
            categories: None,
        }
    }

    /// A categorical column over `codes` with the defaults otherwise.
    pub fn categorical(name: impl Into<String>, codes: Vec<i64>) -> Self {
        ColumnSpec {
            categories: Some(codes),
            ..ColumnSpec::numeric(name)
        }
    }

    /// Checks this column on its own: a non-empty name of at most
    /// [`MAX_NAME_LEN`] bytes; finite unknown values; for a categorical
    /// column, 1 to [`MAX_CATEGORIES`] distinct codes of magnitude at most
    /// 2^53, none also an unknown value, and no median imputation; a finite
    /// constant, which for a categorical column must be one of its codes.
    ///
    /// # Errors
    /// [`ModelError::InvalidColumnSpec`] naming the column and the field.
    pub fn validate(&self) -> Result<(), ModelError> {
        check_name(&self.name)?;
        if let Some(codes) = &self.categories {
            check_codes(&self.name, codes)?;
        }
        check_unknown_values(&self.name, &self.unknown_values, self.categories.as_deref())?;
        let invalid = |problem| Err(spec_error(&self.name, "missing", problem));
        match (&self.categories, self.missing) {
            (_, Impute::Constant(c)) if !c.is_finite() => invalid("a constant must be finite"),
            (Some(_), Impute::Median) => invalid(
                "median imputation is not defined for a categorical column; use mean or a constant",
            ),
            (Some(codes), Impute::Constant(c)) if code_index(codes, c).is_none() => {
                invalid("the constant for a categorical column must be one of its categories")
            }
            _ => Ok(()),
        }
    }

    /// Names of the output columns this column becomes, in order: `name`
    /// (numeric) or `name=code` per category, then `name_missing` if the
    /// indicator is on.
    pub fn output_names(&self) -> Vec<String> {
        output_names(
            &self.name,
            self.categories.as_deref(),
            self.missing_indicator,
        )
    }
}

/// Checks a whole list of column specifications: each one, and that column
/// names and output column names are unique (a column named `a_missing`
/// would collide with the indicator of a column `a`).
///
/// # Errors
/// [`ModelError::InvalidColumnSpec`] naming the first offending column.
pub fn validate_specs(specs: &[ColumnSpec]) -> Result<(), ModelError> {
    for spec in specs {
        spec.validate()?;
    }
    check_unique_outputs(specs.iter().map(|s| (s.name.as_str(), s.output_names())))
}

/// One raw cell, classified.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Cell {
    /// NaN or an unknown-value code.
    Missing,
    /// A finite value of a numeric column.
    Value(f64),
    /// The index, in the column's list, of a categorical value's code.
    Category(usize),
}

/// Classifies raw value `v` at (`row`, `column`) of a column named `name`.
///
/// # Errors
/// [`ModelError::NonFiniteFeature`] for an infinite value and
/// [`ModelError::UnknownCategory`] for a categorical value not in `codes`.
#[inline]
pub(super) fn classify(
    v: f64,
    name: &str,
    unknown_values: &[f64],
    codes: Option<&[i64]>,
    row: usize,
    column: usize,
) -> Result<Cell, ModelError> {
    if v.is_nan() || unknown_values.contains(&v) {
        return Ok(Cell::Missing);
    }
    if v.is_infinite() {
        return Err(ModelError::NonFiniteFeature { row, column });
    }
    match codes {
        None => Ok(Cell::Value(v)),
        Some(codes) => {
            code_index(codes, v)
                .map(Cell::Category)
                .ok_or_else(|| ModelError::UnknownCategory {
                    column: name.to_owned(),
                    row,
                })
        }
    }
}

/// Index of the code equal to `v`, if any. Codes are at most 2^53 in
/// magnitude, so the conversion to `f64` is exact.
#[inline]
pub(super) fn code_index(codes: &[i64], v: f64) -> Option<usize> {
    codes.iter().position(|&c| c as f64 == v)
}

pub(super) fn output_names(name: &str, codes: Option<&[i64]>, indicator: bool) -> Vec<String> {
    let mut names = match codes {
        None => vec![name.to_owned()],
        Some(codes) => codes.iter().map(|c| format!("{name}={c}")).collect(),
    };
    if indicator {
        names.push(format!("{name}_missing"));
    }
    names
}

pub(super) fn spec_error(column: &str, field: &'static str, problem: &'static str) -> ModelError {
    ModelError::InvalidColumnSpec {
        column: column.to_owned(),
        field,
        problem,
    }
}

pub(super) fn check_name(name: &str) -> Result<(), ModelError> {
    if name.is_empty() {
        return Err(spec_error(name, "name", "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        // The name itself is too long to repeat usefully.
        return Err(spec_error(
            &name.chars().take(32).collect::<String>(),
            "name",
            "must be at most 256 bytes",
        ));
    }
    Ok(())
}

pub(super) fn check_unknown_values(
    name: &str,
    unknown_values: &[f64],
    codes: Option<&[i64]>,
) -> Result<(), ModelError> {
    if !unknown_values.iter().all(|v| v.is_finite()) {
        return Err(spec_error(name, "unknown_values", "must be finite numbers"));
    }
    if unknown_values.len() > MAX_CATEGORIES {
        return Err(spec_error(
            name,
            "unknown_values",
            "must have at most 1024 entries",
        ));
    }
    if let Some(codes) = codes
        && unknown_values
            .iter()
            .any(|&v| code_index(codes, v).is_some())
    {
        return Err(spec_error(
            name,
            "unknown_values",
            "must not include one of the listed categories",
        ));
    }
    Ok(())
}

pub(super) fn check_codes(name: &str, codes: &[i64]) -> Result<(), ModelError> {
    let invalid = |problem| Err(spec_error(name, "categories", problem));
    if codes.is_empty() {
        return invalid("must list at least one code");
    }
    if codes.len() > MAX_CATEGORIES {
        return invalid("must list at most 1024 codes");
    }
    if codes.iter().any(|c| c.unsigned_abs() > MAX_CODE as u64) {
        return invalid("codes must be at most 2^53 in magnitude");
    }
    let mut sorted = codes.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return invalid("must not repeat a code");
    }
    Ok(())
}

/// Checks that column names, and all their output names, are unique.
pub(super) fn check_unique_outputs<'a>(
    columns: impl IntoIterator<Item = (&'a str, Vec<String>)>,
) -> Result<(), ModelError> {
    let mut names = std::collections::HashSet::new();
    let mut outputs = std::collections::HashSet::new();
    for (name, output_names) in columns {
        if !names.insert(name) {
            return Err(spec_error(name, "name", "must be unique"));
        }
        for output in output_names {
            if !outputs.insert(output) {
                return Err(spec_error(
                    name,
                    "name",
                    "one of its output columns (name, name=code or name_missing) has the same \
                     name as another column's",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: ModelError) -> (String, &'static str) {
        match err {
            ModelError::InvalidColumnSpec { column, field, .. } => (column, field),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_with_defaults_and_refuses_unknown_fields() {
        let spec: ColumnSpec = serde_json::from_str(r#"{"name": "age"}"#).unwrap();
        assert_eq!(spec, ColumnSpec::numeric("age"));
        let spec: ColumnSpec = serde_json::from_str(
            r#"{"name": "cp", "categories": [1, 2, 3, 4], "transform": "none",
                "missing": {"constant": 4}}"#,
        )
        .unwrap();
        assert_eq!(spec.transform, Transform::None);
        assert_eq!(spec.missing, Impute::Constant(4.0));
        assert_eq!(spec.validate(), Ok(()));
        assert_eq!(spec.output_names(), ["cp=1", "cp=2", "cp=3", "cp=4"]);
        let spec: ColumnSpec =
            serde_json::from_str(r#"{"name": "x", "transform": "min_max"}"#).unwrap();
        assert_eq!(spec.transform, Transform::MinMax);
        let err = serde_json::from_str::<ColumnSpec>(r#"{"name": "age", "scale": true}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `scale`"), "{err}");
        assert!(serde_json::from_str::<ColumnSpec>(r#"{"name": "a", "missing": "mode"}"#).is_err());
    }

    #[test]
    fn validate_names_the_column_and_field() {
        let cases: Vec<(ColumnSpec, &str)> = vec![
            (ColumnSpec::numeric(""), "name"),
            (ColumnSpec::numeric("a".repeat(300)), "name"),
            (
                ColumnSpec {
                    unknown_values: vec![f64::INFINITY],
                    ..ColumnSpec::numeric("chol")
                },
                "unknown_values",
            ),
            (ColumnSpec::categorical("cp", vec![]), "categories"),
            (ColumnSpec::categorical("cp", vec![1, 2, 1]), "categories"),
            (
                ColumnSpec::categorical("cp", vec![1, i64::MAX]),
                "categories",
            ),
            (
                ColumnSpec {
                    unknown_values: vec![2.0],
                    ..ColumnSpec::categorical("cp", vec![1, 2])
                },
                "unknown_values",
            ),
            (
                ColumnSpec {
                    missing: Impute::Median,
                    ..ColumnSpec::categorical("cp", vec![1, 2])
                },
                "missing",
            ),
            (
                ColumnSpec {
                    missing: Impute::Constant(3.0),
                    ..ColumnSpec::categorical("cp", vec![1, 2])
                },
                "missing",
            ),
            (
                ColumnSpec {
                    missing: Impute::Constant(f64::NAN),
                    ..ColumnSpec::numeric("chol")
                },
                "missing",
            ),
        ];
        for (spec, field) in cases {
            let (column, got) = field_of(spec.validate().unwrap_err());
            assert_eq!(got, field, "{spec:?}");
            assert!(spec.name.starts_with(&column), "{column}");
        }
    }

    #[test]
    fn validate_specs_refuses_duplicate_outputs() {
        let a = ColumnSpec {
            missing_indicator: true,
            ..ColumnSpec::numeric("a")
        };
        assert_eq!(
            validate_specs(&[a.clone(), ColumnSpec::numeric("b")]),
            Ok(())
        );
        let (column, field) =
            field_of(validate_specs(&[a.clone(), ColumnSpec::numeric("a_missing")]).unwrap_err());
        assert_eq!((column.as_str(), field), ("a_missing", "name"));
        let (column, _) = field_of(validate_specs(&[a.clone(), a]).unwrap_err());
        assert_eq!(column, "a");
        let err = validate_specs(&[
            ColumnSpec::categorical("c", vec![1]),
            ColumnSpec::numeric("c=1"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("\"c=1\""), "{err}");
    }

    #[test]
    fn cells_are_classified_in_order() {
        let codes = [1i64, 2, 4];
        let classify_cp = |v| classify(v, "cp", &[0.0], Some(&codes), 7, 3);
        assert_eq!(classify_cp(f64::NAN), Ok(Cell::Missing));
        assert_eq!(classify_cp(0.0), Ok(Cell::Missing));
        assert_eq!(classify_cp(4.0), Ok(Cell::Category(2)));
        let err = classify_cp(2.5).unwrap_err();
        assert_eq!(
            err,
            ModelError::UnknownCategory {
                column: "cp".into(),
                row: 7
            }
        );
        assert!(!err.to_string().contains("2.5"));
        assert_eq!(
            classify_cp(f64::NEG_INFINITY),
            Err(ModelError::NonFiniteFeature { row: 7, column: 3 })
        );
        assert_eq!(classify(-3.5, "x", &[], None, 0, 0), Ok(Cell::Value(-3.5)));
    }
}
