use approx::assert_relative_eq;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Slice, array, aview1, concatenate};
use proptest::prelude::*;

use super::*;
use crate::error::ModelError;
use crate::kind::ModelKind;
use crate::regression::{gradient_descent, loss, loss_and_gradient};
use crate::rng::SplitMix64;
use crate::testing::{columns, logistic_data, rows, sites};

type Site<'a> = (ArrayView2<'a, f64>, ArrayView1<'a, f64>);

fn merged_terms(sites: &[Site<'_>], params: ArrayView1<'_, f64>) -> NewtonTerms {
    let mut total = NewtonTerms::zeros(params.len() - 1);
    for (x, y) in sites {
        let site = NewtonTerms::from_rows(*x, *y, params).unwrap();
        site.validate(params.len() - 1).unwrap();
        total.merge(&site).unwrap();
    }
    total
}

/// Runs rounds until the solver says stop or `max_rounds` pass; returns
/// the number of rounds (evaluations by the sites) and the reason.
fn run(
    solver: &mut NewtonSolver,
    sites: &[Site<'_>],
    max_rounds: usize,
    tolerances: &Tolerances,
) -> (usize, Option<StopReason>) {
    for round in 1..=max_rounds {
        let terms = merged_terms(sites, solver.current());
        solver.propose(&terms).unwrap();
        if let Some(reason) = solver.converged(tolerances) {
            return (round, Some(reason));
        }
    }
    (max_rounds, None)
}

#[test]
fn one_newton_step_by_hand() {
    // Rows x = 0, 1, 2 with labels 0, 1, 1, from params 0, l2 = 0. Every
    // p = 1/2 (terms by hand in terms.rs), so with N = 3
    //   g = [-0.5, -1.5] / 3 = [-1/6, -1/2],
    //   H = [[0.75, 0.75], [0.75, 1.25]] / 3 = [[1/4, 1/4], [1/4, 5/12]].
    // det H = 5/48 - 3/48 = 1/24, so H⁻¹ = 24 [[5/12, -1/4], [-1/4, 1/4]]
    // = [[10, -6], [-6, 6]], and Δ = -H⁻¹ g = -[-10/6 + 3, 1 - 3]
    // = [-4/3, 2]. Check: H Δ = [-1/3 + 1/2, -1/3 + 5/6] = [1/6, 1/2] = -g.
    let x = array![[0.0], [1.0], [2.0]];
    let y = array![0.0, 1.0, 1.0];
    let mut solver = NewtonSolver::new(aview1(&[0.0, 0.0]), 0.0).unwrap();
    let terms = NewtonTerms::from_rows(x.view(), y.view(), solver.current()).unwrap();
    let proposal = solver.propose(&terms).unwrap();
    assert_eq!(proposal.reason, ProposalReason::Newton { ridge: None });
    assert_relative_eq!(proposal.params[0], -4.0 / 3.0, epsilon = 1e-12);
    assert_relative_eq!(proposal.params[1], 2.0, epsilon = 1e-12);
    assert_eq!(solver.current(), proposal.params.view());
    assert_eq!(solver.best(), Some(aview1(&[0.0, 0.0])));
    assert_relative_eq!(
        solver.objectives()[0],
        std::f64::consts::LN_2,
        epsilon = 1e-15
    );
    // ||g|| = sqrt(1/36 + 1/4).
    assert_relative_eq!(
        solver.gradient_norm().unwrap(),
        (1.0f64 / 36.0 + 0.25).sqrt(),
        epsilon = 1e-15
    );
    // The step is large, so nothing has converged yet.
    assert_eq!(solver.converged(&Tolerances::default()), None);

    // With l2 = 1/2 the weight's curvature grows to 5/12 + 1/2 = 11/12:
    // det = 11/48 - 3/48 = 1/6, H⁻¹ = 6 [[11/12, -1/4], [-1/4, 1/4]], and
    // Δ = -H⁻¹ g = -6 [-11/72 + 1/8, 1/24 - 1/8] = [1/6, 1/2].
    let mut solver = NewtonSolver::new(aview1(&[0.0, 0.0]), 0.5).unwrap();
    let proposal = solver.propose(&terms).unwrap();
    assert_relative_eq!(proposal.params[0], 1.0 / 6.0, epsilon = 1e-12);
    assert_relative_eq!(proposal.params[1], 0.5, epsilon = 1e-12);
}

#[test]
fn federated_newton_reaches_the_pooled_optimum_in_few_rounds() {
    let (x, y) = logistic_data(400, 3, 11);
    let parts = sites(&x, &y, &[90, 200, 260]);
    for l2 in [0.0, 0.05] {
        let mut solver = NewtonSolver::new(Array1::zeros(4).view(), l2).unwrap();
        let (rounds, reason) = run(&mut solver, &parts, 10, &Tolerances::default());
        assert!(reason.is_some(), "no convergence in 10 rounds (l2 {l2})");
        assert!(rounds <= 10);
        let newton = solver.best().unwrap().to_owned();

        // Long gradient descent on the pooled rows, converged far below
        // the tolerance compared.
        let kind = ModelKind::Logistic;
        let (gd, _) =
            gradient_descent(kind, x.view(), y.view(), aview1(&[0.0; 4]), l2, 2.0, 4000).unwrap();
        let (_, gd_gradient) = loss_and_gradient(kind, x.view(), y.view(), gd.view(), l2).unwrap();
        assert!(gd_gradient.iter().all(|g| g.abs() < 1e-12), "{gd_gradient}");
        for (a, b) in newton.iter().zip(&gd) {
            assert_relative_eq!(*a, *b, max_relative = 1e-6);
        }
        assert_relative_eq!(
            solver.best_objective().unwrap(),
            loss(kind, x.view(), y.view(), gd.view(), l2).unwrap(),
            max_relative = 1e-12
        );
    }
}

#[test]
fn a_bad_start_backtracks_and_never_increases_the_objective() {
    let (x, y) = logistic_data(200, 2, 4);
    let parts = sites(&x, &y, &[50, 120]);
    // Far from the optimum (about [0.5, 1, 0.4]): a full Newton step from
    // here overshoots.
    let mut solver = NewtonSolver::new(aview1(&[8.0, -12.0, 9.0]), 0.01).unwrap();
    let mut backtracks = 0;
    for _ in 0..60 {
        let terms = merged_terms(&parts, solver.current());
        let proposal = solver.propose(&terms).unwrap();
        if let ProposalReason::Backtrack { step } = proposal.reason {
            backtracks += 1;
            assert!(step < 1.0);
        }
        if solver.converged(&Tolerances::default()).is_some() {
            break;
        }
    }
    assert!(backtracks > 0, "the start was meant to force a backtrack");
    assert!(solver.objectives().windows(2).all(|w| w[1] <= w[0]));
    assert!(matches!(
        solver.converged(&Tolerances::default()),
        Some(
            StopReason::GradientNorm { .. }
                | StopReason::ParamChange { .. }
                | StopReason::ObjectiveChange { .. }
        )
    ));
}

#[test]
fn collinear_features_without_penalty_need_a_ridge() {
    let (x, y) = logistic_data(100, 2, 8);
    // A third column equal to the first: the Hessian is singular at l2 = 0.
    let x = concatenate(Axis(1), &[x.view(), columns(x.view(), 0, 1)]).unwrap();
    let parts = sites(&x, &y, &[40]);
    let mut solver = NewtonSolver::new(Array1::zeros(4).view(), 0.0).unwrap();
    let terms = merged_terms(&parts, solver.current());
    let proposal = solver.propose(&terms).unwrap();
    let ProposalReason::Newton { ridge: Some(ridge) } = proposal.reason else {
        panic!("expected a ridged Newton step, got {:?}", proposal.reason);
    };
    assert!(ridge > 0.0 && ridge < 1e-8);
    // The duplicated columns share the weight equally (the minimum-norm
    // split the ridge selects), and the fit still converges.
    let (_, reason) = run(&mut solver, &parts, 15, &Tolerances::default());
    assert!(reason.is_some());
    let best = solver.best().unwrap();
    assert_relative_eq!(best[1], best[3], max_relative = 1e-6);
}

#[test]
fn the_line_search_gives_up_below_the_step_floor() {
    let (x, y) = logistic_data(30, 1, 2);
    let mut solver = NewtonSolver::new(aview1(&[0.0, 0.0]), 0.1).unwrap();
    let first = NewtonTerms::from_rows(x.view(), y.view(), solver.current()).unwrap();
    solver.propose(&first).unwrap();
    // Sites that (wrongly) always report a worse loss: every candidate is
    // rejected until the step is 2^-34 < 1e-10.
    let mut worse = first.clone();
    worse.loss_sum += 1.0;
    let mut halvings = 0;
    let last = loop {
        let proposal = solver.propose(&worse).unwrap();
        match proposal.reason {
            ProposalReason::Backtrack { step } => {
                halvings += 1;
                assert_eq!(step, 0.5f64.powi(halvings));
            }
            ProposalReason::Stopped(reason) => break (proposal.params, reason),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(halvings, 33);
    assert_eq!(last.0, aview1(&[0.0, 0.0]));
    let expected = StopReason::LineSearchFailed {
        step: 0.5f64.powi(34),
    };
    assert_eq!(last.1, expected);
    assert_eq!(solver.converged(&Tolerances::default()), Some(expected));
    assert!(expected.to_string().contains("line search failed"));
    // Stopped for good: the same answer, whatever is passed.
    assert_eq!(
        solver.propose(&first).unwrap().reason,
        ProposalReason::Stopped(expected)
    );
    assert_eq!(solver.objectives().len(), 1);
}

#[test]
fn rounds_must_cover_the_same_rows() {
    let (x, y) = logistic_data(30, 2, 6);
    let mut solver = NewtonSolver::new(Array1::zeros(3).view(), 0.1).unwrap();
    solver
        .propose(&NewtonTerms::from_rows(x.view(), y.view(), solver.current()).unwrap())
        .unwrap();
    let before = solver.current().to_owned();
    let fewer = NewtonTerms::from_rows(
        rows(x.view(), 0, 20),
        y.slice_axis(Axis(0), Slice::from(..20)),
        solver.current(),
    )
    .unwrap();
    assert_eq!(
        solver.propose(&fewer),
        Err(ModelError::InconsistentCounts {
            what: "rows in Newton terms",
            expected: 30,
            got: 20
        })
    );
    assert_eq!(solver.current(), before.view());
    assert_eq!(
        solver.propose(&NewtonTerms::zeros(2)),
        Err(ModelError::Empty)
    );
    assert!(matches!(
        solver.propose(&NewtonTerms::zeros(3)),
        Err(ModelError::Dimension { .. })
    ));
}

#[test]
fn constructor_checks_its_inputs() {
    assert!(matches!(
        NewtonSolver::new(aview1(&[]), 0.0),
        Err(ModelError::Dimension { .. })
    ));
    assert!(matches!(
        NewtonSolver::new(aview1(&[f64::NAN]), 0.0),
        Err(ModelError::InvalidValues { .. })
    ));
    assert!(matches!(
        NewtonSolver::new(aview1(&[0.0]), -1.0),
        Err(ModelError::InvalidHyperparameter { .. })
    ));
    let solver = NewtonSolver::new(aview1(&[0.0]), 0.5).unwrap();
    assert_eq!(solver.l2(), 0.5);
    assert_eq!(solver.step(), 1.0);
    assert_eq!(solver.best(), None);
    assert_eq!(solver.converged(&Tolerances::default()), None);
}

/// Random small problems: labels from a random rule with random noise, so
/// some are nearly separable; starts far from the optimum.
fn problem() -> impl Strategy<Value = (Array2<f64>, Array1<f64>, Array1<f64>, f64, usize)> {
    (5usize..40, 1usize..4, any::<u64>(), 0.0f64..1.0, 1usize..4).prop_map(
        |(n, d, seed, l2, cuts)| {
            let mut rng = SplitMix64::new(seed);
            let x = Array2::from_shape_simple_fn((n, d), || 6.0 * rng.unit() - 3.0);
            let y = (0..n).map(|_| f64::from(rng.unit() < 0.5)).collect();
            let start = (0..=d).map(|_| 40.0 * rng.unit() - 20.0).collect();
            // l2 = 0 a quarter of the time, to include unpenalised fits.
            let l2 = if l2 < 0.25 { 0.0 } else { l2 };
            (x, y, start, l2, cuts)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn accepted_objectives_never_increase((x, y, start, l2, cuts) in problem()) {
        let n = x.nrows();
        let cut_rows: Vec<usize> = (1..=cuts).map(|c| c * n / (cuts + 1)).collect();
        let parts = sites(&x, &y, &cut_rows);
        let mut solver = NewtonSolver::new(start.view(), l2).unwrap();
        for _ in 0..40 {
            let terms = merged_terms(&parts, solver.current());
            let proposal = solver.propose(&terms);
            // Unpenalised, separable data drive weights to infinity, where
            // the terms may overflow; that is an error, never an increase.
            if proposal.is_err() || solver.converged(&Tolerances::default()).is_some() {
                break;
            }
        }
        let objectives = solver.objectives();
        prop_assert!(!objectives.is_empty());
        for w in objectives.windows(2) {
            prop_assert!(w[1] <= w[0], "objective rose from {} to {}", w[0], w[1]);
        }
        // Each accepted objective is the pooled loss at an accepted point;
        // the last one is checked against `loss` directly.
        if let (Some(best), Some(f)) = (solver.best(), solver.best_objective()) {
            let pooled = loss(ModelKind::Logistic, x.view(), y.view(), best, l2).unwrap();
            prop_assert!((pooled - f).abs() <= 1e-12 * pooled.abs().max(1.0));
        }
    }
}

/// Sums rounded to a fixed point can make an objective look a little higher
/// than it is. Near the optimum a step's true decrease is tiny, so such a
/// step is taken for a rise and backtracked; with an allowance for that
/// much noise it is accepted.
#[test]
fn declared_objective_noise_keeps_rounding_from_rejecting_a_step() {
    let (x, y) = logistic_data(200, 3, 7);
    let start = Array1::zeros(4);
    let propose_near_optimum = |noise: Option<f64>| {
        let mut solver = NewtonSolver::new(start.view(), 0.0).unwrap();
        if let Some(noise) = noise {
            solver.allow_objective_noise(noise);
        }
        for _ in 0..6 {
            let terms = NewtonTerms::from_rows(x.view(), y.view(), solver.current()).unwrap();
            solver.propose(&terms).unwrap();
        }
        // The next point's terms, with the loss sum reported just above
        // the last accepted one, as a rounded sum could report it.
        let best = solver.best_objective().unwrap();
        let mut terms = NewtonTerms::from_rows(x.view(), y.view(), solver.current()).unwrap();
        terms.loss_sum = (best + 1e-12) * terms.n as f64;
        solver.propose(&terms).unwrap().reason
    };
    let exact = propose_near_optimum(None);
    assert!(
        matches!(exact, ProposalReason::Backtrack { .. }),
        "{exact:?}"
    );
    let noisy = propose_near_optimum(Some(1e-12));
    assert!(matches!(noisy, ProposalReason::Newton { .. }), "{noisy:?}");
}
