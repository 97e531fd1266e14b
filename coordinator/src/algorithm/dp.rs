//! Differential privacy around an algorithm of model updates (DP-FedAvg).
//! Each member clips its update and, under secure aggregation, noises it
//! itself; the sum weighs members equally. The wrapper does the
//! coordinator's part: under secure aggregation it checks that the
//! unmasked weight is the number of survivors; in clear it adds the central
//! noise when the round's sum needs it; either way no training loss is
//! released, since it is data-dependent and not covered by the guarantee.
//! The wrapped algorithm sees only the private sum.
//!
//! # Who noises a clear sum
//! Without secure aggregation each member decides where its noise goes
//! (its `[policy] trust_coordinator_noise`) and says so in the privacy
//! spend of every update ([`medfed_wire::PrivacySpend::placement`]): an
//! update noised in full by its member (local placement) is already a
//! Gaussian mechanism with the charged σ and needs nothing more; an update
//! clipped only (central placement) is protected only once the coordinator
//! adds `N(0, (σC)²)` to the sum. The inbox counts the clipped-only updates
//! of the round ([`medfed_wire::summed::PooledUpdate::clipped_only`]), and
//! the wrapper adds the central noise to the whole sum when that count is
//! not 0. A round of mixed updates thus keeps the guarantee for every
//! member (the central noise covers the clipped ones; the local ones carry
//! their own), and a round of updates all noised locally gets no needless
//! noise on top.

use medfed_secure::dp::{DpConfig, DpError, os_seeded_rng};
use medfed_wire::ModelUpdate;
use medfed_wire::Task;
use ndarray::Array1;

use crate::algorithm::{Algorithm, CollectedBy, Control, Work};
use crate::run_error::RunError;

/// `A` with differential privacy on its sums.
pub struct Dp<A> {
    inner: A,
    /// The central noise, in clear only (under secure aggregation each
    /// member noised its own update), added to a sum that holds an update
    /// clipped only.
    central: Option<DpConfig>,
    /// Whether sums are formed under secure aggregation.
    secure: bool,
}

impl<A> Dp<A> {
    /// `inner` with the differential privacy of `task`.
    pub fn new(inner: A, task: &Task) -> Self {
        let secure = task.secure_aggregation.is_some();
        Dp {
            inner,
            central: task.dp_config().filter(|_| !secure),
            secure,
        }
    }
}

impl<A: Algorithm<Answer = ModelUpdate>> Algorithm for Dp<A> {
    type Answer = ModelUpdate;
    const CHECKPOINTS_ROUNDS: bool = A::CHECKPOINTS_ROUNDS;

    fn rounds(&self) -> u32 {
        self.inner.rounds()
    }

    fn configure(&mut self, round: u32) -> Option<Work<ModelUpdate>> {
        self.inner.configure(round)
    }

    /// Under secure aggregation each member masks `[clipped and noised
    /// update..., 1, 0]`, so the unmasked weight must be the number of
    /// survivors (which is public). This replaces the wrapped algorithm's
    /// check of declared rows: in a DP task no member releases its rows.
    fn check(&self, round: u32, sum: &CollectedBy<Self>) -> Result<(), RunError> {
        if !self.secure {
            return Ok(());
        }
        let weight = sum.sum.weight;
        let count = sum.contributors.len() as f64;
        if (weight - count).abs() > 0.5 {
            return Err(RunError::SecureAggregation {
                step: format!("round {round}"),
                reason: format!(
                    "the unmasked contributor count {weight} is not the {count} survivors: the \
                     sum is wrong and no model is made from it"
                ),
            });
        }
        Ok(())
    }

    /// Noises the sum (in clear, when an update in it came clipped only),
    /// withholds the loss, and hands the result on; a failure is the
    /// wrapped algorithm's to judge.
    fn aggregate(
        &mut self,
        round: u32,
        result: Result<CollectedBy<Self>, RunError>,
    ) -> Result<Control, RunError> {
        let mut collected = match result {
            Ok(collected) => collected,
            Err(error) => return self.inner.aggregate(round, Err(error)),
        };
        if let Some(dp) = &self.central
            && collected.sum.clipped_only > 0
        {
            let contributors = collected.contributors.len();
            central_noise(dp, &mut collected.sum.delta, contributors, round)?;
        }
        // Not released in DP rounds (a securely aggregated DP sum already
        // reads it as NaN).
        collected.sum.train_loss = f64::NAN;
        self.inner.aggregate(round, Ok(collected))
    }

    fn model(&self) -> Array1<f64> {
        self.inner.model()
    }
}

/// DP-FedAvg with central noise: `mean` is the equally weighted mean of
/// `contributors` clipped updates; the sum gets Gaussian noise of standard
/// deviation σ·C before it is divided again (the coordinator is trusted: it
/// sees the sum before noising).
///
/// # Errors
/// No randomness from the operating system, or noise the configuration
/// cannot make.
fn central_noise(
    dp: &DpConfig,
    mean: &mut Array1<f64>,
    contributors: usize,
    round: u32,
) -> Result<(), RunError> {
    let failed = |e: DpError| RunError::Privacy {
        round,
        reason: e.to_string(),
    };
    let k = contributors as f64;
    let mut sum: Vec<f64> = mean.iter().map(|v| v * k).collect();
    let mut rng = os_seeded_rng().map_err(failed)?;
    dp.add_central_noise(&mut sum, &mut rng).map_err(failed)?;
    for (m, s) in mean.iter_mut().zip(sum) {
        *m = s / k;
    }
    Ok(())
}
