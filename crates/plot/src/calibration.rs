//! Calibration (reliability) chart of a logistic model: the observed rate of
//! positives against the mean predicted probability, per bin of prediction.

use std::path::{Path, PathBuf};

use medfed_model::counts::CalibrationBin;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::PlotError;
use crate::figure::{self, Drawn, Figure, LegendEntry, LegendKind, SeriesStyle, fail};
use crate::output;

/// Most bins one chart accepts (medfed uses ten).
pub const MAX_CALIBRATION_BINS: usize = 1_000;
/// Bins up to this many get their row count written beside the marker;
/// more would overlap.
const LABELLED_BINS: usize = 20;

/// What a calibration chart shows.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationPlot {
    /// Title across the top.
    pub title: String,
    /// Legend label of the model, e.g. "federated model".
    pub label: String,
    /// The bins, in any order. Bins with no rows, or with a mean prediction
    /// or observed rate that is not a finite number in `[0, 1]`, are
    /// skipped.
    pub bins: Vec<CalibrationBin>,
    /// Expected calibration error, shown in the legend when known.
    pub expected_calibration_error: Option<f64>,
}

/// Draws `plot` and writes `dir/stem.svg` and `dir/stem.png`, returning the
/// two paths.
///
/// Each bin is a marker at (mean predicted, observed rate) whose area grows
/// with the bin's rows, joined in order of prediction, with the row count
/// written beside it (up to 20 bins) and the diagonal of perfect
/// calibration dashed. With no usable bin the chart shows only the diagonal
/// and a note; that is not an error.
///
/// # Errors
/// [`PlotError::InvalidStem`] for a stem that is not a plain file name,
/// [`PlotError::TooLarge`] for more than [`MAX_CALIBRATION_BINS`] bins,
/// [`PlotError::Render`] and [`PlotError::Io`] when drawing or writing fails.
pub fn write_calibration(
    dir: &Path,
    stem: &str,
    plot: &CalibrationPlot,
) -> Result<Vec<PathBuf>, PlotError> {
    let figure = CalibrationFigure::new(plot)?;
    output::write_figure(dir, stem, &figure)
}

/// One usable bin: where it goes and how many rows it holds.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Dot {
    predicted: f64,
    observed: f64,
    count: u64,
}

struct CalibrationFigure<'a> {
    plot: &'a CalibrationPlot,
    /// Usable bins in order of mean prediction.
    dots: Vec<Dot>,
}

impl<'a> CalibrationFigure<'a> {
    fn new(plot: &'a CalibrationPlot) -> Result<Self, PlotError> {
        if plot.bins.len() > MAX_CALIBRATION_BINS {
            return Err(PlotError::TooLarge {
                what: "calibration bins",
                got: plot.bins.len(),
                max: MAX_CALIBRATION_BINS,
            });
        }
        let rate = |v: f64| (0.0..=1.0).contains(&v);
        let mut dots: Vec<Dot> = plot
            .bins
            .iter()
            .filter(|b| b.count > 0 && rate(b.mean_predicted) && rate(b.observed_rate))
            .map(|b| Dot {
                predicted: b.mean_predicted,
                observed: b.observed_rate,
                count: b.count,
            })
            .collect();
        dots.sort_by(|a, b| a.predicted.total_cmp(&b.predicted));
        Ok(CalibrationFigure { plot, dots })
    }

    /// Marker radius in pixels: area proportional to the bin's rows, from 4
    /// pixels for the smallest possible bin to 14 for the largest one.
    fn radius(&self, count: u64) -> i32 {
        let largest = self.dots.iter().map(|d| d.count).max().unwrap_or(1).max(1);
        let share = (count as f64 / largest as f64).sqrt();
        (4.0 + 10.0 * share).round() as i32
    }
}

impl Figure for CalibrationFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (1060, 780)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let body = figure::titled(root, &self.plot.title)?;
        let (plot, legend) = figure::with_legend_strip(&body);
        let mut chart = figure::unit_square_chart(
            &plot,
            0.02,
            "mean predicted probability",
            "observed rate of positives",
        )?;
        let style = SeriesStyle::site(3);
        if !self.dots.is_empty() {
            chart
                .draw_series(LineSeries::new(
                    self.dots.iter().map(|d| (d.predicted, d.observed)),
                    style.line(),
                ))
                .map_err(fail)?;
        }
        let area = chart.plotting_area();
        let shifted = area.strip_coord_spec();
        let (ox, oy) = area.get_base_pixel();
        if self.dots.is_empty() {
            figure::draw_note(&shifted, "no calibration bin holds rows", (0.65, 0.86))?;
        }
        let count_style = figure::text(15).pos(Pos::new(HPos::Left, VPos::Bottom));
        for dot in &self.dots {
            let (px, py) = area.map_coordinate(&(dot.predicted, dot.observed));
            let at = (px - ox, py - oy);
            let radius = self.radius(dot.count);
            shifted
                .draw(&Circle::new(at, radius, style.color.mix(0.35).filled()))
                .map_err(fail)?;
            shifted
                .draw(&Circle::new(at, radius, style.color.stroke_width(2)))
                .map_err(fail)?;
            if self.dots.len() <= LABELLED_BINS {
                shifted
                    .draw_text(
                        &dot.count.to_string(),
                        &count_style,
                        (at.0 + radius + 2, at.1 - radius / 2),
                    )
                    .map_err(fail)?;
            }
        }
        let model = match self.plot.expected_calibration_error {
            Some(ece) if ece.is_finite() => format!("{} (ECE {ece:.3})", self.plot.label),
            _ => self.plot.label.clone(),
        };
        let entries = [
            LegendEntry {
                label: model,
                kind: LegendKind::Series(style),
            },
            LegendEntry {
                label: "perfectly calibrated".to_owned(),
                kind: LegendKind::Reference,
            },
            LegendEntry {
                label: "marker area grows with rows;".to_owned(),
                kind: LegendKind::Note,
            },
            LegendEntry {
                label: "the number beside it: rows".to_owned(),
                kind: LegendKind::Note,
            },
        ];
        figure::draw_legend(&legend, &entries, 24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(lower: f64, count: u64, mean_predicted: f64, observed_rate: f64) -> CalibrationBin {
        CalibrationBin {
            lower,
            upper: lower + 0.1,
            count,
            mean_predicted,
            observed_rate,
        }
    }

    #[test]
    fn unusable_bins_are_skipped_and_the_rest_sorted() {
        let plot = CalibrationPlot {
            title: "t".into(),
            label: "federated model".into(),
            bins: vec![
                bin(0.5, 10, 0.55, 0.6),
                bin(0.1, 30, 0.12, 0.1),
                bin(0.2, 0, 0.0, 0.0),
                bin(0.3, 5, f64::NAN, 0.2),
                bin(0.4, 5, 0.45, 1.5),
            ],
            expected_calibration_error: None,
        };
        let fig = CalibrationFigure::new(&plot).unwrap();
        let counts: Vec<u64> = fig.dots.iter().map(|d| d.count).collect();
        assert_eq!(counts, [30, 10]);
        assert_eq!(fig.radius(30), 14);
        assert_eq!(fig.radius(0), 4);
    }

    #[test]
    fn too_many_bins_are_refused() {
        let plot = CalibrationPlot {
            title: "t".into(),
            label: "m".into(),
            bins: vec![bin(0.0, 1, 0.05, 0.0); MAX_CALIBRATION_BINS + 1],
            expected_calibration_error: None,
        };
        assert!(matches!(
            CalibrationFigure::new(&plot),
            Err(PlotError::TooLarge {
                what: "calibration bins",
                ..
            })
        ));
    }
}
