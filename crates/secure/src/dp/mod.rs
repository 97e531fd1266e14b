//! Differential privacy for federated averaging: clipping, Gaussian noise
//! and a Rényi-DP accountant.
//!
//! This is DP-FedAvg (McMahan, Ramage, Talwar & Zhang, "Learning
//! Differentially Private Recurrent Language Models", ICLR 2018), built on
//! the Gaussian mechanism as used by Abadi et al. ("Deep Learning with
//! Differential Privacy", CCS 2016): every site clips its update to L2 norm
//! `C`, the sum is noised with standard deviation `σ·C`, and each site's
//! accountant charges every round against that site's own (ε, δ) budget.
//!
//! A round at a site goes:
//!
//! 1. `accountant.try_spend(config.noise_multiplier(), persist)` charges the
//!    round and durably records it, or refuses it with
//!    [`DpError::BudgetExceeded`];
//! 2. `config.privatise_site_update(&mut update, charge, &mut rng)` clips
//!    and (for local placements) noises the update, consuming the charge;
//! 3. only then is the update sent.
//!
//! # Layout
//! - [`budget`]: the validated (ε, δ) [`Budget`] and the [`Spent`] report.
//! - [`clip`]: L2 clipping ([`clip_to_norm`]).
//! - [`noise`]: Gaussian noise from an OS-seeded ChaCha generator, and the
//!   floating-point limitation of sampling it.
//! - [`placement`]: [`NoisePlacement`] (central, local, local with secure
//!   aggregation) and the validated [`DpConfig`] that applies it.
//! - [`rdp`]: Rényi DP of the Gaussian mechanism, composition, and the
//!   conversion to (ε, δ).
//! - [`analytic`]: the exact ε of the Gaussian mechanism (Balle & Wang
//!   2018), to compare the accountant's bound with.
//! - [`accountant`]: the per-site [`Accountant`], its persistent
//!   [`AccountantState`] and the [`Charge`] that pays for one release.
//! - [`calibrate`]: the smallest σ for a budget and a number of rounds, and
//!   the number of rounds a budget allows.
//! - [`error`]: the error type, [`DpError`].

pub mod accountant;
pub mod analytic;
pub mod budget;
pub mod calibrate;
pub mod clip;
pub mod error;
pub mod noise;
pub mod placement;
pub mod rdp;

pub use accountant::{Accountant, AccountantState, Charge};
pub use analytic::analytic_gaussian_epsilon;
pub use budget::{Budget, Spent};
pub use calibrate::{max_rounds, smallest_noise_multiplier};
pub use clip::{ClipReport, clip_to_norm, l2_norm};
pub use error::DpError;
pub use noise::{add_gaussian_noise, os_seeded_rng};
pub use placement::{DpConfig, NoisePlacement};
pub use rdp::{EpsilonAtOrder, gaussian_epsilon};
