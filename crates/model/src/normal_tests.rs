use approx::assert_relative_eq;
use ndarray::{Array2, Axis, Slice, array, aview1, concatenate};
use proptest::prelude::*;

use super::*;
use crate::regression::{gradient_descent, loss, loss_and_gradient};
use crate::testing::{columns, linear_data, rows, sites};

#[test]
fn solves_by_hand() {
    // x = -1, 0, 1, 2 and y = 1 + 2x = -1, 1, 3, 5:
    // XᵀX = [[4, 2], [2, 6]], Xᵀy = [8, 1 + 0 + 3 + 10] = [8, 14], yᵀy = 36.
    let x = array![[-1.0], [0.0], [1.0], [2.0]];
    let y = array![-1.0, 1.0, 3.0, 5.0];
    let t = NormalTerms::from_rows(x.view(), y.view()).unwrap();
    assert_eq!(t.xtx, array![[4.0, 2.0], [2.0, 6.0]]);
    assert_eq!(t.xty, array![8.0, 14.0]);
    assert_eq!((t.n, t.yty, t.y_sum), (4, 36.0, 8.0));
    assert_eq!(t.validate(1), Ok(()));

    let (params, train_loss) = solve_normal(&t, 0.0).unwrap();
    assert_relative_eq!(params[0], 1.0, epsilon = 1e-12);
    assert_relative_eq!(params[1], 2.0, epsilon = 1e-12);
    assert_relative_eq!(train_loss, 0.0, epsilon = 1e-12);

    // l2 = 1/2: [[1, 1/2], [1/2, 3/2 + 1/2]] w = [2, 7/2]; det 7/4, so
    // w = (4/7) [2*2 - 7/4, -1 + 7/2] = [9/7, 10/7]. Residuals
    // 9/7 + 10/7 x - y = 6/7, 2/7, -2/7, -6/7: squared sum 80/49, loss
    // 0.5 * 80/49 / 4 + (1/4)(10/7)² = 10/49 + 25/49 = 5/7.
    let (params, train_loss) = solve_normal(&t, 0.5).unwrap();
    assert_relative_eq!(params[0], 9.0 / 7.0, epsilon = 1e-12);
    assert_relative_eq!(params[1], 10.0 / 7.0, epsilon = 1e-12);
    assert_relative_eq!(train_loss, 5.0 / 7.0, epsilon = 1e-12);
    assert_relative_eq!(
        train_loss,
        loss(ModelKind::Linear, x.view(), y.view(), params.view(), 0.5).unwrap(),
        epsilon = 1e-12
    );
}

#[test]
fn merged_sites_give_the_pooled_least_squares_fit() {
    let (x, y) = linear_data(300, 4, 21);
    for l2 in [0.0, 0.1] {
        let mut merged = NormalTerms::zeros(4);
        for (xs, ys) in sites(&x, &y, &[60, 61, 200]) {
            let site = NormalTerms::from_rows(xs, ys).unwrap();
            site.validate(4).unwrap();
            merged.merge(&site).unwrap();
        }
        let (params, train_loss) = solve_normal(&merged, l2).unwrap();
        let kind = ModelKind::Linear;
        // Optimality on the pooled rows, computed independently.
        let (pooled_loss, gradient) =
            loss_and_gradient(kind, x.view(), y.view(), params.view(), l2).unwrap();
        assert!(gradient.iter().all(|g| g.abs() < 1e-12), "{gradient}");
        assert_relative_eq!(train_loss, pooled_loss, max_relative = 1e-10);
        // And long gradient descent on the pooled rows agrees.
        let (gd, _) =
            gradient_descent(kind, x.view(), y.view(), aview1(&[0.0; 5]), l2, 0.5, 3000).unwrap();
        for (a, b) in params.iter().zip(&gd) {
            assert_relative_eq!(*a, *b, epsilon = 1e-10, max_relative = 1e-8);
        }
    }
}

#[test]
fn collinear_features_without_penalty_still_solve() {
    let (x, y) = linear_data(80, 2, 3);
    // A constant (all-zero after standardisation) column and a duplicate.
    let x = concatenate(
        Axis(1),
        &[
            x.view(),
            Array2::zeros((80, 1)).view(),
            columns(x.view(), 1, 2),
        ],
    )
    .unwrap();
    let t = NormalTerms::from_rows(x.view(), y.view()).unwrap();
    let (params, train_loss) = solve_normal(&t, 0.0).unwrap();
    assert_eq!(params[3], 0.0);
    assert_relative_eq!(params[2], params[4], max_relative = 1e-6);
    let (pooled_loss, gradient) =
        loss_and_gradient(ModelKind::Linear, x.view(), y.view(), params.view(), 0.0).unwrap();
    assert!(gradient.iter().all(|g| g.abs() < 1e-6), "{gradient}");
    assert_relative_eq!(train_loss, pooled_loss, max_relative = 1e-8);
}

#[test]
fn solve_refuses_bad_inputs() {
    assert_eq!(
        solve_normal(&NormalTerms::zeros(2), 0.0),
        Err(ModelError::Empty)
    );
    let t = NormalTerms::from_rows(array![[1.0], [2.0]].view(), aview1(&[1.0, 2.0])).unwrap();
    assert!(matches!(
        solve_normal(&t, -1.0),
        Err(ModelError::InvalidHyperparameter { .. })
    ));
    let mut empty = NormalTerms::zeros(0);
    empty.xty = Array1::zeros(0);
    assert!(matches!(
        solve_normal(&empty, 0.0),
        Err(ModelError::Dimension { .. })
    ));
    assert!(matches!(
        NormalTerms::from_rows(array![[1.0]].view(), aview1(&[f64::NAN])),
        Err(ModelError::InvalidLabels { invalid: 1, .. })
    ));
    assert_eq!(
        NormalTerms::from_rows(array![[1.0], [f64::NAN]].view(), aview1(&[1.0, 2.0])),
        Err(ModelError::NonFiniteFeature { row: 1, column: 0 })
    );
}

#[test]
fn validate_refuses_impossible_terms() {
    let (x, y) = linear_data(10, 2, 1);
    let good = NormalTerms::from_rows(x.view(), y.view()).unwrap();
    assert_eq!(good.validate(2), Ok(()));
    let mut bad = good.clone();
    bad.xtx[[0, 0]] = 9.0;
    assert!(matches!(
        bad.validate(2),
        Err(ModelError::InvalidAggregate {
            what: "xtx[0][0]",
            ..
        })
    ));
    let mut bad = good.clone();
    bad.xtx[[2, 1]] += 0.5;
    assert_eq!(
        bad.validate(2),
        Err(ModelError::Asymmetric {
            what: "xtx",
            row: 1,
            column: 2
        })
    );
    let mut bad = good.clone();
    bad.y_sum += 1.0;
    assert!(matches!(
        bad.validate(2),
        Err(ModelError::InvalidAggregate { what: "xty[0]", .. })
    ));
    let mut bad = good.clone();
    bad.yty = 0.0;
    assert!(matches!(
        bad.validate(2),
        Err(ModelError::InvalidAggregate { what: "y_sum", .. })
    ));
    let mut bad = good.clone();
    bad.xty[1] = f64::INFINITY;
    assert!(matches!(
        bad.validate(2),
        Err(ModelError::InvalidValues { first: 1, .. })
    ));
    let mut bad = NormalTerms::zeros(2);
    bad.yty = 1.0;
    assert!(matches!(
        bad.validate(2),
        Err(ModelError::InvalidAggregate {
            what: "sums of zero rows",
            ..
        })
    ));
    assert!(matches!(
        good.validate(1),
        Err(ModelError::Dimension { .. })
    ));
    let mut other = NormalTerms::zeros(3);
    let before = other.clone();
    assert!(matches!(
        other.merge(&good),
        Err(ModelError::Dimension { .. })
    ));
    assert_eq!(other, before);
}

proptest! {
    #[test]
    fn merging_any_split_equals_the_whole(n in 0usize..40, d in 0usize..4, seed: u64, cut in 0.0f64..=1.0) {
        let (x, y) = linear_data(n, d, seed);
        let whole = NormalTerms::from_rows(x.view(), y.view()).unwrap();
        let split = (n as f64 * cut) as usize;
        let mut merged = NormalTerms::from_rows(rows(x.view(), 0, split), y.slice_axis(Axis(0), Slice::from(..split))).unwrap();
        merged
            .merge(&NormalTerms::from_rows(rows(x.view(), split, n), y.slice_axis(Axis(0), Slice::from(split..))).unwrap())
            .unwrap();
        prop_assert_eq!(merged.n, whole.n);
        prop_assert!(merged.validate(d).is_ok());
        for (a, b) in merged.xtx.iter().chain(&merged.xty).zip(whole.xtx.iter().chain(&whole.xty)) {
            prop_assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0));
        }
        prop_assert!((merged.yty - whole.yty).abs() <= 1e-9 * whole.yty.max(1.0));
    }
}
