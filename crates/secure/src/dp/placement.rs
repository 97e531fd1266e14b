//! Where the noise is added, and the validated DP-FedAvg configuration that
//! clips and noises updates accordingly.
//!
//! # The three placements
//! With `n` sites, clip norm `C` and noise multiplier `σ`, the accountant
//! charges every site for a Gaussian mechanism with sensitivity `C` and noise
//! standard deviation `σ·C` on the sum of clipped updates. What differs is
//! who adds the noise and who is protected:
//!
//! - [`NoisePlacement::Central`]: each site sends its clipped update; the
//!   coordinator adds `N(0, (σC)²)` per coordinate to the sum. The published
//!   model is protected; the coordinator is trusted, since it sees the
//!   un-noised sum (and, without secure aggregation, each site's update).
//! - [`NoisePlacement::Local`]: each site adds the full `N(0, (σC)²)` to its
//!   own clipped update, so every update the coordinator sees is itself a
//!   Gaussian mechanism with the charged σ. The price is utility: the sum of
//!   `n` updates carries noise of standard deviation `σC·√n`, `√n` times more
//!   than the guarantee needs. This is the placement to use without secure
//!   aggregation when the coordinator is not trusted.
//! - [`NoisePlacement::LocalWithSecureAggregation`]: secure aggregation
//!   reveals only the sum, so each site adds `N(0, (σC)²/t)`, where `t` is
//!   `min_contributors`. Independent Gaussians add variances, so a sum of
//!   `k >= t` sites' updates carries noise `σC·√(k/t) >= σC`. Choose `t`
//!   equal to the secure-aggregation threshold: fewer than `t` survivors
//!   cannot unmask the sum, so it is never revealed with less noise than
//!   charged. Sites that collude with the coordinator know their own noise
//!   and can subtract it: the guarantee needs at least `t` honest
//!   contributors, so a smaller `t` buys utility at the cost of that
//!   margin (`t = n` gives the least noise and no margin for dropouts).
//!
//! # What "neighbouring" means here
//! The guarantee is site-level (McMahan et al., ICLR 2018, call it
//! user-level, with hospitals as the users): two federations are neighbours
//! if they differ by one site's whole contribution, present or replaced by
//! the zero vector; clipping makes that difference at most `C`. It covers
//! each patient of the site a fortiori. Under the stricter "substitute one
//! site's data" notion the difference is up to `2C`, so the same ε needs
//! twice the noise multiplier.
//!
//! # Weights
//! The analysis assumes the noised quantity is the plain sum of clipped
//! updates (or a sum with weights at most 1 fixed before the round, as in
//! McMahan et al.'s capped weights `min(n_k/ŵ, 1)` with a fixed
//! denominator). Weighting by raw row counts multiplies the sensitivity by
//! the largest weight and is not covered.

use std::fmt;

use rand::CryptoRng;
use serde::{Deserialize, Serialize};

use super::accountant::Charge;
use super::clip::{ClipReport, check_clip_norm, clip_to_norm};
use super::error::DpError;
use super::noise::add_gaussian_noise;
use super::rdp::check_noise_multiplier;

/// The largest `min_contributors` accepted.
pub const MAX_CONTRIBUTORS: u32 = 100_000;

/// Where the Gaussian noise of DP-FedAvg is added (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum NoisePlacement {
    /// The coordinator noises the sum of clipped updates; sites only clip.
    Central,
    /// Each site adds the full noise to its own clipped update.
    Local,
    /// Each site adds `1/min_contributors` of the noise variance; secure
    /// aggregation reveals only the sum of at least `min_contributors`
    /// updates.
    LocalWithSecureAggregation {
        /// The fewest honest contributors whose noise makes up the sum; set
        /// it to the secure-aggregation threshold.
        min_contributors: u32,
    },
}

impl NoisePlacement {
    /// A short name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            NoisePlacement::Central => "central",
            NoisePlacement::Local => "local",
            NoisePlacement::LocalWithSecureAggregation { .. } => "local with secure aggregation",
        }
    }

    /// Whether the guarantee also holds against the coordinator itself.
    pub fn protects_against_coordinator(&self) -> bool {
        !matches!(self, NoisePlacement::Central)
    }
}

impl fmt::Display for NoisePlacement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoisePlacement::LocalWithSecureAggregation { min_contributors } => {
                write!(
                    f,
                    "{} (at least {min_contributors} contributors)",
                    self.name()
                )
            }
            _ => f.write_str(self.name()),
        }
    }
}

/// A validated DP-FedAvg configuration: clip norm `C`, noise multiplier `σ`
/// and where the noise goes. Deserialising validates as [`DpConfig::new`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "DpConfigFields")]
pub struct DpConfig {
    clip_norm: f64,
    noise_multiplier: f64,
    placement: NoisePlacement,
}

/// The unchecked shape of a [`DpConfig`] in a task or config file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DpConfigFields {
    clip_norm: f64,
    noise_multiplier: f64,
    placement: NoisePlacement,
}

impl TryFrom<DpConfigFields> for DpConfig {
    type Error = DpError;

    fn try_from(f: DpConfigFields) -> Result<Self, DpError> {
        DpConfig::new(f.clip_norm, f.noise_multiplier, f.placement)
    }
}

impl DpConfig {
    /// Checks and builds a configuration.
    ///
    /// # Errors
    /// [`DpError::InvalidParameter`] naming `clip_norm` or
    /// `noise_multiplier` unless finite and positive, or
    /// `placement.min_contributors` unless between 1 and
    /// [`MAX_CONTRIBUTORS`].
    pub fn new(
        clip_norm: f64,
        noise_multiplier: f64,
        placement: NoisePlacement,
    ) -> Result<Self, DpError> {
        check_clip_norm(clip_norm)?;
        check_noise_multiplier(noise_multiplier)?;
        if let NoisePlacement::LocalWithSecureAggregation { min_contributors } = placement
            && !(1..=MAX_CONTRIBUTORS).contains(&min_contributors)
        {
            return Err(DpError::InvalidParameter {
                field: "placement.min_contributors",
                expected: "an integer from 1 to 100000",
                got: f64::from(min_contributors),
            });
        }
        Ok(Self {
            clip_norm,
            noise_multiplier,
            placement,
        })
    }

    /// The clip norm `C` (the sensitivity of the sum).
    pub fn clip_norm(&self) -> f64 {
        self.clip_norm
    }

    /// The noise multiplier `σ` the accountant charges each round.
    pub fn noise_multiplier(&self) -> f64 {
        self.noise_multiplier
    }

    /// Where the noise is added.
    pub fn placement(&self) -> NoisePlacement {
        self.placement
    }

    /// The standard deviation each site adds to each coordinate of its own
    /// update, or `None` when sites add no noise ([`NoisePlacement::Central`]).
    pub fn site_noise_std(&self) -> Option<f64> {
        let full = self.noise_multiplier * self.clip_norm;
        match self.placement {
            NoisePlacement::Central => None,
            NoisePlacement::Local => Some(full),
            NoisePlacement::LocalWithSecureAggregation { min_contributors } => {
                Some(full / f64::from(min_contributors).sqrt())
            }
        }
    }

    /// The standard deviation the coordinator adds to each coordinate of the
    /// sum, or `None` when the sites add the noise.
    pub fn central_noise_std(&self) -> Option<f64> {
        match self.placement {
            NoisePlacement::Central => Some(self.noise_multiplier * self.clip_norm),
            _ => None,
        }
    }

    /// The standard deviation of the noise in each coordinate of the sum of
    /// `contributors` honest sites' updates.
    pub fn sum_noise_std(&self, contributors: u32) -> f64 {
        match (self.central_noise_std(), self.site_noise_std()) {
            (Some(central), _) => central,
            (None, Some(site)) => site * f64::from(contributors).sqrt(),
            (None, None) => 0.0,
        }
    }

    /// Prepares a site's update for release: clips it to `C` and, unless the
    /// placement is central, adds the site's share of the noise.
    ///
    /// Consumes the [`Charge`] for this round, so an update can only be
    /// released after its cost has been recorded (see
    /// [`super::Accountant::try_spend`]).
    ///
    /// # Errors
    /// [`DpError::ChargeMismatch`] if the charge was made at another noise
    /// multiplier; the errors of [`clip_to_norm`]. On error, the update
    /// must not be sent.
    pub fn privatise_site_update<R: CryptoRng + ?Sized>(
        &self,
        update: &mut [f64],
        charge: Charge,
        rng: &mut R,
    ) -> Result<ClipReport, DpError> {
        // Exact equality: the accountant must have charged the very σ this
        // configuration releases with; any other value is a wiring error.
        let same = charge.noise_multiplier() == self.noise_multiplier;
        if !same {
            return Err(DpError::ChargeMismatch {
                round: charge.round(),
                charged: charge.noise_multiplier(),
                configured: self.noise_multiplier,
            });
        }
        let report = clip_to_norm(update, self.clip_norm)?;
        if let Some(std_dev) = self.site_noise_std() {
            add_gaussian_noise(update, std_dev, rng)?;
        }
        Ok(report)
    }

    /// Adds the central noise to the sum of the sites' clipped updates.
    ///
    /// # Errors
    /// [`DpError::WrongPlacement`] unless the placement is
    /// [`NoisePlacement::Central`] (with local noise, adding more would only
    /// cost utility and hide a configuration mistake).
    pub fn add_central_noise<R: CryptoRng + ?Sized>(
        &self,
        sum: &mut [f64],
        rng: &mut R,
    ) -> Result<(), DpError> {
        match self.central_noise_std() {
            Some(std_dev) => add_gaussian_noise(sum, std_dev, rng),
            None => Err(DpError::WrongPlacement {
                operation: "adding central noise",
                placement: self.placement.name(),
            }),
        }
    }

    /// A one-paragraph description of the privacy model in force, for run
    /// summaries and the operator's console.
    pub fn describe(&self) -> String {
        let c = self.clip_norm;
        let sigma = self.noise_multiplier;
        let full = sigma * c;
        let head = format!(
            "Differential privacy (DP-FedAvg, site-level, noise multiplier σ = {sigma}): each \
             site clips its update to L2 norm C = {c}"
        );
        match self.placement {
            NoisePlacement::Central => format!(
                "{head}; the coordinator adds Gaussian noise of standard deviation σ·C = {full} \
                 to each coordinate of the sum. This protects the published model; the \
                 coordinator itself is trusted, since it sees the sum before noising (and each \
                 site's clipped update unless secure aggregation hides them)."
            ),
            NoisePlacement::Local => format!(
                "{head} and adds Gaussian noise of standard deviation σ·C = {full} to each \
                 coordinate before sending, so the guarantee holds against the coordinator \
                 too. The sum of n updates carries √n times the noise the guarantee needs."
            ),
            NoisePlacement::LocalWithSecureAggregation {
                min_contributors: t,
            } => {
                let site = self.site_noise_std().unwrap_or(full);
                format!(
                    "{head} and adds Gaussian noise of standard deviation σ·C/√{t} = {site} to \
                     each coordinate; secure aggregation reveals only the sum of at least {t} \
                     updates, whose noise has standard deviation at least σ·C = {full}. The \
                     guarantee holds against the coordinator as long as at least {t} \
                     contributors to each revealed sum are honest (did not share their noise \
                     with it)."
                )
            }
        }
    }
}
