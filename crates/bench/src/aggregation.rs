//! The coordinator's aggregation: many updates folded into medfed_aggregate's
//! FedAvg as they arrive.

use std::hint::black_box;
use std::time::Instant;

use anyhow::Context;
use medfed_aggregate::{FedAvg, Strategy};
use ndarray::{Array1, Array2};

use crate::rss::own_rss_kib;
use crate::stats::Sample;

/// What aggregation cost.
pub struct Aggregation {
    /// Updates per round and parameters per update.
    pub shape: (usize, usize),
    /// Seconds to add every update and finish the round.
    pub seconds: Sample,
    /// Growth of this process's resident set while `shape.0` updates were
    /// folded in one at a time through one reused buffer, in KiB.
    pub rss_growth_kib: f64,
}

impl Aggregation {
    /// The timings in milliseconds.
    pub fn seconds_ms(&self) -> Vec<f64> {
        (0..self.seconds.len())
            .map(|i| self.seconds.get(i) * 1e3)
            .collect()
    }
}

/// Times FedAvg over `updates` distinct updates of `parameters` values
/// (generated beforehand, so only the aggregation is timed), `repeats`
/// times; then measures the memory a round holds by folding the same
/// number of updates in through one reused buffer and reading the resident
/// set before and after.
///
/// # Errors
/// The aggregator refused an update or produced no model.
pub fn fedavg(updates: usize, parameters: usize, repeats: usize) -> anyhow::Result<Aggregation> {
    let mut rng = fastrand::Rng::with_seed(17);
    let pool = Array2::from_shape_fn((updates, parameters), |_| rng.f64() - 0.5);
    let weights: Vec<f64> = (0..updates).map(|i| 50.0 + (i % 200) as f64).collect();
    let mut seconds = Sample::default();
    for _ in 0..repeats {
        let started = Instant::now();
        let mut round = FedAvg.start_round(parameters);
        for (update, &weight) in pool.rows().into_iter().zip(&weights) {
            round.add(update, weight)?;
        }
        let model = round.finish().context("FedAvg produced no model")?;
        seconds.push(started.elapsed().as_secs_f64());
        black_box(model);
    }
    drop(pool);

    let mut buffer = Array1::from_shape_fn(parameters, |_| rng.f64() - 0.5);
    let before = own_rss_kib().unwrap_or(0);
    let mut round = FedAvg.start_round(parameters);
    for (i, &weight) in weights.iter().enumerate() {
        // As a decoded update would: new values each time, same buffer.
        buffer[i % parameters] += 1.0;
        round.add(buffer.view(), weight)?;
    }
    let after = own_rss_kib().unwrap_or(0);
    black_box(round.finish().context("FedAvg produced no model")?);
    Ok(Aggregation {
        shape: (updates, parameters),
        seconds,
        rss_growth_kib: after.saturating_sub(before) as f64,
    })
}
