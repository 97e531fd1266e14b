//! Charts of a medfed run for the operator: training curves, ROC curves and
//! a calibration chart, each written as SVG and PNG.
//!
//! The inputs are plain data types of this crate (and medfed-model's
//! [`CalibrationBin`] and
//! [`BinaryCounts`]), filled from the run summary; nothing here knows the
//! coordinator. Everything drawn comes from aggregate counts, as in the
//! summary itself.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::path::Path;
//! use medfed_plot::{HeldOutMetric, RoundPoint, TrainingCurves, write_training_curves};
//!
//! # fn main() -> Result<(), medfed_plot::PlotError> {
//! let curves = TrainingCurves {
//!     title: "heart-disease: training".into(),
//!     metric: HeldOutMetric::Auc,
//!     rounds: vec![RoundPoint {
//!         round: 1,
//!         train_loss: Some(0.69),
//!         overall: Some(0.81),
//!         per_site: BTreeMap::from([("va".to_string(), Some(0.74))]),
//!     }],
//! };
//! let written = write_training_curves(Path::new("run"), "training", &curves)?;
//! assert_eq!(written.len(), 2); // run/training.svg, run/training.png
//! # Ok(())
//! # }
//! ```
//!
//! Every writer draws both pictures in memory first and then replaces each
//! file atomically. Inputs are bounded (rounds, sites, points, bins: see the
//! `MAX_*` constants) and refused with [`PlotError::TooLarge`] beyond that.
//! Missing and non-finite values never fail a chart: they are left out, and
//! a panel left with nothing to draw says so in a note.
//!
//! Text is drawn with DejaVu Sans compiled into the crate (a subset covering
//! Latin letters and common symbols, `fonts/DejaVuSans-subset.ttf`, made
//! from Debian's fonts-dejavu-core 2.37 with fontTools' `pyftsubset`; its
//! licence, the Bitstream Vera licence with DejaVu's public-domain changes,
//! is `fonts/LICENSE-DejaVu.txt`, and `fonts/README.md` gives the exact
//! command). No system font library is needed, and PNGs look the same on
//! every machine. SVGs name the `sans-serif` family and use the viewer's.
//!
//! # Layout
//! - [`curves`]: training loss and held-out metric per round
//!   ([`write_training_curves`]).
//! - [`roc`]: ROC curves per site and overall ([`write_roc`]).
//! - [`calibration`]: reliability chart ([`write_calibration`]).
//! - `figure`: what the charts share: the font, drawing one chart on the SVG
//!   and bitmap backends, series colours, legends, axis ranges.
//! - `raster`: text for the PNGs, drawn with ab_glyph glyph by glyph.
//! - `output`: file stems and atomic writes.
//! - [`error`]: the error type, [`PlotError`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod calibration;
pub mod curves;
pub mod error;
mod figure;
mod output;
mod raster;
pub mod roc;

pub use calibration::{CalibrationPlot, MAX_CALIBRATION_BINS, write_calibration};
pub use curves::{
    HeldOutMetric, MAX_ROUNDS, MAX_SITES, RoundPoint, TrainingCurves, write_training_curves,
};
pub use error::PlotError;
pub use medfed_model::counts::{BinaryCounts, CalibrationBin};
pub use roc::{MAX_ROC_POINTS, MAX_ROC_SITES, RocCurve, RocPlot, write_roc};
