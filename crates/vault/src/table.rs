//! [`Table`]: the in-memory numeric table a vault holds.

use std::collections::HashMap;
use std::fmt;

use crate::error::VaultError;

/// An in-memory numeric table: column names and row-major `f64` values,
/// NaN = missing.
///
/// Invariants, checked by [`Table::new`]: at least one column, every name
/// non-empty and unique, `values.len()` a multiple of the column count, and
/// no infinite value.
///
/// `Debug` shows the column names and the row count, never the values.
#[derive(Clone)]
pub struct Table {
    columns: Vec<String>,
    values: Vec<f64>,
    n_rows: usize,
}

impl Table {
    /// Builds a table from column names and row-major values.
    ///
    /// # Errors
    /// [`VaultError::InvalidTable`] when there are no columns, a name is empty
    /// or repeated, `values.len()` is not a multiple of the number of
    /// columns, or a value is infinite (the message gives its row and
    /// column, not the value).
    pub fn new(columns: Vec<String>, values: Vec<f64>) -> Result<Table, VaultError> {
        let invalid = |reason: String| VaultError::InvalidTable { reason };
        if columns.is_empty() {
            return Err(invalid("a table needs at least one column".into()));
        }
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(columns.len());
        for (i, name) in columns.iter().enumerate() {
            if name.is_empty() {
                return Err(invalid(format!("column {} has an empty name", i + 1)));
            }
            if let Some(first) = seen.insert(name.as_str(), i) {
                return Err(invalid(format!(
                    "column name {name:?} appears twice (columns {} and {})",
                    first + 1,
                    i + 1
                )));
            }
        }
        let width = columns.len();
        if !values.len().is_multiple_of(width) {
            return Err(invalid(format!(
                "{} values do not fill whole rows of {width} columns",
                values.len()
            )));
        }
        if let Some(at) = values.iter().position(|v| v.is_infinite()) {
            return Err(invalid(format!(
                "row {} column {:?} is infinite; use NaN for a missing value",
                at / width + 1,
                columns[at % width]
            )));
        }
        Ok(Table {
            n_rows: values.len() / width,
            columns,
            values,
        })
    }

    /// The column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of columns (at least 1).
    pub fn n_columns(&self) -> usize {
        self.columns.len()
    }

    /// Position of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Row `i` (0-based), or `None` past the end.
    pub fn row(&self, i: usize) -> Option<&[f64]> {
        let width = self.columns.len();
        let start = i.checked_mul(width)?;
        self.values.get(start..start.checked_add(width)?)
    }

    /// All values, row-major: row `i` is `values()[i * n_columns()..][..n_columns()]`.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Row-major values of the named columns, in the given order (a name may
    /// repeat).
    ///
    /// # Errors
    /// [`VaultError::MissingColumns`] naming every missing column and listing
    /// the available ones.
    pub fn select(&self, names: &[String]) -> Result<Vec<f64>, VaultError> {
        let mut indices = Vec::with_capacity(names.len());
        let mut missing = Vec::new();
        for name in names {
            match self.column_index(name) {
                Some(i) => indices.push(i),
                None if missing.contains(name) => {}
                None => missing.push(name.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(VaultError::MissingColumns {
                file: None,
                missing,
                available: self.columns.clone(),
            });
        }
        let width = self.columns.len();
        Ok(self
            .values
            .chunks_exact(width)
            .flat_map(|row| indices.iter().map(move |&i| row[i]))
            .collect())
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("columns", &self.columns)
            .field("n_rows", &self.n_rows)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn new_validates() {
        assert!(Table::new(vec![], vec![]).is_err());
        assert!(Table::new(names(&["a", ""]), vec![]).is_err());
        assert!(Table::new(names(&["a", "a"]), vec![]).is_err());
        assert!(Table::new(names(&["a", "b"]), vec![1.0]).is_err());
        let err = Table::new(names(&["a", "b"]), vec![1.0, 2.0, 3.0, f64::NEG_INFINITY])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("row 2 column \"b\""), "{err}");
        let empty = Table::new(names(&["a"]), vec![]);
        assert_eq!(empty.map(|t| t.n_rows()).ok(), Some(0));
    }

    #[test]
    fn accessors_and_select() -> Result<(), VaultError> {
        let t = Table::new(
            names(&["a", "b", "c"]),
            vec![1.0, 2.0, 3.0, 4.0, f64::NAN, 6.0],
        )?;
        assert_eq!((t.n_rows(), t.n_columns()), (2, 3));
        assert_eq!(t.column_index("c"), Some(2));
        assert_eq!(t.column_index("z"), None);
        assert_eq!(t.row(0), Some(&[1.0, 2.0, 3.0][..]));
        assert!(t.row(2).is_none());
        assert!(t.row(usize::MAX).is_none());
        assert_eq!(t.select(&names(&["c", "a"]))?, vec![3.0, 1.0, 6.0, 4.0]);
        let b = t.select(&names(&["b"]))?;
        assert!(b[1].is_nan());
        match t.select(&names(&["x", "a", "y", "x"])) {
            Err(VaultError::MissingColumns {
                missing, available, ..
            }) => {
                assert_eq!(missing, names(&["x", "y"]));
                assert_eq!(available, names(&["a", "b", "c"]));
            }
            other => panic!("expected MissingColumns, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn debug_hides_values() -> Result<(), VaultError> {
        let t = Table::new(names(&["weight"]), vec![987654.25])?;
        let text = format!("{t:?}");
        assert!(text.contains("weight") && text.contains("n_rows: 1"));
        assert!(!text.contains("987654"));
        Ok(())
    }
}
