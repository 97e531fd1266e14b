//! The generic functions on the Poisson family (the registered families are
//! covered through their kinds in `regression_tests.rs`), offsets, and the
//! kind-level functions agreeing with the generic ones to the bit.

use approx::assert_relative_eq;
use ndarray::{Array1, Array2, array, aview1};

use super::*;
use crate::counts::CountCounts;
use crate::family::{Linear, Logistic, Poisson};
use crate::kind::ModelKind;
use crate::newton::{NewtonSolver, NewtonTerms, StopReason, Tolerances};
use crate::regression;
use crate::testing::{linear_data, logistic_data, poisson_data, sites};

/// Central finite differences of `f` at `params`, one per coordinate.
fn numeric_gradient(params: &Array1<f64>, f: impl Fn(ArrayView1<'_, f64>) -> f64) -> Array1<f64> {
    let h = 1e-6;
    (0..params.len())
        .map(|j| {
            let mut up = params.clone();
            up[j] += h;
            let mut down = params.clone();
            down[j] -= h;
            (f(up.view()) - f(down.view())) / (2.0 * h)
        })
        .collect()
}

#[test]
fn poisson_gradient_matches_finite_differences() {
    let (x, y) = poisson_data(40, 3, 1);
    let offset: Array1<f64> = (0..40).map(|i| 0.1 * (i % 5) as f64 - 0.2).collect();
    let params = array![0.1, -0.3, 0.2, 0.4];
    for l2 in [0.0, 0.5] {
        for rows in [
            Rows::new(x.view(), y.view()),
            Rows::new(x.view(), y.view()).with_offset(offset.view()),
        ] {
            let (value, grad) = loss_and_gradient(Poisson, rows, params.view(), l2).unwrap();
            assert_eq!(value, loss(Poisson, rows, params.view(), l2).unwrap());
            let numeric = numeric_gradient(&params, |p| loss(Poisson, rows, p, l2).unwrap());
            for (a, b) in grad.iter().zip(&numeric) {
                assert_relative_eq!(*a, *b, epsilon = 1e-7, max_relative = 1e-6);
            }
        }
    }
}

#[test]
fn a_constant_offset_is_a_shift_of_the_intercept() {
    let (x, y) = poisson_data(30, 2, 2);
    let offset = Array1::from_elem(30, 0.7);
    let params = array![0.2, 0.5, -0.1];
    let shifted = array![0.9, 0.5, -0.1];
    let with_offset = Rows::new(x.view(), y.view()).with_offset(offset.view());
    let plain = Rows::new(x.view(), y.view());
    assert_relative_eq!(
        loss(Poisson, with_offset, params.view(), 0.0).unwrap(),
        loss(Poisson, plain, shifted.view(), 0.0).unwrap(),
        max_relative = 1e-14
    );
    let mu = predict(Poisson, x.view(), Some(offset.view()), params.view()).unwrap();
    let expected = predict(Poisson, x.view(), None, shifted.view()).unwrap();
    for (a, b) in mu.iter().zip(&expected) {
        assert_relative_eq!(*a, *b, max_relative = 1e-14);
    }
}

#[test]
fn poisson_newton_terms_are_the_derivatives_and_merge() {
    let (x, y) = poisson_data(60, 2, 3);
    let offset: Array1<f64> = (0..60).map(|i| (1.0 + (i % 3) as f64).ln()).collect();
    let params = array![0.3, 0.2, -0.4];
    let rows = Rows::new(x.view(), y.view()).with_offset(offset.view());
    let terms = NewtonTerms::from_family(Poisson, rows, params.view()).unwrap();
    assert_eq!(terms.validate_for(Poisson, 2), Ok(()));
    let n = terms.n as f64;
    assert_relative_eq!(
        terms.loss_sum / n,
        loss(Poisson, rows, params.view(), 0.0).unwrap(),
        max_relative = 1e-14
    );
    let numeric = numeric_gradient(&params, |p| loss(Poisson, rows, p, 0.0).unwrap());
    for (a, b) in terms.gradient_sum.iter().zip(&numeric) {
        assert_relative_eq!(a / n, *b, epsilon = 1e-7, max_relative = 1e-6);
    }
    for j in 0..params.len() {
        let column = numeric_gradient(&params, |p| {
            loss_and_gradient(Poisson, rows, p, 0.0).unwrap().1[j]
        });
        for i in 0..params.len() {
            assert_relative_eq!(
                terms.hessian_sum[[i, j]] / n,
                column[i],
                epsilon = 1e-7,
                max_relative = 1e-6
            );
        }
    }
    // Three sites' terms add up to the pooled rows'.
    let mut merged = NewtonTerms::zeros(2);
    let mut start = 0;
    for (xs, ys) in sites(&x, &y, &[10, 35]) {
        let end = start + ys.len();
        let o = offset.slice_axis(ndarray::Axis(0), ndarray::Slice::from(start..end));
        let site =
            NewtonTerms::from_family(Poisson, Rows::new(xs, ys).with_offset(o), params.view())
                .unwrap();
        merged.merge(&site).unwrap();
        start = end;
    }
    assert_eq!(merged.n, terms.n);
    for (a, b) in merged.hessian_sum.iter().zip(&terms.hessian_sum) {
        assert_relative_eq!(*a, *b, epsilon = 1e-12, max_relative = 1e-13);
    }
}

#[test]
fn federated_newton_fits_poisson_to_the_optimum() {
    let (x, y) = poisson_data(400, 3, 4);
    for l2 in [0.0, 0.1] {
        let mut solver = NewtonSolver::for_family(Poisson, Array1::zeros(4).view(), l2).unwrap();
        let mut stop = None;
        for _ in 0..30 {
            let mut total = NewtonTerms::zeros(3);
            for (xs, ys) in sites(&x, &y, &[100, 250]) {
                let site =
                    NewtonTerms::from_family(Poisson, Rows::new(xs, ys), solver.current()).unwrap();
                site.validate_for(Poisson, 3).unwrap();
                total.merge(&site).unwrap();
            }
            solver.propose(&total).unwrap();
            stop = solver.converged(&Tolerances::default());
            if stop.is_some() {
                break;
            }
        }
        assert!(stop.is_some(), "no convergence in 30 rounds");
        assert!(!matches!(stop, Some(StopReason::LineSearchFailed { .. })));
        let best = solver.best().unwrap().to_owned();
        let (_, grad) =
            loss_and_gradient(Poisson, Rows::new(x.view(), y.view()), best.view(), l2).unwrap();
        assert!(grad.dot(&grad).sqrt() < 1e-7, "gradient {grad}");
        // Unpenalised, the maximum-likelihood fit matches the observed total.
        if l2 == 0.0 {
            let mu = predict(Poisson, x.view(), None, best.view()).unwrap();
            assert_relative_eq!(mu.sum(), y.sum(), max_relative = 1e-8);
        }
    }
}

#[test]
fn gradient_descent_decreases_the_poisson_loss() {
    let (x, y) = poisson_data(200, 2, 5);
    let rows = Rows::new(x.view(), y.view());
    let start = Array1::zeros(3);
    let (params, start_loss) =
        gradient_descent(Poisson, rows, start.view(), 0.0, 0.2, 200).unwrap();
    assert_eq!(start_loss, loss(Poisson, rows, start.view(), 0.0).unwrap());
    assert!(loss(Poisson, rows, params.view(), 0.0).unwrap() < start_loss);
    let (prox, _) = gradient_descent_prox(
        Poisson,
        rows,
        start.view(),
        start.view(),
        0.0,
        0.0,
        0.2,
        200,
    )
    .unwrap();
    assert_eq!(prox, params);
}

#[test]
fn poisson_labels_must_be_counts() {
    let x = array![[0.0], [1.0], [2.0], [3.0]];
    let params = aview1(&[0.0, 0.1]);
    for bad in [
        array![0.0, 1.5, 2.0, 3.0],
        array![0.0, -1.0, 2.0, 3.0],
        array![f64::NAN, 1.0, 2.0, 3.0],
    ] {
        let err = loss(Poisson, Rows::new(x.view(), bad.view()), params, 0.0).unwrap_err();
        assert_eq!(
            err,
            ModelError::InvalidLabels {
                family: "poisson",
                rule: "a whole number >= 0 (a count)",
                invalid: 1,
                total: 4
            }
        );
        assert!(err.to_string().contains("1 of 4"), "{err}");
        assert!(matches!(
            NewtonTerms::from_family(Poisson, Rows::new(x.view(), bad.view()), params),
            Err(ModelError::InvalidLabels { invalid: 1, .. })
        ));
    }
}

#[test]
fn poisson_overflow_is_named() {
    let x = array![[1.0], [2.0]];
    let y = array![1.0, 0.0];
    let huge = aview1(&[0.0, 400.0]);
    let overflow = ModelError::Overflow {
        what: "the Poisson mean exp(linear predictor + offset)",
    };
    let rows = Rows::new(x.view(), y.view());
    assert_eq!(loss(Poisson, rows, huge, 0.0), Err(overflow.clone()));
    assert_eq!(
        NewtonTerms::from_family(Poisson, rows, huge),
        Err(overflow.clone())
    );
    assert_eq!(predict(Poisson, x.view(), None, huge), Err(overflow));
    // From a sane start, too large a step makes the next mean overflow.
    let many = array![5.0, 5.0];
    assert_eq!(
        gradient_descent(
            Poisson,
            Rows::new(x.view(), many.view()),
            aview1(&[0.0, -1.0]),
            0.0,
            100.0,
            5
        ),
        Err(ModelError::Diverged { step: 1, steps: 5 })
    );
}

#[test]
fn offsets_are_checked() {
    let (x, y) = poisson_data(5, 1, 6);
    let params = aview1(&[0.0, 0.0]);
    let short = array![0.0, 0.0];
    assert!(matches!(
        loss(
            Poisson,
            Rows::new(x.view(), y.view()).with_offset(short.view()),
            params,
            0.0
        ),
        Err(ModelError::Dimension { what: "offset", .. })
    ));
    let bad = array![0.0, f64::INFINITY, 0.0, 0.0, 0.0];
    assert!(matches!(
        predict(Poisson, x.view(), Some(bad.view()), params),
        Err(ModelError::InvalidValues {
            what: "offset",
            first: 1,
            ..
        })
    ));
}

#[test]
fn poisson_evaluation_counts_its_predictions() {
    let (x, y) = poisson_data(50, 2, 7);
    let params = array![0.3, 0.4, -0.2];
    let counts = evaluate(Poisson, Rows::new(x.view(), y.view()), params.view(), 0).unwrap();
    let mu = predict(Poisson, x.view(), None, params.view()).unwrap();
    assert_eq!(
        counts,
        CountCounts::from_predictions(mu.view(), y.view()).unwrap()
    );
    assert_eq!(counts.n, 50);
}

#[test]
fn poisson_terms_need_no_logistic_bounds() {
    // Large counts: the intercept's gradient and curvature sums exceed what
    // a logistic site could send, yet are valid Poisson terms.
    let x = Array2::zeros((4, 1));
    let y = array![20.0, 30.0, 25.0, 40.0];
    let terms =
        NewtonTerms::from_family(Poisson, Rows::new(x.view(), y.view()), aview1(&[3.0, 0.0]))
            .unwrap();
    assert_eq!(terms.validate_for(Poisson, 1), Ok(()));
    assert!(matches!(
        terms.validate_for(Logistic, 1),
        Err(ModelError::InvalidAggregate { .. })
    ));
}

#[test]
fn kinds_run_the_generic_code_bit_for_bit() {
    let (x, y) = logistic_data(30, 2, 8);
    let params = array![0.1, -0.2, 0.3];
    let rows = Rows::new(x.view(), y.view());
    assert_eq!(
        regression::loss_and_gradient(ModelKind::Logistic, x.view(), y.view(), params.view(), 0.2),
        loss_and_gradient(Logistic, rows, params.view(), 0.2)
    );
    assert_eq!(
        NewtonTerms::from_rows(x.view(), y.view(), params.view()),
        NewtonTerms::from_family(Logistic, rows, params.view())
    );
    let (x, y) = linear_data(30, 2, 9);
    let rows = Rows::new(x.view(), y.view());
    assert_eq!(
        regression::gradient_descent(
            ModelKind::Linear,
            x.view(),
            y.view(),
            params.view(),
            0.1,
            0.1,
            3
        ),
        gradient_descent(Linear, rows, params.view(), 0.1, 0.1, 3)
    );
    // Linear Newton terms have curvature 1 per row: the Hessian is XᵀX.
    let terms = NewtonTerms::from_family(Linear, rows, params.view()).unwrap();
    assert_eq!(terms.hessian_sum[[0, 0]], 30.0);
    assert_eq!(terms.validate_for(Linear, 2), Ok(()));
}
