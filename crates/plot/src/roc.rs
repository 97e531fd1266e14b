//! ROC curves of a logistic model: all sites together and each site, with
//! the AUC in the legend and the chance diagonal.

use std::path::{Path, PathBuf};

use medfed_model::counts::BinaryCounts;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::PlotError;
use crate::figure::{self, Drawn, Figure, LegendEntry, LegendKind, SeriesStyle, fail};
use crate::output;

/// Most points one ROC curve may have: a curve from the largest score
/// histogram medfed allows (one million bins) has one more than that; a
/// curve that long is far past what a picture can show.
pub const MAX_ROC_POINTS: usize = 200_001;
/// Most per-site curves one chart accepts.
pub const MAX_ROC_SITES: usize = 40;

/// One ROC curve.
#[derive(Clone, Debug, PartialEq)]
pub struct RocCurve {
    /// Legend label: the site, or "all sites".
    pub label: String,
    /// `(false positive rate, true positive rate)` points in drawing order.
    /// Points that are not finite rates in `[0, 1]` are skipped.
    pub points: Vec<(f64, f64)>,
    /// Area under the curve, shown in the legend when known.
    pub auc: Option<f64>,
}

impl RocCurve {
    /// The curve of `counts`' score histograms, labelled `label`, with the
    /// histogram AUC. `None` if a class is absent (no ROC curve exists) or
    /// the histograms differ in length.
    pub fn from_counts(label: impl Into<String>, counts: &BinaryCounts) -> Option<RocCurve> {
        Some(RocCurve {
            label: label.into(),
            points: counts.roc_points()?,
            auc: counts.auc(),
        })
    }
}

/// The curves of one chart.
#[derive(Clone, Debug, PartialEq)]
pub struct RocPlot {
    /// Title across the top.
    pub title: String,
    /// All sites' held-out rows together, drawn in black on top.
    pub overall: Option<RocCurve>,
    /// One curve per site; drawn in name order, with the colours
    /// [`write_training_curves`](crate::write_training_curves) gives the
    /// same sites.
    pub per_site: Vec<RocCurve>,
}

/// Draws `plot` and writes `dir/stem.svg` and `dir/stem.png`, returning the
/// two paths.
///
/// Axes run from 0 to 1 with the chance diagonal dashed. Non-finite points
/// and points outside `[0, 1]` are skipped; a curve left with fewer than two
/// points is not drawn and its legend row says so; with no curve at all the
/// chart shows only the diagonal and a note. None of these is an error.
///
/// # Errors
/// [`PlotError::InvalidStem`] for a stem that is not a plain file name,
/// [`PlotError::TooLarge`] for more than [`MAX_ROC_SITES`] site curves or a
/// curve with more than [`MAX_ROC_POINTS`] points, [`PlotError::Render`]
/// and [`PlotError::Io`] when drawing or writing fails.
pub fn write_roc(dir: &Path, stem: &str, plot: &RocPlot) -> Result<Vec<PathBuf>, PlotError> {
    let figure = RocFigure::new(plot)?;
    output::write_figure(dir, stem, &figure)
}

/// One curve ready to draw.
struct Drawable {
    label: String,
    style: SeriesStyle,
    points: Vec<(f64, f64)>,
}

struct RocFigure<'a> {
    title: &'a str,
    /// Sites first, all sites last (drawn on top).
    curves: Vec<Drawable>,
    /// Whether the last curve is all sites.
    has_overall: bool,
}

impl<'a> RocFigure<'a> {
    fn new(plot: &'a RocPlot) -> Result<Self, PlotError> {
        if plot.per_site.len() > MAX_ROC_SITES {
            return Err(PlotError::TooLarge {
                what: "ROC curves per chart",
                got: plot.per_site.len(),
                max: MAX_ROC_SITES,
            });
        }
        let longest = plot
            .per_site
            .iter()
            .chain(&plot.overall)
            .map(|c| c.points.len())
            .max()
            .unwrap_or(0);
        if longest > MAX_ROC_POINTS {
            return Err(PlotError::TooLarge {
                what: "points in one ROC curve",
                got: longest,
                max: MAX_ROC_POINTS,
            });
        }
        let mut sites: Vec<&RocCurve> = plot.per_site.iter().collect();
        sites.sort_by(|a, b| a.label.cmp(&b.label));
        let mut curves: Vec<Drawable> = sites
            .into_iter()
            .enumerate()
            .map(|(i, c)| drawable(c, SeriesStyle::site(i)))
            .collect();
        curves.extend(
            plot.overall
                .iter()
                .map(|c| drawable(c, SeriesStyle::overall())),
        );
        Ok(RocFigure {
            title: &plot.title,
            curves,
            has_overall: plot.overall.is_some(),
        })
    }
}

fn drawable(curve: &RocCurve, style: SeriesStyle) -> Drawable {
    let rate = |v: f64| (0.0..=1.0).contains(&v);
    let points: Vec<(f64, f64)> = curve
        .points
        .iter()
        .copied()
        .filter(|&(x, y)| rate(x) && rate(y))
        .collect();
    let label = match (points.len() >= 2, curve.auc.filter(|a| a.is_finite())) {
        (true, Some(auc)) => format!("{} (AUC {auc:.3})", curve.label),
        (true, None) => curve.label.clone(),
        (false, _) => format!("{} (no curve)", curve.label),
    };
    Drawable {
        label,
        style,
        points,
    }
}

impl Figure for RocFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (1060, 780)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let body = figure::titled(root, self.title)?;
        let (plot, legend) = figure::with_legend_strip(&body);
        let mut chart = figure::unit_square_chart(
            &plot,
            0.01,
            "false positive rate (1 − specificity)",
            "true positive rate (sensitivity)",
        )?;
        for curve in self.curves.iter().filter(|c| c.points.len() >= 2) {
            chart
                .draw_series(LineSeries::new(
                    curve.points.iter().copied(),
                    curve.style.line(),
                ))
                .map_err(fail)?;
        }
        if self.curves.iter().all(|c| c.points.len() < 2) {
            figure::draw_note(
                &chart.plotting_area().strip_coord_spec(),
                "no ROC curve: each needs positive and negative rows",
                (0.65, 0.86),
            )?;
        }
        // All sites first, then the sites in name order.
        let mut entries: Vec<LegendEntry> = self
            .curves
            .iter()
            .rev()
            .take(self.has_overall.into())
            .chain(&self.curves[..self.curves.len() - usize::from(self.has_overall)])
            .map(|c| LegendEntry {
                label: c.label.clone(),
                kind: LegendKind::Line(c.style),
            })
            .collect();
        entries.push(LegendEntry {
            label: "chance (AUC 0.5)".to_owned(),
            kind: LegendKind::Reference,
        });
        figure::draw_legend(&legend, &entries, 24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_from_counts_carry_the_auc_and_need_both_classes() {
        let mut counts = BinaryCounts::new(10).unwrap();
        for (p, y) in [(0.9, 1.0), (0.8, 0.0), (0.3, 1.0), (0.1, 0.0)] {
            counts.add(p, y).unwrap();
        }
        let curve = RocCurve::from_counts("va", &counts).unwrap();
        assert_eq!(curve.auc, Some(0.75));
        assert_eq!(curve.points.first(), Some(&(0.0, 0.0)));
        assert_eq!(curve.points.last(), Some(&(1.0, 1.0)));
        let mut one_class = BinaryCounts::new(10).unwrap();
        one_class.add(0.4, 1.0).unwrap();
        assert_eq!(RocCurve::from_counts("x", &one_class), None);
    }

    #[test]
    fn bad_points_are_skipped_and_sites_sorted() {
        let plot = RocPlot {
            title: "t".into(),
            overall: Some(RocCurve {
                label: "all sites".into(),
                points: vec![(0.0, 0.0), (f64::NAN, 0.5), (1.5, 0.5), (1.0, 1.0)],
                auc: Some(0.5),
            }),
            per_site: vec![
                RocCurve {
                    label: "zurich".into(),
                    points: vec![(0.0, 0.0)],
                    auc: None,
                },
                RocCurve {
                    label: "basel".into(),
                    points: vec![(0.0, 0.0), (0.0, 1.0), (1.0, 1.0)],
                    auc: None,
                },
            ],
        };
        let fig = RocFigure::new(&plot).unwrap();
        let labels: Vec<&str> = fig.curves.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            ["basel", "zurich (no curve)", "all sites (AUC 0.500)"]
        );
        assert_eq!(fig.curves[2].points, vec![(0.0, 0.0), (1.0, 1.0)]);
    }

    #[test]
    fn oversized_input_is_refused() {
        let long = RocPlot {
            title: "t".into(),
            overall: Some(RocCurve {
                label: "all".into(),
                points: vec![(0.5, 0.5); MAX_ROC_POINTS + 1],
                auc: None,
            }),
            per_site: Vec::new(),
        };
        assert!(matches!(
            RocFigure::new(&long),
            Err(PlotError::TooLarge {
                max: MAX_ROC_POINTS,
                ..
            })
        ));
        let many = RocPlot {
            title: "t".into(),
            overall: None,
            per_site: (0..=MAX_ROC_SITES)
                .map(|i| RocCurve {
                    label: format!("s{i}"),
                    points: Vec::new(),
                    auc: None,
                })
                .collect(),
        };
        assert!(matches!(
            RocFigure::new(&many),
            Err(PlotError::TooLarge {
                max: MAX_ROC_SITES,
                ..
            })
        ));
    }
}
