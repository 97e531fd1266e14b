use approx::assert_relative_eq;
use ndarray::{Array1, Array2, Axis, array, aview1};

use super::*;
use crate::metrics;
use crate::rng::SplitMix64;

/// Random-ish features in [-2, 2), labels from a noisy linear rule, and
/// parameters away from zero.
fn data(kind: ModelKind, n: usize, d: usize, seed: u64) -> (Array2<f64>, Array1<f64>, Array1<f64>) {
    let mut rng = SplitMix64::new(seed);
    let x = Array2::from_shape_simple_fn((n, d), || 4.0 * rng.unit() - 2.0);
    let truth: Array1<f64> = (0..=d).map(|j| 1.0 - 0.4 * j as f64).collect();
    let (truth_intercept, truth_weights) = truth.view().split_at(Axis(0), 1);
    let y = x
        .rows()
        .into_iter()
        .map(|row| {
            let z = truth_intercept[0] + row.dot(&truth_weights) + (rng.unit() - 0.5);
            match kind {
                ModelKind::Logistic => f64::from(z > 0.0),
                ModelKind::Linear => z,
                // A count whose log-mean is z / 2, rounded: whole and >= 0.
                ModelKind::Poisson => (z / 2.0).exp().round(),
            }
        })
        .collect();
    let params = (0..=d).map(|_| rng.unit() - 0.5).collect();
    (x, y, params)
}

#[test]
fn gradient_matches_central_finite_differences() {
    for kind in [ModelKind::Logistic, ModelKind::Linear, ModelKind::Poisson] {
        for l2 in [0.0, 0.7] {
            let (x, y, params) = data(kind, 25, 3, 1);
            let (value, grad) =
                loss_and_gradient(kind, x.view(), y.view(), params.view(), l2).unwrap();
            assert_relative_eq!(
                value,
                loss(kind, x.view(), y.view(), params.view(), l2).unwrap()
            );
            let h = 1e-6;
            for j in 0..params.len() {
                let mut up = params.clone();
                up[j] += h;
                let mut down = params.clone();
                down[j] -= h;
                let numeric = (loss(kind, x.view(), y.view(), up.view(), l2).unwrap()
                    - loss(kind, x.view(), y.view(), down.view(), l2).unwrap())
                    / (2.0 * h);
                assert_relative_eq!(grad[j], numeric, epsilon = 1e-7, max_relative = 1e-6);
            }
        }
    }
}

#[test]
fn the_intercept_is_not_penalised() {
    for kind in [ModelKind::Logistic, ModelKind::Linear] {
        let (x, y, params) = data(kind, 20, 2, 2);
        let (plain, g0) = loss_and_gradient(kind, x.view(), y.view(), params.view(), 0.0).unwrap();
        let (penalised, g1) =
            loss_and_gradient(kind, x.view(), y.view(), params.view(), 2.0).unwrap();
        let w2 = params[1] * params[1] + params[2] * params[2];
        assert_relative_eq!(penalised - plain, w2, epsilon = 1e-12);
        assert_relative_eq!(g1[0], g0[0], epsilon = 1e-15);
        assert_relative_eq!(g1[1] - g0[1], 2.0 * params[1], epsilon = 1e-12);
    }
}

#[test]
fn losses_by_hand() {
    // Linear: predictions 1 + 2x = 3, 5; errors 1, -1 -> mean 0.5*1 = 0.5.
    let x = array![[1.0], [2.0]];
    let params = aview1(&[1.0, 2.0]);
    let value = loss(
        ModelKind::Linear,
        x.view(),
        aview1(&[2.0, 6.0]),
        params,
        0.0,
    )
    .unwrap();
    assert_relative_eq!(value, 0.5);
    // Penalty (0.5 / 2) * 2^2 = 1 on top; the intercept 1 adds nothing.
    let value = loss(
        ModelKind::Linear,
        x.view(),
        aview1(&[2.0, 6.0]),
        params,
        0.5,
    )
    .unwrap();
    assert_relative_eq!(value, 1.5);
    // Logistic at z = 0: every row costs ln 2.
    let value = loss(
        ModelKind::Logistic,
        x.view(),
        aview1(&[0.0, 1.0]),
        aview1(&[0.0, 0.0]),
        0.0,
    )
    .unwrap();
    assert_relative_eq!(value, std::f64::consts::LN_2, epsilon = 1e-15);
}

#[test]
fn logistic_loss_is_stable_at_extreme_margins() {
    // z = 800 and -800: beyond exp's range, where a naive log(sigmoid) gives
    // log(0) = -inf.
    let x = array![[800.0], [-800.0], [800.0], [-800.0]];
    let params = aview1(&[0.0, 1.0]);
    // Two confident right answers (loss ~e^-800 = 0) and two confident wrong
    // ones (loss 800 each): mean 400.
    let y = aview1(&[1.0, 0.0, 0.0, 1.0]);
    let (value, grad) = loss_and_gradient(ModelKind::Logistic, x.view(), y, params, 0.0).unwrap();
    assert_relative_eq!(value, 400.0, max_relative = 1e-15);
    // Residuals 0, 0, 1, -1 times x: (0 + 0 + 800 + 800) / 4.
    assert_relative_eq!(grad[0], 0.0);
    assert_relative_eq!(grad[1], 400.0, max_relative = 1e-15);
    let right = loss(
        ModelKind::Logistic,
        x.view(),
        aview1(&[1.0, 0.0, 1.0, 0.0]),
        params,
        0.0,
    );
    assert_eq!(right, Ok(0.0));
}

#[test]
fn predict_by_hand() {
    let x = array![[0.0, 1.0], [2.0, -1.0]];
    let params = aview1(&[0.5, 1.0, -2.0]);
    // z = 0.5 - 2 = -1.5 and 0.5 + 2 + 2 = 4.5.
    let linear = predict(ModelKind::Linear, x.view(), params).unwrap();
    assert_relative_eq!(linear[0], -1.5);
    assert_relative_eq!(linear[1], 4.5);
    let logistic = predict(ModelKind::Logistic, x.view(), params).unwrap();
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    assert_relative_eq!(logistic[0], sigmoid(-1.5), epsilon = 1e-15);
    assert_relative_eq!(logistic[1], sigmoid(4.5), epsilon = 1e-15);
    assert_eq!(
        predict(ModelKind::Linear, Array2::zeros((0, 2)).view(), params)
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn predict_refuses_wrong_shapes_and_bad_values() {
    let x = array![[0.0, 1.0], [2.0, -1.0]];
    for kind in [ModelKind::Logistic, ModelKind::Linear] {
        for len in [0, 2, 4] {
            assert_eq!(
                predict(kind, x.view(), Array1::zeros(len).view()),
                Err(ModelError::Dimension {
                    what: "parameters",
                    expected: 3,
                    got: len
                })
            );
        }
        assert!(matches!(
            predict(kind, x.view(), aview1(&[0.0, f64::NAN, 0.0])),
            Err(ModelError::InvalidValues {
                what: "parameters",
                first: 1,
                ..
            })
        ));
        let bad = array![[0.0, 1.0], [f64::NAN, -1.0]];
        assert_eq!(
            predict(kind, bad.view(), aview1(&[0.0, 1.0, 1.0])),
            Err(ModelError::NonFiniteFeature { row: 1, column: 0 })
        );
    }
}

#[test]
fn training_inputs_are_checked() {
    let kind = ModelKind::Linear;
    let x = array![[1.0], [2.0]];
    let y = aview1(&[1.0, 2.0]);
    let params = aview1(&[0.0, 0.0]);
    assert_eq!(
        loss_and_gradient(kind, x.view(), aview1(&[1.0]), params, 0.0),
        Err(ModelError::Dimension {
            what: "labels",
            expected: 2,
            got: 1
        })
    );
    assert!(matches!(
        loss_and_gradient(kind, x.view(), y, aview1(&[0.0]), 0.0),
        Err(ModelError::Dimension {
            what: "parameters",
            ..
        })
    ));
    assert_eq!(
        loss(kind, Array2::zeros((0, 1)).view(), aview1(&[]), params, 0.0),
        Err(ModelError::Empty)
    );
    for l2 in [-0.1, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            loss(kind, x.view(), y, params, l2),
            Err(ModelError::InvalidHyperparameter {
                name: "l2 penalty",
                ..
            })
        ));
    }
    assert_eq!(
        loss(kind, array![[1.0], [f64::INFINITY]].view(), y, params, 0.0),
        Err(ModelError::NonFiniteFeature { row: 1, column: 0 })
    );
    assert_eq!(
        loss(kind, x.view(), aview1(&[1.0, f64::NAN]), params, 0.0),
        Err(ModelError::InvalidLabels {
            family: kind.name(),
            rule: kind.label_rule(),
            invalid: 1,
            total: 2
        })
    );
}

#[test]
fn label_errors_count_rows_and_never_show_values() {
    let y = aview1(&[0.0, 1.0, 0.123_456, 7.5, 1.0]);
    let err = check_labels(ModelKind::Logistic, y).unwrap_err();
    assert_eq!(
        err,
        ModelError::InvalidLabels {
            family: "logistic",
            rule: "exactly 0 or 1",
            invalid: 2,
            total: 5
        }
    );
    let message = err.to_string();
    assert!(message.contains("2 of 5"), "{message}");
    assert!(
        !message.contains("0.123") && !message.contains("7.5"),
        "{message}"
    );
    assert_eq!(check_labels(ModelKind::Linear, y), Ok(()));
    assert_eq!(check_labels(ModelKind::Logistic, aview1(&[])), Ok(()));
}

#[test]
fn gradient_descent_decreases_the_loss_and_classifies() {
    let kind = ModelKind::Logistic;
    let (x, y, _) = data(kind, 200, 3, 4);
    let start = Array1::zeros(4);
    let (fitted, start_loss) =
        gradient_descent(kind, x.view(), y.view(), start.view(), 0.01, 0.5, 200).unwrap();
    assert_relative_eq!(start_loss, std::f64::consts::LN_2, epsilon = 1e-12);
    let end_loss = loss(kind, x.view(), y.view(), fitted.view(), 0.01).unwrap();
    assert!(end_loss < 0.5 * start_loss, "{end_loss} vs {start_loss}");
    let scores = predict(kind, x.view(), fitted.view()).unwrap();
    // Labels come from a linear rule with a little noise, so a fitted model
    // separates nearly all of them.
    let accuracy = metrics::accuracy(scores.view(), y.view(), 0.5).unwrap();
    assert!(accuracy >= 0.9, "accuracy {accuracy}");

    // Every step lowers the loss at a safe learning rate.
    let mut params = start;
    let mut previous = f64::INFINITY;
    for _ in 0..10 {
        let (next, before) =
            gradient_descent(kind, x.view(), y.view(), params.view(), 0.01, 0.5, 1).unwrap();
        assert!(before < previous);
        previous = before;
        params = next;
    }
}

#[test]
fn linear_gradient_descent_reaches_least_squares() {
    // y = 1 + 2x exactly; least squares recovers it.
    let x = array![[-1.0], [0.0], [1.0], [2.0]];
    let y = x.column(0).mapv(|v| 1.0 + 2.0 * v);
    let (fitted, start_loss) = gradient_descent(
        ModelKind::Linear,
        x.view(),
        y.view(),
        aview1(&[0.0, 0.0]),
        0.0,
        0.3,
        500,
    )
    .unwrap();
    assert!(start_loss > 1.0);
    assert_relative_eq!(fitted[0], 1.0, epsilon = 1e-8);
    assert_relative_eq!(fitted[1], 2.0, epsilon = 1e-8);
}

#[test]
fn gradient_descent_edge_cases() {
    let kind = ModelKind::Linear;
    let x = array![[1.0], [3.0]];
    let y = aview1(&[1.0, 2.0]);
    let start = aview1(&[0.5, -0.5]);
    // Zero steps: the start and its loss.
    let (params, start_loss) = gradient_descent(kind, x.view(), y, start, 0.0, 0.1, 0).unwrap();
    assert_eq!(params, start);
    assert_relative_eq!(start_loss, loss(kind, x.view(), y, start, 0.0).unwrap());
    for rate in [0.0, -1.0, f64::NAN] {
        assert!(matches!(
            gradient_descent(kind, x.view(), y, start, 0.0, rate, 5),
            Err(ModelError::InvalidHyperparameter {
                name: "learning rate",
                ..
            })
        ));
    }
    // Far too large a step makes linear regression blow up.
    assert!(matches!(
        gradient_descent(kind, x.view(), y, start, 0.0, 1e3, 1000),
        Err(ModelError::Diverged { steps: 1000, .. })
    ));
    assert_eq!(
        gradient_descent(
            kind,
            array![[f64::NAN], [1.0]].view(),
            y,
            start,
            0.0,
            0.1,
            3
        ),
        Err(ModelError::NonFiniteFeature { row: 0, column: 0 })
    );
}

#[test]
fn prox_with_zero_mu_is_gradient_descent() {
    for kind in [ModelKind::Logistic, ModelKind::Linear] {
        let (x, y, start) = data(kind, 40, 3, 12);
        let anchor = start.mapv(|v| v + 1.0);
        let plain = gradient_descent(kind, x.view(), y.view(), start.view(), 0.1, 0.2, 50).unwrap();
        let prox = gradient_descent_prox(
            kind,
            x.view(),
            y.view(),
            start.view(),
            anchor.view(),
            0.1,
            0.0,
            0.2,
            50,
        )
        .unwrap();
        assert_eq!(prox, plain);
    }
}

#[test]
fn prox_stays_closer_to_the_anchor_as_mu_grows() {
    let kind = ModelKind::Logistic;
    let (x, y, _) = data(kind, 100, 3, 13);
    let anchor = Array1::zeros(4);
    let distance = |mu: f64| {
        let (params, start_loss) = gradient_descent_prox(
            kind,
            x.view(),
            y.view(),
            anchor.view(),
            anchor.view(),
            0.0,
            mu,
            0.3,
            300,
        )
        .unwrap();
        // The reported loss is the plain loss at the start, without the
        // (here zero) proximal term.
        assert_relative_eq!(start_loss, std::f64::consts::LN_2, epsilon = 1e-12);
        (&params - &anchor).mapv(|v| v * v).sum().sqrt()
    };
    let (free, mild, strong) = (distance(0.0), distance(0.5), distance(5.0));
    assert!(
        free > mild && mild > strong && strong > 0.0,
        "{free} {mild} {strong}"
    );
}

#[test]
fn prox_converges_to_the_minimiser_of_the_proximal_objective() {
    // At the fixed point, grad loss + mu (params - anchor) = 0 in every
    // coordinate, the intercept included.
    for kind in [ModelKind::Logistic, ModelKind::Linear] {
        let (x, y, start) = data(kind, 60, 2, 14);
        let anchor = array![0.5, -1.0, 2.0];
        let (mu, l2) = (0.8, 0.2);
        let (params, _) = gradient_descent_prox(
            kind,
            x.view(),
            y.view(),
            start.view(),
            anchor.view(),
            l2,
            mu,
            0.2,
            3000,
        )
        .unwrap();
        let (_, grad) = loss_and_gradient(kind, x.view(), y.view(), params.view(), l2).unwrap();
        let total = grad + mu * (&params - &anchor);
        assert!(total.iter().all(|g| g.abs() < 1e-10), "{total}");
    }
}

#[test]
fn prox_checks_mu_and_anchor() {
    let kind = ModelKind::Linear;
    let x = array![[1.0], [3.0]];
    let y = aview1(&[1.0, 2.0]);
    let start = aview1(&[0.0, 0.0]);
    for mu in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            gradient_descent_prox(kind, x.view(), y, start, start, 0.0, mu, 0.1, 3),
            Err(ModelError::InvalidHyperparameter {
                name: "proximal mu",
                ..
            })
        ));
    }
    assert!(matches!(
        gradient_descent_prox(kind, x.view(), y, start, aview1(&[0.0]), 0.0, 1.0, 0.1, 3),
        Err(ModelError::Dimension { what: "anchor", .. })
    ));
    assert!(matches!(
        gradient_descent_prox(
            kind,
            x.view(),
            y,
            start,
            aview1(&[0.0, f64::NAN]),
            0.0,
            1.0,
            0.1,
            3
        ),
        Err(ModelError::InvalidValues { what: "anchor", .. })
    ));
}
