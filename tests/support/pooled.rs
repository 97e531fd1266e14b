//! The reference the federation is measured against: the same model fitted
//! in one process on every site's training rows pooled together, with the
//! same task, split, global standardisation, loss and regularisation, and
//! scored on the same held-out rows. Only tests may pool rows like this.

use std::path::PathBuf;

use medfed_coordinator::config::TaskConfig;
use medfed_model::preprocess::{
    ColumnHistogram, ColumnSummary, DEFAULT_MEDIAN_BINS, HistogramPlan, Impute, merge_histograms,
    merge_summaries,
};
use medfed_model::{FittedPreprocessor, ModelKind, NewtonTerms, NormalTerms};
use medfed_node::data::SiteData;
use ndarray::{Array1, Array2, Axis, concatenate};

/// A pooled fit and its held-out figures.
#[derive(Debug, Clone)]
pub struct Pooled {
    /// Parameters (intercept first) at the optimum.
    pub params: Array1<f64>,
    /// Training loss (mean over all training rows, plus the L2 term).
    pub train_loss: f64,
    /// Euclidean norm of the training-loss gradient at `params`: how close
    /// to the optimum the fit got.
    pub gradient_norm: f64,
    /// ROC AUC over every site's held-out rows together (logistic tasks).
    pub auc: Option<f64>,
    /// Held-out rows scored.
    pub holdout_rows: usize,
    /// Held-out predictions' R² (linear tasks).
    pub r2: Option<f64>,
    /// The pooled rows, to score any parameters on the same data.
    rows: PooledRows,
}

/// Every site's standardised rows, pooled.
#[derive(Debug, Clone)]
struct PooledRows {
    kind: ModelKind,
    l2: f64,
    x: Array2<f64>,
    y: Array1<f64>,
    holdout_x: Array2<f64>,
    holdout_y: Array1<f64>,
}

/// Parameters scored on the pooled rows.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    /// Training objective: mean loss plus the L2 term.
    pub objective: f64,
    /// Held-out ROC AUC (logistic).
    pub auc: Option<f64>,
    /// Held-out accuracy at 0.5 (logistic).
    pub accuracy: Option<f64>,
    /// Held-out R² (linear).
    pub r2: Option<f64>,
    /// Held-out RMSE (linear).
    pub rmse: Option<f64>,
}

impl Pooled {
    /// Calibration counts of `params` on the pooled held-out rows.
    ///
    /// # Panics
    /// Parameters of the wrong length, or a linear task.
    pub fn calibration(&self, params: &Array1<f64>) -> medfed_model::CalibrationCounts {
        let r = &self.rows;
        let predictions =
            medfed_model::predict(r.kind, r.holdout_x.view(), params.view()).expect("predict");
        medfed_model::CalibrationCounts::from_scores(predictions.view(), r.holdout_y.view())
            .expect("calibration")
    }

    /// Scores `params` on the pooled training and held-out rows, exactly
    /// (no histograms).
    ///
    /// # Panics
    /// Parameters of the wrong length.
    pub fn score(&self, params: &Array1<f64>) -> Scored {
        let r = &self.rows;
        let objective =
            medfed_model::loss(r.kind, r.x.view(), r.y.view(), params.view(), r.l2).expect("loss");
        let predictions =
            medfed_model::predict(r.kind, r.holdout_x.view(), params.view()).expect("predict");
        let (p, y) = (predictions.view(), r.holdout_y.view());
        if r.kind.predicts_probabilities() {
            Scored {
                objective,
                auc: medfed_model::metrics::roc_auc(p, y).expect("auc"),
                accuracy: Some(medfed_model::metrics::accuracy(p, y, 0.5).expect("accuracy")),
                r2: None,
                rmse: None,
            }
        } else {
            Scored {
                objective,
                auc: None,
                accuracy: None,
                r2: medfed_model::metrics::r2(p, y).expect("r2"),
                rmse: Some(medfed_model::metrics::rmse(p, y).expect("rmse")),
            }
        }
    }
}

/// Fits the pooled model of `task_toml` on `csvs` to its optimum: Newton's
/// method for logistic models (run until the gradient norm is below 1e-12
/// or stops falling), the normal equations for linear ones.
///
/// # Panics
/// On any setup error: this is test support.
pub fn pooled_fit(task_toml: &str, csvs: &[PathBuf]) -> Pooled {
    let config = TaskConfig::parse(task_toml, "task.toml").expect("task");
    let task = config.task;
    let options = medfed_vault::ImportOptions {
        required: vec![task.target.clone()],
        ..Default::default()
    };
    let mut sites: Vec<SiteData> = csvs
        .iter()
        .map(|csv| {
            let table = medfed_vault::import_csv(csv, &options).expect("csv");
            SiteData::new(&table, &task).expect("site data")
        })
        .collect();
    // Global preprocessing, computed from the same aggregates the
    // statistics (and, for medians, histogram) steps merge.
    let mut merged: Vec<ColumnSummary> = task.columns.iter().map(ColumnSummary::empty).collect();
    for site in &sites {
        merge_summaries(&mut merged, &site.statistics(&task).expect("summaries")).expect("merge");
    }
    let histograms = task
        .columns
        .iter()
        .any(|c| matches!(c.missing, Impute::Median))
        .then(|| {
            let plan =
                HistogramPlan::new(&task.columns, &merged, DEFAULT_MEDIAN_BINS).expect("plan");
            let mut total: Vec<Option<ColumnHistogram>> = plan
                .ranges
                .iter()
                .map(|r| r.map(|range| ColumnHistogram::empty(range, plan.bins)))
                .collect();
            for site in &sites {
                merge_histograms(
                    &mut total,
                    &site.histograms(&task, &plan).expect("histograms"),
                )
                .expect("merge");
            }
            total
        });
    let (preprocessing, _) =
        FittedPreprocessor::fit(&task.columns, &merged, histograms.as_deref()).expect("fit");
    let mut train_x = Vec::new();
    let mut train_y = Vec::new();
    let mut holdout_x = Vec::new();
    let mut holdout_y = Vec::new();
    for site in &mut sites {
        let prepared = site.prepared(&preprocessing).expect("prepared");
        train_x.push(prepared.train_x.to_owned());
        train_y.push(prepared.train_y.to_owned());
        holdout_x.push(prepared.holdout_x.to_owned());
        holdout_y.push(prepared.holdout_y.to_owned());
    }
    let stack2 = |parts: &[Array2<f64>]| {
        concatenate(Axis(0), &parts.iter().map(|p| p.view()).collect::<Vec<_>>()).expect("rows")
    };
    let stack1 = |parts: &[Array1<f64>]| {
        concatenate(Axis(0), &parts.iter().map(|p| p.view()).collect::<Vec<_>>()).expect("rows")
    };
    let (x, y) = (stack2(&train_x), stack1(&train_y));
    let (hx, hy) = (stack2(&holdout_x), stack1(&holdout_y));
    let params = if task.model.has_closed_form() {
        let terms = NormalTerms::from_rows(x.view(), y.view()).expect("terms");
        medfed_model::solve_normal(&terms, task.l2)
            .expect("solve")
            .0
    } else {
        let mut params = Array1::zeros(x.ncols() + 1);
        for _ in 0..100 {
            let terms = NewtonTerms::from_rows(x.view(), y.view(), params.view()).expect("terms");
            let n = terms.n as f64;
            // Regularised gradient and Hessian of the mean loss.
            let mut gradient = &terms.gradient_sum / n;
            let mut hessian = &terms.hessian_sum / n;
            for j in 1..params.len() {
                gradient[j] += task.l2 * params[j];
                hessian[[j, j]] += task.l2;
            }
            if gradient.dot(&gradient).sqrt() < 1e-12 {
                break;
            }
            let step = medfed_model::cholesky_solve(hessian.view(), gradient.view())
                .expect("positive definite Hessian");
            params -= &step;
        }
        params
    };
    let (train_loss, gradient) =
        medfed_model::loss_and_gradient(task.model, x.view(), y.view(), params.view(), task.l2)
            .expect("loss");
    let gradient_norm = gradient.dot(&gradient).sqrt();
    let predictions =
        medfed_model::predict(task.model, hx.view(), params.view()).expect("predictions");
    let (auc, r2) = if task.model.predicts_probabilities() {
        let auc = medfed_model::metrics::roc_auc(predictions.view(), hy.view()).expect("auc");
        (auc, None)
    } else {
        let r2 = medfed_model::metrics::r2(predictions.view(), hy.view()).expect("r2");
        (None, r2)
    };
    Pooled {
        params,
        train_loss,
        gradient_norm,
        auc,
        holdout_rows: hy.len(),
        r2,
        rows: PooledRows {
            kind: task.model,
            l2: task.l2,
            x,
            y,
            holdout_x: hx,
            holdout_y: hy,
        },
    }
}
