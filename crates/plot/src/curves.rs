//! Training curves: the training loss per round above the held-out metric
//! per round, for all sites together and for each site.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::PlotError;
use crate::figure::{
    self, AXIS_DESC_SIZE, CAPTION_SIZE, Drawn, Figure, INK, LegendEntry, LegendKind, SeriesStyle,
    Span, TICK_SIZE, fail,
};
use crate::output;

/// Most rounds one chart accepts.
pub const MAX_ROUNDS: usize = 10_000;
/// Most sites one chart accepts (each gets a line and a legend row).
pub const MAX_SITES: usize = 40;

/// Which held-out figure the curves show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeldOutMetric {
    /// ROC AUC (logistic models); its axis spans at least 0.5 to 1.
    Auc,
    /// Coefficient of determination (linear models); its axis ends at 1 at
    /// most a margin above.
    R2,
    /// Root mean squared error (linear models); its axis starts at 0.
    Rmse,
}

impl HeldOutMetric {
    /// Name of the metric on the axis and in the caption.
    pub fn label(self) -> &'static str {
        match self {
            HeldOutMetric::Auc => "AUC",
            HeldOutMetric::R2 => "R²",
            HeldOutMetric::Rmse => "RMSE",
        }
    }

    /// The axis range for `data` (already with a margin), or the metric's
    /// usual range when there is no data.
    fn axis(self, data: Option<Span>) -> Span {
        match (self, data) {
            (HeldOutMetric::Auc, Some(d)) => Span {
                low: d.low.min(0.5),
                high: d.high.clamp(0.5, 1.0) + 0.01,
            },
            (HeldOutMetric::Auc, None) => Span {
                low: 0.5,
                high: 1.01,
            },
            (HeldOutMetric::R2, Some(d)) => Span {
                low: d.low.min(0.0),
                high: d.high.min(1.02),
            },
            (HeldOutMetric::R2, None) => Span {
                low: 0.0,
                high: 1.02,
            },
            (HeldOutMetric::Rmse, Some(d)) => Span {
                low: 0.0,
                high: d.high.max(d.low.abs()).max(1e-9),
            },
            (HeldOutMetric::Rmse, None) => Span {
                low: 0.0,
                high: 1.0,
            },
        }
    }
}

/// The per-round figures of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingCurves {
    /// Title across the top, e.g. the task id.
    pub title: String,
    /// Which figure `overall` and `per_site` hold.
    pub metric: HeldOutMetric,
    /// One entry per round, in any order.
    pub rounds: Vec<RoundPoint>,
}

/// One round's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoundPoint {
    /// Round number (1-based in medfed).
    pub round: u32,
    /// Training loss of the round's model; `None` or a non-finite value
    /// leaves the round out of the loss curve.
    pub train_loss: Option<f64>,
    /// The held-out metric over all sites; `None` when the round was not
    /// evaluated.
    pub overall: Option<f64>,
    /// The held-out metric per site. A site absent here, or with `None` or
    /// a non-finite value, has no point at this round.
    pub per_site: BTreeMap<String, Option<f64>>,
}

/// Draws `curves` and writes `dir/stem.svg` and `dir/stem.png`, returning
/// the two paths.
///
/// The upper panel shows the training loss, the lower one the held-out
/// metric, all sites together in black and each site in its own colour (in
/// name order, the same as [`write_roc`](crate::write_roc) uses). Rounds
/// without a value are left out: a series joins the rounds it has, with a
/// marker on each, so an evaluation every few rounds still draws a line and
/// nothing is drawn as zero. A panel with no finite value at all is drawn
/// empty, with a note saying so; that is not an error.
///
/// # Errors
/// [`PlotError::InvalidStem`] for a stem that is not a plain file name,
/// [`PlotError::TooLarge`] for more than [`MAX_ROUNDS`] rounds or
/// [`MAX_SITES`] sites, [`PlotError::Render`] and [`PlotError::Io`] when
/// drawing or writing fails.
pub fn write_training_curves(
    dir: &Path,
    stem: &str,
    curves: &TrainingCurves,
) -> Result<Vec<PathBuf>, PlotError> {
    let figure = CurvesFigure::new(curves)?;
    output::write_figure(dir, stem, &figure)
}

/// A drawable line: its legend label, style and finite points.
struct Line {
    label: String,
    style: SeriesStyle,
    points: Vec<(f64, f64)>,
}

/// The checked, sorted data of a training-curves chart.
struct CurvesFigure<'a> {
    curves: &'a TrainingCurves,
    first_round: u32,
    last_round: u32,
    loss: Line,
    held_out: Vec<Line>,
    /// Whether some round has no held-out value for all sites, so markers
    /// (not the line) show where values are.
    skipped_rounds: bool,
}

impl<'a> CurvesFigure<'a> {
    fn new(curves: &'a TrainingCurves) -> Result<Self, PlotError> {
        if curves.rounds.len() > MAX_ROUNDS {
            return Err(PlotError::TooLarge {
                what: "rounds",
                got: curves.rounds.len(),
                max: MAX_ROUNDS,
            });
        }
        let sites: BTreeSet<&String> = curves
            .rounds
            .iter()
            .flat_map(|r| r.per_site.keys())
            .collect();
        if sites.len() > MAX_SITES {
            return Err(PlotError::TooLarge {
                what: "sites",
                got: sites.len(),
                max: MAX_SITES,
            });
        }
        let mut rounds: Vec<&RoundPoint> = curves.rounds.iter().collect();
        rounds.sort_by_key(|r| r.round);
        let x = |r: &RoundPoint| f64::from(r.round);
        let series = |pick: &dyn Fn(&RoundPoint) -> Option<f64>| {
            figure::finite_points(rounds.iter().filter_map(|r| pick(r).map(|v| (x(r), v))))
        };
        let loss = Line {
            label: "all sites".to_owned(),
            style: SeriesStyle::overall(),
            points: series(&|r| r.train_loss),
        };
        let mut held_out: Vec<Line> = sites
            .iter()
            .enumerate()
            .map(|(i, site)| Line {
                label: (*site).clone(),
                style: SeriesStyle::site(i),
                points: series(&|r| r.per_site.get(*site).copied().flatten()),
            })
            .collect();
        // All sites last, so it is drawn on top.
        held_out.push(Line {
            label: "all sites".to_owned(),
            style: SeriesStyle::overall(),
            points: series(&|r| r.overall),
        });
        let evaluated = held_out.iter().any(|l| !l.points.is_empty());
        let skipped_rounds = evaluated
            && rounds
                .iter()
                .any(|r| !r.overall.is_some_and(f64::is_finite));
        Ok(CurvesFigure {
            curves,
            skipped_rounds,
            first_round: rounds.first().map_or(1, |r| r.round),
            last_round: rounds.last().map_or(1, |r| r.round),
            loss,
            held_out,
        })
    }

    fn panel<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, panel: Panel<'_>) -> Drawn {
        let (plot, legend) = figure::with_legend_strip(area);
        let x_span = Span::rounds(self.first_round, self.last_round);
        let y_labels = figure::value_labeller(panel.y_span);
        let mut chart = ChartBuilder::on(&plot)
            .caption(panel.caption, figure::text(CAPTION_SIZE))
            .margin_left(10)
            .margin_right(20)
            .margin_top(6)
            .margin_bottom(12)
            .x_label_area_size(52)
            .y_label_area_size(86)
            .build_cartesian_2d(x_span.range(), panel.y_span.range())
            .map_err(fail)?;
        let round_count = (self.last_round - self.first_round) as usize + 1;
        chart
            .configure_mesh()
            .x_desc("round")
            .y_desc(panel.y_desc)
            .x_labels(round_count.clamp(2, 12))
            .y_labels(8)
            .x_label_formatter(&figure::round_label)
            .y_label_formatter(&y_labels)
            .label_style(figure::text(TICK_SIZE))
            .axis_desc_style(figure::text(AXIS_DESC_SIZE))
            .axis_style(INK)
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()
            .map_err(fail)?;
        for line in panel.lines {
            if line.points.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().copied(),
                    line.style.line(),
                ))
                .map_err(fail)?;
            let area = chart.plotting_area();
            let pixel = |p: &(f64, f64)| area.map_coordinate(p);
            let (ox, oy) = area.get_base_pixel();
            let shifted = area.strip_coord_spec();
            for p in &line.points {
                let (px, py) = pixel(p);
                line.style.draw_marker(&shifted, (px - ox, py - oy), 4)?;
            }
        }
        if panel.lines.iter().all(|l| l.points.is_empty()) {
            figure::draw_note(
                &chart.plotting_area().strip_coord_spec(),
                panel.empty_note,
                (0.5, 0.5),
            )?;
        }
        // All sites (last, drawn on top) heads the legend; sites follow in
        // name order.
        let (overall, sites) = panel
            .lines
            .split_last()
            .map_or((None, &[][..]), |(o, s)| (Some(o), s));
        let mut entries: Vec<LegendEntry> = overall
            .into_iter()
            .chain(sites)
            .map(|l| LegendEntry {
                label: if l.points.is_empty() {
                    format!("{} (no values)", l.label)
                } else {
                    l.label.clone()
                },
                kind: LegendKind::Series(l.style),
            })
            .collect();
        if let Some(note) = panel.legend_note {
            entries.push(LegendEntry {
                label: note.to_owned(),
                kind: LegendKind::Note,
            });
        }
        figure::draw_legend(&legend, &entries, 50)
    }
}

/// What one panel of the chart shows.
struct Panel<'a> {
    caption: &'a str,
    y_desc: &'a str,
    y_span: Span,
    lines: &'a [Line],
    empty_note: &'a str,
    legend_note: Option<&'a str>,
}

impl Figure for CurvesFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (1200, 980)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let body = figure::titled(root, &self.curves.title)?;
        let (_, height) = body.dim_in_pixel();
        let (upper, lower) = body.split_vertically(height / 2);
        let loss_span = Span::of(self.loss.points.iter().map(|p| p.1)).unwrap_or(Span {
            low: 0.0,
            high: 1.0,
        });
        self.panel(
            &upper,
            Panel {
                caption: "Training loss per round",
                y_desc: "training loss (row-weighted mean)",
                y_span: loss_span,
                lines: std::slice::from_ref(&self.loss),
                empty_note: "no finite training loss",
                legend_note: None,
            },
        )?;
        let metric = self.curves.metric;
        let data_span = Span::of(
            self.held_out
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.1)),
        );
        let caption = format!("Held-out {} per round", metric.label());
        let y_desc = format!("held-out {}", metric.label());
        self.panel(
            &lower,
            Panel {
                caption: &caption,
                y_desc: &y_desc,
                y_span: metric.axis(data_span),
                lines: &self.held_out,
                empty_note: "no round was evaluated on held-out rows",
                legend_note: self
                    .skipped_rounds
                    .then_some("markers: evaluated rounds only"),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(round: u32, loss: f64, overall: Option<f64>) -> RoundPoint {
        RoundPoint {
            round,
            train_loss: Some(loss),
            overall,
            per_site: BTreeMap::new(),
        }
    }

    #[test]
    fn unevaluated_rounds_and_non_finite_values_are_left_out() {
        let mut rounds = vec![
            round(3, 0.5, Some(0.8)),
            round(1, 0.7, Some(0.7)),
            round(2, f64::NAN, None),
        ];
        rounds[0].per_site.insert("b".into(), Some(f64::INFINITY));
        rounds[1].per_site.insert("b".into(), Some(0.6));
        rounds[1].per_site.insert("a".into(), None);
        let curves = TrainingCurves {
            title: "t".into(),
            metric: HeldOutMetric::Auc,
            rounds,
        };
        let fig = CurvesFigure::new(&curves).unwrap();
        assert_eq!(fig.loss.points, vec![(1.0, 0.7), (3.0, 0.5)]);
        let labels: Vec<&str> = fig.held_out.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["a", "b", "all sites"]);
        assert!(fig.held_out[0].points.is_empty());
        assert_eq!(fig.held_out[1].points, vec![(1.0, 0.6)]);
        assert_eq!(fig.held_out[2].points, vec![(1.0, 0.7), (3.0, 0.8)]);
        assert_eq!((fig.first_round, fig.last_round), (1, 3));
    }

    #[test]
    fn auc_axis_spans_at_least_half_to_one() {
        let axis = HeldOutMetric::Auc.axis(Span::of([0.8, 0.9]));
        assert_eq!(axis.low, 0.5);
        assert!(axis.high > 0.9 && axis.high <= 1.01 + 1e-12);
        let low = HeldOutMetric::Auc.axis(Span::of([0.3, 0.9]));
        assert!(low.low < 0.3);
        let rmse = HeldOutMetric::Rmse.axis(Span::of([2.0, 3.0]));
        assert_eq!(rmse.low, 0.0);
        assert!(rmse.high > 3.0);
    }

    #[test]
    fn too_many_rounds_or_sites_are_refused() {
        let many_rounds = TrainingCurves {
            title: "t".into(),
            metric: HeldOutMetric::R2,
            rounds: (0..=MAX_ROUNDS as u32)
                .map(|r| round(r, 1.0, None))
                .collect(),
        };
        assert!(matches!(
            CurvesFigure::new(&many_rounds),
            Err(PlotError::TooLarge { what: "rounds", got, max: MAX_ROUNDS }) if got == MAX_ROUNDS + 1
        ));
        let mut one = round(1, 1.0, None);
        for s in 0..=MAX_SITES {
            one.per_site.insert(format!("site-{s}"), Some(0.5));
        }
        let many_sites = TrainingCurves {
            title: "t".into(),
            metric: HeldOutMetric::Auc,
            rounds: vec![one],
        };
        assert!(matches!(
            CurvesFigure::new(&many_sites),
            Err(PlotError::TooLarge { what: "sites", .. })
        ));
    }
}
