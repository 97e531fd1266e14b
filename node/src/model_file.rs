//! Using a published model at the hospital: `node predict` scores a CSV with
//! it, `node model show` explains it. The model file is the coordinator's
//! `model.json`; it is checked before use (format, sizes, a preprocessing
//! that fits the coefficients).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use medfed_model::preprocess::{Encoding, Scaling};
use medfed_model::{FittedPreprocessor, ModelKind};
use ndarray::{Array1, Array2};
use serde::Deserialize;

/// The format tag this build reads.
pub const MODEL_FORMAT: &str = "medfed-model/1";

/// Largest model file read.
const MAX_MODEL_BYTES: u64 = 64 << 20;

/// The parts of `model.json` needed to use the model.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelFile {
    /// Format tag, [`MODEL_FORMAT`].
    pub format: String,
    /// Task id.
    pub task_id: String,
    /// Logistic or linear.
    pub model: ModelKind,
    /// Target column.
    pub target: String,
    /// Raw feature columns, in order.
    pub features: Vec<String>,
    /// The fitted preprocessing.
    pub preprocessing: FittedPreprocessor,
    /// Design columns, one per coefficient.
    pub design_columns: Vec<String>,
    /// Intercept on the preprocessed scale.
    pub intercept: f64,
    /// Coefficients on the preprocessed scale.
    pub coefficients: Vec<f64>,
}

impl ModelFile {
    /// Reads and checks a model file.
    ///
    /// # Errors
    /// Unreadable, too large, not a medfed model, or inconsistent (sizes,
    /// names, non-finite numbers), each naming the file.
    pub fn load(path: &Path) -> anyhow::Result<ModelFile> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        if size > MAX_MODEL_BYTES {
            bail!(
                "{} is {size} bytes; a model file is at most {MAX_MODEL_BYTES}",
                path.display()
            );
        }
        let text =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let model: ModelFile = serde_json::from_slice(&text).with_context(|| {
            format!(
                "{} is not a medfed model file (the model.json a coordinator writes)",
                path.display()
            )
        })?;
        model
            .check()
            .with_context(|| format!("{} is inconsistent", path.display()))?;
        Ok(model)
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.format != MODEL_FORMAT {
            bail!("format {:?}, expected {MODEL_FORMAT:?}", self.format);
        }
        self.preprocessing.validate()?;
        let names: Vec<&str> = self
            .preprocessing
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let features: Vec<&str> = self.features.iter().map(String::as_str).collect();
        if names != features {
            bail!("the preprocessing's columns {names:?} are not the features {features:?}");
        }
        let width = self.preprocessing.width();
        if self.coefficients.len() != width || self.design_columns.len() != width {
            bail!(
                "{} coefficients and {} design columns for a preprocessing of width {width}",
                self.coefficients.len(),
                self.design_columns.len()
            );
        }
        if let Some(i) = self.coefficients.iter().position(|c| !c.is_finite()) {
            bail!("coefficient {i} is not a finite number");
        }
        if !self.intercept.is_finite() {
            bail!("the intercept is not a finite number");
        }
        Ok(())
    }

    /// Parameters, intercept first.
    pub fn params(&self) -> Array1<f64> {
        std::iter::once(self.intercept)
            .chain(self.coefficients.iter().copied())
            .collect()
    }

    /// Predictions (probabilities for logistic models) for raw rows whose
    /// columns are the model's features, NaN for missing.
    ///
    /// # Errors
    /// A value outside a column's categories (row and column named).
    pub fn predict(&self, raw: &Array2<f64>) -> anyhow::Result<Array1<f64>> {
        let design = self.preprocessing.apply(raw.view())?;
        Ok(medfed_model::predict(
            self.model,
            design.view(),
            self.params().view(),
        )?)
    }

    /// Each design column with its scaling (`None` for a 0/1 missing
    /// indicator, which is not scaled).
    fn scalings(&self) -> Vec<Option<Scaling>> {
        let mut out = Vec::new();
        for column in &self.preprocessing.columns {
            match &column.encoding {
                Encoding::Numeric(s) => out.push(Some(*s)),
                Encoding::Categorical { dummies, .. } => {
                    out.extend(dummies.iter().map(|s| Some(*s)))
                }
            }
            if column.missing_indicator {
                out.push(None);
            }
        }
        out
    }

    /// The model in original units: the intercept and one coefficient per
    /// design column such that the linear predictor is
    /// `intercept + Σ coefficient · raw value` (a one-hot column's raw value
    /// is 0 or 1, an indicator's 1 when the value was missing), for rows
    /// without missing values.
    pub fn original_units(&self) -> (f64, Vec<f64>) {
        let mut intercept = self.intercept;
        let mut coefficients = Vec::with_capacity(self.coefficients.len());
        for (w, scaling) in self.coefficients.iter().zip(self.scalings()) {
            match scaling {
                Some(s) => {
                    coefficients.push(w / s.scale);
                    intercept -= w * s.center / s.scale;
                }
                None => coefficients.push(*w),
            }
        }
        (intercept, coefficients)
    }

    /// A table of the coefficients, standardised and in original units
    /// (with odds ratios for logistic models).
    pub fn render(&self) -> String {
        let (intercept, original) = self.original_units();
        // Under a log or logit link, exp(coefficient) is a ratio per unit.
        let ratio = self.model.exp_coefficient_name();
        let mut out = format!(
            "{} model of task {} predicting {} from {} features ({} design columns)\n\n",
            self.model,
            self.task_id,
            self.target,
            self.features.len(),
            self.design_columns.len()
        );
        out.push_str(&format!(
            "  {:<24} {:>14} {:>16}{}\n",
            "term",
            "preprocessed",
            "original units",
            ratio.map_or_else(String::new, |name| format!("   {name}"))
        ));
        out.push_str(&format!(
            "  {:<24} {:>14.6} {:>16.6}{}\n",
            "(intercept)",
            self.intercept,
            intercept,
            if ratio.is_some() {
                format!("   {:>18}", "-")
            } else {
                String::new()
            }
        ));
        for ((name, w), o) in self
            .design_columns
            .iter()
            .zip(&self.coefficients)
            .zip(&original)
        {
            out.push_str(&format!(
                "  {name:<24} {w:>14.6} {o:>16.6}{}\n",
                if ratio.is_some() {
                    format!("   {:>18.4}", o.exp())
                } else {
                    String::new()
                }
            ));
        }
        out.push_str(
            "\n\"preprocessed\": per unit of the column after the model's preprocessing \
             (standardised: per standard deviation);\n\"original units\": per unit of the \
             raw value (one-hot and indicator columns: per 0-to-1 change).\n",
        );
        out
    }
}

/// Scores every row of `csv` with `model` and writes `row,<prediction>` to
/// `out` (replaced atomically), where `row` is the data row's number (1 for
/// the first row after the header). Returns the number of rows.
///
/// # Errors
/// An unreadable model or CSV, a CSV lacking a feature column or holding a
/// bad cell (file, line and column named), or a failed write.
pub fn predict_csv(model: &ModelFile, csv: &Path, out: &Path) -> anyhow::Result<usize> {
    let options = medfed_vault::ImportOptions {
        columns: Some(model.features.clone()),
        required: model.features.clone(),
        ..Default::default()
    };
    let table = medfed_vault::import_csv(csv, &options)?;
    let values = table.select(&model.features)?;
    let raw = Array2::from_shape_vec((table.n_rows(), model.features.len()), values)
        .context("the CSV's rows do not fit the model's features")?;
    let predictions = model
        .predict(&raw)
        .with_context(|| format!("cannot score {}", csv.display()))?;
    let header = model.model.prediction_name();
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    writeln!(file, "row,{header}")?;
    for (i, p) in predictions.iter().enumerate() {
        writeln!(file, "{},{p}", i + 1)?;
    }
    file.as_file().sync_all()?;
    file.persist(out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(predictions.len())
}
