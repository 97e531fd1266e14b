//! Aggregation strategies: how the coordinator combines the nodes' updates
//! into the next global model.
//!
//! A [`Strategy`] opens one [`Aggregator`] per round; updates are folded in as
//! they arrive, so with [`FedAvg`] memory is O(parameters), not
//! O(nodes x parameters) (the order statistics in [`robust`] are the
//! exception). `None`
//! from [`Aggregator::finish`] means "keep the current model" (nothing arrived).
//!
//! # Layout
//! - [`strategy`]: the [`Strategy`] and [`Aggregator`] traits and [`AggregateError`].
//! - [`fedavg`]: [`FedAvg`], the mean of updates weighted by row count
//!   (McMahan et al., 2017), built on the streaming [`WeightedSum`].
//! - [`robust`]: [`Median`] and [`TrimmedMean`] (coordinate-wise), which a
//!   minority of hostile members cannot drag far, and [`NormClip`], which
//!   wraps any rule.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod fedavg;
pub mod robust;
pub mod strategy;

pub use fedavg::{FedAvg, WeightedSum};
pub use robust::{Median, NormClip, TrimmedMean};
pub use strategy::{AggregateError, Aggregator, Strategy};
