//! Checked conversions of the exact-fit terms: the Newton sums a node sends
//! for logistic regression and the normal-equation terms it sends for linear
//! regression. Symmetric matrices travel as their upper triangle, row by row.

use medfed_model::{ModelKind, NewtonTerms, NormalTerms};
use ndarray::Array2;

use crate::convert::{WireError, check_finite, counts_from_pb, counts_to_pb, finite_vector};
use crate::message::{NewtonReport, NormalReport, Task};
use crate::pb;

type Result<T> = std::result::Result<T, WireError>;

/// The upper triangle of a square matrix, row by row.
fn upper(matrix: &Array2<f64>) -> Vec<f64> {
    let n = matrix.nrows();
    let mut out = Vec::with_capacity(n * (n + 1) / 2);
    for i in 0..n {
        for j in i..n {
            out.push(matrix[[i, j]]);
        }
    }
    out
}

/// The symmetric `n x n` matrix whose upper triangle is `values`.
fn symmetric(field: &'static str, values: Vec<f64>, n: usize) -> Result<Array2<f64>> {
    check_finite(field, &values, n * (n + 1) / 2)?;
    let mut matrix = Array2::zeros((n, n));
    let mut next = values.into_iter();
    for i in 0..n {
        for j in i..n {
            let value = next.next().unwrap_or_default();
            matrix[[i, j]] = value;
            matrix[[j, i]] = value;
        }
    }
    Ok(matrix)
}

fn check_task_id(task: &Task, got: &str) -> Result<()> {
    if got == task.task_id {
        Ok(())
    } else {
        Err(WireError::TaskMismatch {
            expected: task.task_id.clone(),
            got: got.chars().take(64).collect(),
        })
    }
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
    check_task_id(task, &task_id)?;
    if task.model != ModelKind::Logistic {
        return Err(WireError::Invalid {
            field: "newton",
            reason: format!(
                "Newton terms are for logistic tasks; this task is {}",
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
        .validate(task.dimension() - 1)
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
    check_task_id(task, &task_id)?;
    if task.model != ModelKind::Linear {
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

/// Newton terms as the vector a member masks: `[n, loss sum, gradient
/// sum..., upper triangle of the Hessian sum...]` (see
/// [`crate::secagg::MaskedKind::Newton`]).
pub fn newton_to_masked(terms: &NewtonTerms) -> Vec<f64> {
    let mut out = vec![terms.n as f64, terms.loss_sum];
    out.extend(terms.gradient_sum.iter());
    out.extend(upper(&terms.hessian_sum));
    out
}

/// Normal-equation terms as the vector a member masks: `[n, yᵀy, Xᵀy...,
/// upper triangle of XᵀX...]` (see [`crate::secagg::MaskedKind::Normal`]).
/// `y_sum` travels as `Xᵀy[0]`, which it equals.
pub fn normal_to_masked(terms: &NormalTerms) -> Vec<f64> {
    let mut out = vec![terms.n as f64, terms.yty];
    out.extend(terms.xty.iter());
    out.extend(upper(&terms.xtx));
    out
}

/// Splits an unmasked sum into its row count (rounded to the nearest
/// integer) and the rest, checking its length.
fn masked_rows(field: &'static str, sum: &[f64], task: &Task) -> Result<(u64, Vec<f64>)> {
    check_finite(field, sum, crate::secagg::terms_len(task))?;
    let n = sum[0].round();
    if !(n >= 1.0 && n < u64::MAX as f64) {
        return Err(WireError::Invalid {
            field,
            reason: format!("the summed row count {} is not a positive count", sum[0]),
        });
    }
    Ok((n as u64, sum[1..].to_vec()))
}

/// Reads the unmasked sum of the members' [`newton_to_masked`] vectors as
/// the pooled Newton terms.
///
/// # Errors
/// Wrong length, non-finite values, a row count below 1, or terms that
/// cannot come from real rows (see `NewtonTerms::validate`).
pub fn newton_from_masked(sum: &[f64], task: &Task) -> Result<NewtonTerms> {
    let field = "secagg.newton";
    let dim = task.dimension();
    let (n, mut rest) = masked_rows(field, sum, task)?;
    let hessian = rest.split_off(1 + dim);
    let gradient = rest.split_off(1);
    let terms = NewtonTerms {
        n,
        loss_sum: rest[0],
        gradient_sum: finite_vector(field, gradient, dim)?,
        hessian_sum: symmetric(field, hessian, dim)?,
    };
    terms.validate(dim - 1).map_err(|e| WireError::Invalid {
        field,
        reason: e.to_string(),
    })?;
    Ok(terms)
}

/// Reads the unmasked sum of the members' [`normal_to_masked`] vectors as
/// the pooled normal-equation terms.
///
/// # Errors
/// Wrong length, non-finite values, a row count below 1, or terms that
/// cannot come from real rows (see `NormalTerms::validate`).
pub fn normal_from_masked(sum: &[f64], task: &Task) -> Result<NormalTerms> {
    let field = "secagg.normal";
    let dim = task.dimension();
    let (n, mut rest) = masked_rows(field, sum, task)?;
    let xtx = rest.split_off(1 + dim);
    let xty = rest.split_off(1);
    let xty = finite_vector(field, xty, dim)?;
    let terms = NormalTerms {
        n,
        yty: rest[0],
        y_sum: xty[0],
        xtx: symmetric(field, xtx, dim)?,
        xty,
    };
    terms.validate(dim - 1).map_err(|e| WireError::Invalid {
        field,
        reason: e.to_string(),
    })?;
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn masked_terms_sum_to_the_pooled_terms_and_are_checked() {
        let x = array![[0.5, -1.0], [1.5, 0.2], [-0.3, 0.7], [2.0, -0.4]];
        let first = ndarray::Slice::from(..2);
        let rest = ndarray::Slice::from(2..);
        let rows = ndarray::Axis(0);
        let (a, b) = (x.slice_axis(rows, first), x.slice_axis(rows, rest));
        let logistic = task(ModelKind::Logistic);
        let y = array![1.0, 0.0, 1.0, 0.0];
        let (ya, yb) = (y.slice_axis(rows, first), y.slice_axis(rows, rest));
        let params = array![0.1, 0.2, -0.3];
        let pooled = NewtonTerms::from_rows(x.view(), y.view(), params.view()).unwrap();
        let (ta, tb) = (
            NewtonTerms::from_rows(a, ya, params.view()).unwrap(),
            NewtonTerms::from_rows(b, yb, params.view()).unwrap(),
        );
        let (va, vb) = (newton_to_masked(&ta), newton_to_masked(&tb));
        assert_eq!(va.len(), crate::secagg::terms_len(&logistic));
        let sum: Vec<f64> = va.iter().zip(&vb).map(|(p, q)| p + q).collect();
        let got = newton_from_masked(&sum, &logistic).unwrap();
        assert_eq!(got.n, 4);
        assert!((got.loss_sum - pooled.loss_sum).abs() < 1e-12);
        assert!(
            (&got.gradient_sum - &pooled.gradient_sum)
                .iter()
                .all(|d| d.abs() < 1e-12)
        );
        assert!(
            (&got.hessian_sum - &pooled.hessian_sum)
                .iter()
                .all(|d| d.abs() < 1e-12)
        );
        assert!(newton_from_masked(&sum[1..], &logistic).is_err());
        let mut no_rows = sum.clone();
        no_rows[0] = 0.2;
        assert!(newton_from_masked(&no_rows, &logistic).is_err());
        let mut negative_loss = sum.clone();
        negative_loss[1] = -1.0;
        assert!(newton_from_masked(&negative_loss, &logistic).is_err());

        let linear = task(ModelKind::Linear);
        let y = array![1.0, 2.0, 3.0, -1.0];
        let (ya, yb) = (y.slice_axis(rows, first), y.slice_axis(rows, rest));
        let pooled = NormalTerms::from_rows(x.view(), y.view()).unwrap();
        let (va, vb) = (
            normal_to_masked(&NormalTerms::from_rows(a, ya).unwrap()),
            normal_to_masked(&NormalTerms::from_rows(b, yb).unwrap()),
        );
        assert_eq!(va.len(), crate::secagg::terms_len(&linear));
        let sum: Vec<f64> = va.iter().zip(&vb).map(|(p, q)| p + q).collect();
        let got = normal_from_masked(&sum, &linear).unwrap();
        assert_eq!(got.n, 4);
        assert!((got.yty - pooled.yty).abs() < 1e-12);
        assert!((got.y_sum - pooled.y_sum).abs() < 1e-12);
        assert!((&got.xty - &pooled.xty).iter().all(|d| d.abs() < 1e-12));
        assert!((&got.xtx - &pooled.xtx).iter().all(|d| d.abs() < 1e-12));
        // XᵀX[0][0] is the row count: a sum whose two disagree is refused.
        let mut wrong_rows = sum;
        wrong_rows[0] = 5.0;
        assert!(normal_from_masked(&wrong_rows, &linear).is_err());
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
