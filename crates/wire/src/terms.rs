//! Checked conversions of the exact-fit terms: the Newton sums a node sends
//! for the families without a closed form and the normal-equation terms it sends for linear
//! regression. Symmetric matrices travel as their upper triangle, row by row.

use medfed_model::{NewtonTerms, NormalTerms};
use ndarray::Array2;

use medfed_protocol::summed;

use crate::convert::{
    WireError, check_finite, check_task_id, counts_from_pb, counts_to_pb, finite_vector,
};
use crate::message::{NewtonReport, NormalReport, Task};
use crate::pb;

type Result<T> = std::result::Result<T, WireError>;

/// The upper triangle of a square matrix, row by row.
fn upper(matrix: &Array2<f64>) -> Vec<f64> {
    let mut out = Vec::with_capacity(summed::triangle_len(matrix.nrows()));
    summed::write_upper(matrix, &mut out);
    out
}

/// The symmetric `n x n` matrix whose upper triangle is `values`.
fn symmetric(field: &'static str, values: Vec<f64>, n: usize) -> Result<Array2<f64>> {
    check_finite(field, &values, summed::triangle_len(n))?;
    Ok(summed::symmetric(&values, n))
}

/// Converts a node's Newton terms for the wire.
pub fn newton_to_pb(report: &NewtonReport, task_id: &str) -> pb::NewtonTermsReport {
    pb::NewtonTermsReport {
        task_id: task_id.to_owned(),
        step: report.step,
        round: report.round,
        n: report.terms.n,
        loss_sum: report.terms.loss_sum,
        gradient_sum: report.terms.gradient_sum.to_vec(),
        hessian_upper: upper(&report.terms.hessian_sum),
        evaluation: report.evaluation.as_ref().map(counts_to_pb),
    }
}

/// Converts and validates a node's Newton terms.
///
/// # Errors
/// Wrong task or model, wrong sizes, non-finite values, no rows, or terms
/// that cannot come from real rows (see `NewtonTerms::validate`).
pub fn newton_from_pb(report: pb::NewtonTermsReport, task: &Task) -> Result<NewtonReport> {
    let pb::NewtonTermsReport {
        task_id,
        step,
        round,
        n,
        loss_sum,
        gradient_sum,
        hessian_upper,
        evaluation,
    } = report;
    check_task_id(task, task_id)?;
    if task.model.has_closed_form() {
        return Err(WireError::Invalid {
            field: "newton",
            reason: format!(
                "Newton terms are for models without a closed form; this task is {}",
                task.model
            ),
        });
    }
    let dim = task.dimension();
    let terms = NewtonTerms {
        n,
        loss_sum,
        gradient_sum: finite_vector("newton.gradient_sum", gradient_sum, dim)?,
        hessian_sum: symmetric("newton.hessian_upper", hessian_upper, dim)?,
    };
    if n == 0 {
        return Err(WireError::Invalid {
            field: "newton.n",
            reason: "terms must come from at least one row".into(),
        });
    }
    terms
        .validate_for_kind(task.model, task.dimension() - 1)
        .map_err(|e| WireError::Invalid {
            field: "newton",
            reason: e.to_string(),
        })?;
    Ok(NewtonReport {
        step,
        round,
        terms,
        evaluation: evaluation
            .map(|c| counts_from_pb(c, task, task.round_score_bins()))
            .transpose()?,
    })
}

/// Converts a node's normal-equation terms for the wire.
pub fn normal_to_pb(report: &NormalReport, task_id: &str) -> pb::NormalTermsReport {
    pb::NormalTermsReport {
        task_id: task_id.to_owned(),
        step: report.step,
        n: report.terms.n,
        xtx_upper: upper(&report.terms.xtx),
        xty: report.terms.xty.to_vec(),
        yty: report.terms.yty,
        y_sum: report.terms.y_sum,
    }
}

/// Converts and validates a node's normal-equation terms.
///
/// # Errors
/// Wrong task or model, wrong sizes, non-finite values, no rows, or terms
/// that cannot come from real rows (see `NormalTerms::validate`).
pub fn normal_from_pb(report: pb::NormalTermsReport, task: &Task) -> Result<NormalReport> {
    let pb::NormalTermsReport {
        task_id,
        step,
        n,
        xtx_upper,
        xty,
        yty,
        y_sum,
    } = report;
    check_task_id(task, task_id)?;
    if !task.model.has_closed_form() {
        return Err(WireError::Invalid {
            field: "normal",
            reason: format!(
                "normal-equation terms are for linear tasks; this task is {}",
                task.model
            ),
        });
    }
    if n == 0 {
        return Err(WireError::Invalid {
            field: "normal.n",
            reason: "terms must come from at least one row".into(),
        });
    }
    let dim = task.dimension();
    let terms = NormalTerms {
        n,
        xtx: symmetric("normal.xtx_upper", xtx_upper, dim)?,
        xty: finite_vector("normal.xty", xty, dim)?,
        yty,
        y_sum,
    };
    terms
        .validate(task.dimension() - 1)
        .map_err(|e| WireError::Invalid {
            field: "normal",
            reason: e.to_string(),
        })?;
    Ok(NormalReport { step, terms })
}

#[cfg(test)]
mod tests {
    use super::*;
    use medfed_model::ModelKind;
    use ndarray::array;

    fn task(model: ModelKind) -> Task {
        Task {
            task_id: "t".into(),
            features: vec!["a".into(), "b".into()],
            columns: vec![
                medfed_model::ColumnSpec::numeric("a"),
                medfed_model::ColumnSpec::numeric("b"),
            ],
            target: "y".into(),
            model,
            l2: 0.0,
            local_steps: 1,
            learning_rate: 0.1,
            holdout_fraction: 0.2,
            split_seed: 1,
            rounds: 5,
            score_bins: 10,
            members: vec!["h".into()],
            secure_aggregation: None,
            differential_privacy: None,
            algorithm: crate::TrainingAlgorithm::Fedavg,
            baselines: false,
            evaluate_every: 1,
        }
    }

    #[test]
    fn newton_terms_round_trip_and_are_checked() {
        let x = array![[0.5, -1.0], [1.5, 0.2], [-0.3, 0.7]];
        let y = array![1.0, 0.0, 1.0];
        let terms =
            NewtonTerms::from_rows(x.view(), y.view(), array![0.1, 0.2, -0.3].view()).unwrap();
        let report = NewtonReport {
            step: 4,
            round: 2,
            terms,
            evaluation: None,
        };
        let t = task(ModelKind::Logistic);
        let wire = newton_to_pb(&report, "t");
        assert_eq!(wire.hessian_upper.len(), 6);
        assert_eq!(newton_from_pb(wire.clone(), &t).unwrap(), report);

        let mut bad = wire.clone();
        bad.hessian_upper.pop();
        assert!(newton_from_pb(bad, &t).is_err());
        let mut bad = wire.clone();
        bad.gradient_sum[1] = f64::NAN;
        assert!(matches!(
            newton_from_pb(bad, &t),
            Err(WireError::NonFinite { index: 1, .. })
        ));
        assert!(newton_from_pb(wire, &task(ModelKind::Linear)).is_err());
    }

    #[test]
    fn normal_terms_round_trip_and_are_checked() {
        let x = array![[0.5, -1.0], [1.5, 0.2], [-0.3, 0.7]];
        let y = array![1.0, 2.0, 3.0];
        let terms = NormalTerms::from_rows(x.view(), y.view()).unwrap();
        let report = NormalReport { step: 2, terms };
        let t = task(ModelKind::Linear);
        let wire = normal_to_pb(&report, "t");
        assert_eq!(normal_from_pb(wire.clone(), &t).unwrap(), report);
        let mut bad = wire.clone();
        bad.task_id = "other".into();
        assert!(matches!(
            normal_from_pb(bad, &t),
            Err(WireError::TaskMismatch { .. })
        ));
        let mut bad = wire;
        bad.n = 0;
        assert!(normal_from_pb(bad, &t).is_err());
    }
}
