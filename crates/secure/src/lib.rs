//! Privacy for medfed's aggregates: secure aggregation, so the coordinator
//! learns only the sum of the members' vectors, and differential privacy, so
//! even that sum is noised within a stated (ε, δ) budget.
//!
//! # Layout
//! - [`secagg`]: dropout-tolerant secure aggregation (Bonawitz et al., CCS 2017):
//!   fixed-point encoding into a finite ring, pairwise and self masks, Shamir
//!   shares, and the client and server state machines.
//! - [`dp`]: clipping and Gaussian noise for DP-FedAvg, and a Rényi-DP
//!   accountant that tracks each site's spend against its own budget.
#![deny(missing_docs)]

pub mod dp;
pub mod secagg;
