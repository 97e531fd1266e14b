//! The medfed node: runs beside a hospital's records. It imports a CSV once
//! into a Fernet-encrypted vault, and takes part in a task by connecting out
//! to the coordinator and answering its instructions with aggregates and
//! model vectors computed on its own rows. Patient rows never leave it.
//!
//! # Layout
//! - [`config`]: the node file (`node run --config`, `node config check`)
//!   and where each setting comes from: flag, environment or file. Inside:
//!   the file's tables and keys (`file`), its TOML values read and checked
//!   (`read`), the coordinator's address and name (`coordinator`), the
//!   `[privacy]` budget (`privacy`), the resolution of flag, environment
//!   and file (`settings`), the refusals (`error`) and `node config check`
//!   (`check`).
//! - [`import`]: `node import` and where the vault key comes from.
//! - [`data`]: the task's columns taken from the vault, split into training
//!   and held-out rows, standardised with the global statistics.
//! - [`work`]: what the node computes for each instruction.
//! - [`secagg`]: the node's side of secure aggregation, carried across the
//!   five stages of a round. Inside: the per-round state and each stage's
//!   answer (`rounds`), the roster checks against the consortium CA
//!   (`roster`), building the masked input (`input`) and the refusal of
//!   clear requests in a secure task (`clear`).
//! - [`policy`]: the hospital's own rules on what a task may compute and
//!   release (`[policy]`), checked at join and at every step; a refusal is
//!   sent as a notice naming the rule.
//! - [`privacy`]: the site's own privacy budget and the record of every
//!   DP round charged against it (`<vault>.privacy.json`).
//! - [`ledger`]: the hospital's own exchange log of everything sent and
//!   received.
//! - [`client`]: `node run`: opens the hospital's keys and exchange log,
//!   joins, settles DP, then drives the loop (poll, answer, send, advance).
//! - [`session`]: the connection to the coordinator: connect, join, poll
//!   for the next instruction, reconnect with backoff after a lost
//!   connection.
//! - `answer`: a computed answer turned into the message that leaves and
//!   the line printed about it.
//! - `send`: the one way out: every value that leaves is encoded, signed,
//!   recorded in the exchange log and submitted there.
//! - [`review`]: `node task review` and `node task approve`.
//! - [`model_file`]: using a published model: `node predict` and
//!   `node model show`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod answer;
pub mod client;
pub mod config;
pub mod data;
pub mod import;
pub mod ledger;
pub mod model_file;
pub mod policy;
pub mod privacy;
pub mod review;
pub mod secagg;
mod send;
pub mod session;
pub mod work;
