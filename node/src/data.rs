//! A site's rows prepared for one task: the task's feature and target
//! columns taken from the decrypted vault, rows without a target dropped, and
//! the seeded held-out split applied. Lives in memory only.

use medfed_model::preprocess::{ColumnHistogram, ColumnSummary, HistogramPlan, coarse_bounds};
use medfed_model::{FittedPreprocessor, ModelKind};
use medfed_vault::Table;
use medfed_wire::Task;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

/// Why a vault cannot serve a task.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The vault lacks columns the task needs.
    #[error("the vault cannot serve task {task}")]
    Columns {
        /// Task id.
        task: String,
        /// What the vault said (names the missing columns).
        source: medfed_vault::VaultError,
    },
    /// The target column does not fit the model.
    #[error("target column {target:?} does not fit a {model} model")]
    Target {
        /// Target column.
        target: String,
        /// Model kind.
        model: ModelKind,
        /// Details (counts, never values).
        source: medfed_model::ModelError,
    },
    /// No usable training rows.
    #[error(
        "no training rows left: {rows} rows in the vault, {missing_target} without a target value, {holdout} held out"
    )]
    NoTrainingRows {
        /// Rows in the vault.
        rows: usize,
        /// Rows without a target.
        missing_target: usize,
        /// Rows held out.
        holdout: usize,
    },
    /// The model library refused an input.
    #[error(transparent)]
    Model(#[from] medfed_model::ModelError),
}

/// Raw (unstandardised, NaN = missing) features and targets of some rows.
pub struct Rows {
    /// Features, one row per record.
    pub x: Array2<f64>,
    /// Targets.
    pub y: Array1<f64>,
}

/// A site's rows for one task.
pub struct SiteData {
    /// Training rows.
    pub train: Rows,
    /// Held-out rows.
    pub holdout: Rows,
    /// Rows dropped because their target is missing.
    pub missing_target: usize,
    prepared: Option<(FittedPreprocessor, Array2<f64>, Array2<f64>)>,
}

impl SiteData {
    /// Selects the task's columns from `table` and splits the rows.
    ///
    /// # Errors
    /// Missing columns, a target that does not fit the model, or no training
    /// rows left.
    pub fn new(table: &Table, task: &Task) -> Result<SiteData, DataError> {
        let mut columns = task.features.clone();
        columns.push(task.target.clone());
        let values = table
            .select(&columns)
            .map_err(|source| DataError::Columns {
                task: task.task_id.clone(),
                source,
            })?;
        let width = columns.len();
        let all = Array2::from_shape_vec((table.n_rows(), width), values)
            .map_err(|_| medfed_model::ModelError::Empty)?;
        let target = width - 1;
        let keep: Vec<usize> = (0..all.nrows())
            .filter(|&i| !all[[i, target]].is_nan())
            .collect();
        let missing_target = all.nrows() - keep.len();
        let usable = all.select(Axis(0), &keep);
        let mask =
            medfed_model::holdout_mask(usable.nrows(), task.holdout_fraction, task.split_seed)?;
        let pick = |held: bool| -> Rows {
            let idx: Vec<usize> = (0..usable.nrows()).filter(|&i| mask[i] == held).collect();
            let part = usable.select(Axis(0), &idx);
            Rows {
                x: part.select(Axis(1), &(0..target).collect::<Vec<_>>()),
                y: part.column(target).to_owned(),
            }
        };
        let (train, holdout) = (pick(false), pick(true));
        if train.y.is_empty() {
            return Err(DataError::NoTrainingRows {
                rows: table.n_rows(),
                missing_target,
                holdout: holdout.y.len(),
            });
        }
        for y in [train.y.view(), holdout.y.view()] {
            if !y.is_empty() {
                medfed_model::check_labels(task.model, y).map_err(|source| DataError::Target {
                    target: task.target.clone(),
                    model: task.model,
                    source,
                })?;
            }
        }
        Ok(SiteData {
            train,
            holdout,
            missing_target,
            prepared: None,
        })
    }

    /// Per-column summaries of the training rows (counts, sums, sums of
    /// squares, category counts: aggregates only). The exact minimum and
    /// maximum are single records' values, so they are widened to coarse
    /// bounds (`coarse_bounds`) before they leave.
    ///
    /// # Errors
    /// A value outside a column's declared categories (row index named).
    pub fn statistics(&self, task: &Task) -> Result<Vec<ColumnSummary>, DataError> {
        let mut summaries = medfed_model::summarize(&task.columns, self.train.x.view())?;
        for summary in &mut summaries {
            if summary.count > 0 {
                (summary.min, summary.max) = coarse_bounds(summary.min, summary.max);
            }
        }
        Ok(summaries)
    }

    /// Per-column histograms of the training rows over the plan's ranges.
    ///
    /// # Errors
    /// A plan that does not fit the task's columns.
    pub fn histograms(
        &self,
        task: &Task,
        plan: &HistogramPlan,
    ) -> Result<Vec<Option<ColumnHistogram>>, DataError> {
        Ok(plan.histograms(&task.columns, self.train.x.view())?)
    }

    /// Training and held-out rows put through the global preprocessing;
    /// computed once and reused while the preprocessing stays the same.
    ///
    /// # Errors
    /// A preprocessing that does not fit the features, or a value outside a
    /// column's declared categories.
    pub fn prepared(
        &mut self,
        preprocessing: &FittedPreprocessor,
    ) -> Result<Prepared<'_>, DataError> {
        let stale = !matches!(&self.prepared, Some((p, _, _)) if p == preprocessing);
        if stale {
            let train = preprocessing.apply(self.train.x.view())?;
            let holdout = preprocessing.apply(self.holdout.x.view())?;
            self.prepared = Some((preprocessing.clone(), train, holdout));
        }
        let Some((_, train_x, holdout_x)) = &self.prepared else {
            unreachable!("set above");
        };
        Ok(Prepared {
            train_x: train_x.view(),
            train_y: self.train.y.view(),
            holdout_x: holdout_x.view(),
            holdout_y: self.holdout.y.view(),
        })
    }
}

/// Preprocessed views of a site's rows.
pub struct Prepared<'a> {
    /// Training features.
    pub train_x: ArrayView2<'a, f64>,
    /// Training targets.
    pub train_y: ArrayView1<'a, f64>,
    /// Held-out features.
    pub holdout_x: ArrayView2<'a, f64>,
    /// Held-out targets.
    pub holdout_y: ArrayView1<'a, f64>,
}
