//! The reference the federation is measured against: the same model fitted
//! in one process on every site's training rows pooled together, with the
//! same task, split, global standardisation, loss and regularisation, and
//! scored on the same held-out rows. Only tests may pool rows like this.

use std::path::PathBuf;

use medfed_coordinator::config::TaskConfig;
use medfed_model::{FeatureStats, ModelKind, Standardization};
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
}

/// Fits the pooled model of `task_toml` on `csvs` by full-batch gradient
/// descent run to convergence (`steps` steps at the task's learning rate).
///
/// # Panics
/// On any setup error: this is test support.
pub fn pooled_fit(task_toml: &str, csvs: &[PathBuf], steps: u32) -> Pooled {
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
    // Global statistics, exactly as the statistics round merges them.
    let mut stats: Vec<FeatureStats> = sites[0].statistics();
    for site in &sites[1..] {
        for (total, s) in stats.iter_mut().zip(site.statistics()) {
            total.merge(&s);
        }
    }
    let (standardization, _) = Standardization::from_stats(&stats).expect("standardization");
    let mut train_x = Vec::new();
    let mut train_y = Vec::new();
    let mut holdout_x = Vec::new();
    let mut holdout_y = Vec::new();
    for site in &mut sites {
        let prepared = site.prepared(&standardization).expect("prepared");
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
    let start = Array1::zeros(x.ncols() + 1);
    let (params, _) = medfed_model::gradient_descent(
        task.model,
        x.view(),
        y.view(),
        start.view(),
        task.l2,
        task.learning_rate,
        steps,
    )
    .expect("pooled fit");
    let (train_loss, gradient) =
        medfed_model::loss_and_gradient(task.model, x.view(), y.view(), params.view(), task.l2)
            .expect("loss");
    let gradient_norm = gradient.dot(&gradient).sqrt();
    let auc = match task.model {
        ModelKind::Logistic => {
            let scores =
                medfed_model::predict(task.model, hx.view(), params.view()).expect("scores");
            medfed_model::metrics::roc_auc(scores.view(), hy.view()).expect("auc")
        }
        ModelKind::Linear => None,
    };
    Pooled {
        params,
        train_loss,
        gradient_norm,
        auc,
        holdout_rows: hy.len(),
    }
}
