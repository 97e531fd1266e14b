//! Poisson regression through the generic API against statsmodels.
//!
//! The constants come from `scripts/reference/poisson_heart.py` (statsmodels
//! `GLM(family=Poisson())`, IRLS to a deviance change of 1e-14), which fits
//! the count target `ca` of the bundled heart data on five standardised
//! numeric features; this test reads the same files from the repository's
//! `data/heart/`, applies the same row filter and standardisation, and fits
//! with federated Newton over the four sites.

use std::path::PathBuf;

use medfed_model::{NewtonSolver, NewtonTerms, Poisson, Rows, Tolerances, glm};
use ndarray::{Array1, Array2, ArrayView1, Axis};

// Printed by scripts/reference/poisson_heart.py:
// rows kept: 308, sum of ca: 209
// statsmodels 0.15.0, converged: True
const DEVIANCE: f64 = 329.05347217089843;
const COEFFICIENTS: [f64; 6] = [
    -0.588622402213416,    // intercept
    0.4886986667927441,    // age
    -0.049121656104389316, // trestbps
    0.039296866515074885,  // chol
    -0.13399910372077914,  // thalach
    0.24068827260738113,   // oldpeak
];

const SITES: [&str; 4] = ["cleveland", "hungarian", "switzerland", "va"];
const FEATURES: [&str; 5] = ["age", "trestbps", "chol", "thalach", "oldpeak"];
const TARGET: &str = "ca";

/// One site's complete rows: features then target, as the script keeps
/// them (a cell that is empty or not a number makes the row incomplete).
fn site_rows(site: &str) -> Vec<[f64; 6]> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/heart")
        .join(format!("{site}.csv"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .unwrap_or_else(|| panic!("{site}.csv has no column {name}"))
    };
    let wanted: Vec<usize> = FEATURES
        .iter()
        .chain(std::iter::once(&TARGET))
        .map(|name| column(name))
        .collect();
    lines
        .filter(|line| !line.trim().is_empty())
        .filter_map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let mut row = [0.0; 6];
            for (value, &j) in row.iter_mut().zip(&wanted) {
                *value = cells.get(j)?.trim().parse::<f64>().ok()?;
                if !value.is_finite() {
                    return None;
                }
            }
            Some(row)
        })
        .collect()
}

/// Every site's complete rows, standardised with the pooled mean and
/// population standard deviation; returns each site's `(x, y)`.
fn sites() -> Vec<(Array2<f64>, Array1<f64>)> {
    let per_site: Vec<Vec<[f64; 6]>> = SITES.iter().map(|s| site_rows(s)).collect();
    let all: Vec<&[f64; 6]> = per_site.iter().flatten().collect();
    let n = all.len() as f64;
    let mean: Vec<f64> = (0..5)
        .map(|j| all.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let sd: Vec<f64> = (0..5)
        .map(|j| {
            let ss: f64 = all.iter().map(|r| (r[j] - mean[j]).powi(2)).sum();
            (ss / n).sqrt()
        })
        .collect();
    per_site
        .iter()
        .map(|rows| {
            let x = Array2::from_shape_fn((rows.len(), 5), |(i, j)| (rows[i][j] - mean[j]) / sd[j]);
            let y = rows.iter().map(|r| r[5]).collect();
            (x, y)
        })
        .collect()
}

fn merged_terms(sites: &[(Array2<f64>, Array1<f64>)], params: ArrayView1<'_, f64>) -> NewtonTerms {
    let mut total = NewtonTerms::zeros(5);
    for (x, y) in sites {
        let site = NewtonTerms::from_family(Poisson, Rows::new(x.view(), y.view()), params)
            .expect("site terms");
        site.validate_for(Poisson, 5).expect("valid terms");
        total.merge(&site).expect("merge");
    }
    total
}

#[test]
fn federated_newton_matches_statsmodels_on_the_heart_data() {
    let sites = sites();
    let rows: usize = sites.iter().map(|(_, y)| y.len()).sum();
    let total: f64 = sites.iter().map(|(_, y)| y.sum()).sum();
    assert_eq!((rows, total), (308, 209.0), "the script's row filter");

    let mut solver = NewtonSolver::for_family(Poisson, Array1::zeros(6).view(), 0.0).unwrap();
    let tolerances = Tolerances {
        objective: 1e-15,
        params: 1e-12,
        gradient: 1e-12,
    };
    let mut rounds = 0;
    while solver.converged(&tolerances).is_none() {
        rounds += 1;
        assert!(rounds <= 50, "no convergence in 50 rounds");
        let terms = merged_terms(&sites, solver.current());
        solver.propose(&terms).unwrap();
    }
    let params = solver.best().unwrap().to_owned();
    for (j, (&ours, &reference)) in params.iter().zip(&COEFFICIENTS).enumerate() {
        let relative = (ours - reference).abs() / reference.abs();
        assert!(
            relative <= 1e-6,
            "coefficient {j}: {ours} against statsmodels' {reference} (relative {relative:e})"
        );
    }
    // The loss is half the deviance, so the summed loss at the optimum is
    // statsmodels' deviance / 2.
    let terms = merged_terms(&sites, params.view());
    let deviance = 2.0 * terms.loss_sum;
    assert!(
        (deviance - DEVIANCE).abs() <= 1e-9 * DEVIANCE,
        "deviance {deviance} against {DEVIANCE}"
    );

    // The pooled rows give the same fit with the plain generic functions.
    let x = ndarray::concatenate(
        Axis(0),
        &sites.iter().map(|(x, _)| x.view()).collect::<Vec<_>>(),
    )
    .unwrap();
    let y = ndarray::concatenate(
        Axis(0),
        &sites.iter().map(|(_, y)| y.view()).collect::<Vec<_>>(),
    )
    .unwrap();
    let pooled = Rows::new(x.view(), y.view());
    let (loss, gradient) = glm::loss_and_gradient(Poisson, pooled, params.view(), 0.0).unwrap();
    assert!((2.0 * loss * rows as f64 - DEVIANCE).abs() <= 1e-9 * DEVIANCE);
    assert!(
        gradient.dot(&gradient).sqrt() < 1e-10,
        "gradient {gradient}"
    );
    let counts = glm::evaluate(Poisson, pooled, params.view(), 0).unwrap();
    assert!((counts.deviance_sum - DEVIANCE).abs() <= 1e-9 * DEVIANCE);
    assert!((counts.sum_mu - total).abs() <= 1e-9 * total);
}
