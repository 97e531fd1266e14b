//! Record-identifier flags: [`flag_identifiers`] names the columns of a
//! [`Table`] that look like record identifiers (a record number, an MRN, a
//! patient id), so that they are not used as a feature or a target by
//! mistake. An identifier predicts nothing about a patient, and a model that
//! learned one would carry it.
//!
//! Two rules, each simple enough to explain to the person who imported the
//! file. A column is flagged by the first rule it meets, and at most once.
//!
//! 1. **Name** ([`IdentifierReason::Name`]). The name is lowercased and the
//!    separators `.`, `-` and space become `_`. It is flagged when it is one
//!    of [`IDENTIFIER_NAMES`], ends in `_id` or `_mrn`, or starts with `id_`.
//!    Names only containing those letters (`fluid`, `acid`, `thalach`,
//!    `inst`) are not flagged: a suffix or prefix must sit behind or before a
//!    separator.
//! 2. **Values** ([`IdentifierReason::DistinctIntegers`]). The column has at
//!    least [`MIN_VALUES_JUDGED`] non-missing values, every one of them an
//!    integer (no fractional part), and at least 95 % of them are distinct
//!    ([`MIN_DISTINCT_PERCENT`]). That is what record numbers look like. A
//!    smaller column is never judged by its values (a handful of distinct
//!    integers means nothing), and a column with a single non-integer value
//!    (a radius, a lab result) is never flagged by its values, however
//!    distinct they are. Missing values (NaN) are left out of every count.
//!
//! A flag is a warning, not a proof: a survival time in days is an integer
//! that can be distinct in nearly every row of a small site. The flag says
//! which rule it met in words that name no cell value, so that a person can
//! judge it.

use std::fmt;

use crate::table::Table;

/// Column names (after normalising, see the module documentation) that are
/// flagged as record identifiers whatever their values.
pub const IDENTIFIER_NAMES: &[&str] = &[
    "id",
    "mrn",
    "ssn",
    "nhs_number",
    "patient",
    "patient_id",
    "patientid",
    "subject_id",
    "record_id",
    "record",
    "encounter_id",
    "visit_id",
    "case_id",
    "study_id",
    "pid",
    "uid",
];

/// Fewest non-missing values a column needs before its values are judged.
pub const MIN_VALUES_JUDGED: usize = 20;

/// Smallest share of distinct values, in percent of the non-missing values,
/// for which an integer column is flagged.
pub const MIN_DISTINCT_PERCENT: usize = 95;

/// A column that looks like a record identifier, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentifierFlag {
    /// The column's name, as in the table.
    pub column: String,
    /// The rule the column met.
    pub reason: IdentifierReason,
}

/// Why a column looks like a record identifier. `Display` says it in plain
/// words, without any cell value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentifierReason {
    /// The column's name looks like an identifier's (`mrn`, `patient_id`,
    /// `visit-id`, ...).
    Name,
    /// Every non-missing value is an integer, and (nearly) every one is
    /// distinct.
    DistinctIntegers {
        /// How many distinct values the column holds.
        distinct: usize,
        /// How many rows hold a value (the non-missing values).
        rows: usize,
    },
}

impl fmt::Display for IdentifierReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentifierReason::Name => f.write_str("its name looks like a record identifier"),
            IdentifierReason::DistinctIntegers { distinct, rows } => write!(
                f,
                "its {rows} values are integers, distinct in {distinct} of {rows} rows, \
                 as record numbers are"
            ),
        }
    }
}

impl fmt::Display for IdentifierFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "column `{}` looks like a record identifier: {}",
            self.column, self.reason
        )
    }
}

/// The columns of `table` that look like record identifiers, in column
/// order, by the rules of the module documentation.
pub fn flag_identifiers(table: &Table) -> Vec<IdentifierFlag> {
    let width = table.n_columns();
    table
        .columns()
        .iter()
        .enumerate()
        .filter_map(|(index, name)| {
            let reason = if name_looks_like_identifier(name) {
                IdentifierReason::Name
            } else {
                let column = table.values().iter().skip(index).step_by(width).copied();
                distinct_integers(column)?
            };
            Some(IdentifierFlag {
                column: name.clone(),
                reason,
            })
        })
        .collect()
}

/// The name rule: one of [`IDENTIFIER_NAMES`], or `_id` / `_mrn` at the end,
/// or `id_` at the start, after normalising case and separators.
fn name_looks_like_identifier(name: &str) -> bool {
    let normal: String = name
        .trim()
        .chars()
        .map(|c| match c {
            '.' | '-' | ' ' => '_',
            other => other.to_ascii_lowercase(),
        })
        .collect();
    IDENTIFIER_NAMES.contains(&normal.as_str())
        || normal.ends_with("_id")
        || normal.ends_with("_mrn")
        || normal.starts_with("id_")
}

/// The value rule on one column's values (NaN = missing): the counts when
/// the column is flagged, `None` when it is not.
fn distinct_integers(values: impl Iterator<Item = f64>) -> Option<IdentifierReason> {
    let mut present = Vec::new();
    for value in values.filter(|v| !v.is_nan()) {
        if !value.is_finite() || value.fract() != 0.0 {
            return None;
        }
        // `+ 0.0` turns -0.0 into 0.0, so the two count as one value.
        present.push(value + 0.0);
    }
    let rows = present.len();
    if rows < MIN_VALUES_JUDGED {
        return None;
    }
    present.sort_unstable_by(f64::total_cmp);
    present.dedup();
    let distinct = present.len();
    // distinct / rows >= 95 %, in integers so no rounding decides it.
    let flagged = distinct.saturating_mul(100) >= rows.saturating_mul(MIN_DISTINCT_PERCENT);
    flagged.then_some(IdentifierReason::DistinctIntegers { distinct, rows })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A table of one column.
    fn column(name: &str, values: Vec<f64>) -> Table {
        match Table::new(vec![name.to_owned()], values) {
            Ok(table) => table,
            Err(e) => panic!("test table: {e}"),
        }
    }

    fn flags(table: &Table) -> Vec<(String, IdentifierReason)> {
        flag_identifiers(table)
            .into_iter()
            .map(|f| (f.column, f.reason))
            .collect()
    }

    #[test]
    fn identifier_names_are_flagged_whatever_the_values() {
        for name in [
            "id",
            "ID",
            "mrn",
            "MRN",
            "ssn",
            "NHS Number",
            "nhs-number",
            "patient",
            "Patient.ID",
            "PatientID",
            "patient_id",
            "subject_id",
            "record_id",
            "record",
            "encounter-id",
            "visit id",
            "case_id",
            "study.id",
            "pid",
            "UID",
            "hospital_id",
            "lab.id",
            "site_mrn",
            "id_number",
            "ID-local",
        ] {
            // Two repeated fractional values: the values alone would never flag it.
            let table = column(name, vec![0.5, 0.5]);
            assert_eq!(
                flags(&table),
                vec![(name.to_owned(), IdentifierReason::Name)],
                "{name}"
            );
        }
    }

    #[test]
    fn clinical_names_are_not_flagged() {
        for name in [
            "fluid",
            "acid",
            "inst",
            "thalach",
            "oldpeak",
            "age",
            "lipid",
            "uric_acid",
            "idx",
            "ident",
            "paid",
            "valid",
            "ph.ecog",
            "pat.karno",
            "wt.loss",
            "mrna",
            "patients",
            "recorded",
            "pid_score",
        ] {
            let table = column(name, vec![1.0, 2.0, 3.0]);
            assert!(flags(&table).is_empty(), "{name} was flagged");
        }
    }

    #[test]
    fn distinct_integers_are_flagged_with_their_counts() {
        let values: Vec<f64> = (0..297).map(|i| f64::from(1000 + i * 7)).collect();
        let table = column("number", values);
        let reason = IdentifierReason::DistinctIntegers {
            distinct: 297,
            rows: 297,
        };
        assert_eq!(flags(&table), vec![("number".to_owned(), reason.clone())]);
        assert_eq!(
            reason.to_string(),
            "its 297 values are integers, distinct in 297 of 297 rows, as record numbers are"
        );
    }

    #[test]
    fn missing_values_are_left_out_of_the_counts() {
        // 20 distinct integers and 10 missing: judged on the 20 present.
        let mut values: Vec<f64> = (1..=20).map(f64::from).collect();
        values.extend([f64::NAN; 10]);
        assert_eq!(
            flags(&column("n", values)),
            vec![(
                "n".to_owned(),
                IdentifierReason::DistinctIntegers {
                    distinct: 20,
                    rows: 20
                }
            )]
        );
        // 19 present values are too few to judge, however many rows.
        let mut values: Vec<f64> = (1..=19).map(f64::from).collect();
        values.extend([f64::NAN; 100]);
        assert!(flags(&column("n", values)).is_empty());
    }

    #[test]
    fn the_distinct_share_has_a_sharp_edge_at_95_percent() {
        // 100 values, 95 distinct: flagged; 94 distinct: not.
        let with_distinct = |distinct: u32| {
            let values: Vec<f64> = (0..100).map(|i| f64::from(i.min(distinct - 1))).collect();
            flags(&column("n", values))
        };
        assert_eq!(with_distinct(95).len(), 1);
        assert!(with_distinct(94).is_empty());
    }

    #[test]
    fn negative_zero_and_zero_are_one_value() {
        let mut values: Vec<f64> = (1..=19).map(f64::from).collect();
        values.extend([0.0, -0.0]);
        // 21 values, 20 distinct: 95.2 %, flagged, and counted as 20.
        assert_eq!(
            flags(&column("n", values)),
            vec![(
                "n".to_owned(),
                IdentifierReason::DistinctIntegers {
                    distinct: 20,
                    rows: 21
                }
            )]
        );
    }

    #[test]
    fn ordinary_columns_are_not_flagged_by_values() {
        // Distinct but fractional: a radius, a lab result.
        let radius: Vec<f64> = (0..300).map(|i| 10.0 + f64::from(i) * 0.013).collect();
        assert!(flags(&column("radius", radius)).is_empty());
        // One fractional value among distinct integers is enough.
        let mut mostly: Vec<f64> = (0..300).map(f64::from).collect();
        mostly[150] = 150.5;
        assert!(flags(&column("n", mostly)).is_empty());
        // Integers with repeats: ages of 300 patients.
        let age: Vec<f64> = (0..300).map(|i| f64::from(29 + i % 48)).collect();
        assert!(flags(&column("age", age)).is_empty());
        // Five distinct integers are too few to judge.
        assert!(flags(&column("n", vec![11.0, 12.0, 13.0, 14.0, 15.0])).is_empty());
        // An empty or all-missing column.
        assert!(flags(&column("n", vec![])).is_empty());
        assert!(flags(&column("n", vec![f64::NAN; 50])).is_empty());
    }

    #[test]
    fn flags_come_in_column_order_once_each() -> Result<(), crate::VaultError> {
        let names = ["age", "mrn", "visit", "record_id"];
        let mut values = Vec::new();
        for row in 0..40 {
            let row = f64::from(row);
            values.extend([30.0 + row % 5.0, row, 500.0 + row, 7.0 + row]);
        }
        let table = Table::new(names.iter().map(|n| n.to_string()).collect(), values)?;
        let got = flags(&table);
        let counts = IdentifierReason::DistinctIntegers {
            distinct: 40,
            rows: 40,
        };
        assert_eq!(
            got,
            vec![
                ("mrn".to_owned(), IdentifierReason::Name),
                ("visit".to_owned(), counts),
                ("record_id".to_owned(), IdentifierReason::Name),
            ]
        );
        Ok(())
    }

    #[test]
    fn display_names_the_column_and_no_value() {
        let mut values: Vec<f64> = (0..25).map(|i| f64::from(987_600 + i)).collect();
        values.push(f64::NAN);
        let table = column("number", values);
        let text: Vec<String> = flag_identifiers(&table)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            vec![
                "column `number` looks like a record identifier: its 25 values are integers, \
                 distinct in 25 of 25 rows, as record numbers are"
                    .to_owned()
            ]
        );
        assert!(!text[0].contains("9876"));
    }

    proptest! {
        /// A column of distinct integers is flagged once it has enough
        /// values, whatever their order and sign.
        #[test]
        fn distinct_integer_columns_are_flagged(
            set in proptest::collection::btree_set(-1_000_000i64..1_000_000, 0..80usize)
        ) {
            let values: Vec<f64> = set.iter().map(|&v| v as f64).rev().collect();
            let flagged = !flags(&column("n", values)).is_empty();
            prop_assert_eq!(flagged, set.len() >= MIN_VALUES_JUDGED);
        }

        /// A column holding a fractional value is never flagged by values.
        #[test]
        fn a_fractional_value_prevents_the_value_rule(
            mut values in proptest::collection::vec(-1.0e6f64..1.0e6, 1..80usize),
            at in any::<proptest::sample::Index>(),
        ) {
            let i = at.index(values.len());
            values[i] = values[i].trunc() + 0.25;
            prop_assert!(flags(&column("n", values)).is_empty());
        }
    }
}
