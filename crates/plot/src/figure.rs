//! What every chart shares: the compiled-in font, drawing one figure on
//! both backends, series styles, the legend beside the plot, axis ranges and
//! tick labels.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::PlotError;
use crate::raster::GlyphText;

/// File name of the compiled-in font, for error messages.
const FONT_NAME: &str = "DejaVuSans-subset.ttf";
/// DejaVu Sans, cut down to Latin letters and common symbols (see the crate
/// docs for its source and licence). Compiled in so that charts render the
/// same on machines without any font installed.
static FONT_BYTES: &[u8] = include_bytes!("../fonts/DejaVuSans-subset.ttf");

/// Dark grey for text, axes and notes.
pub(crate) const INK: RGBColor = RGBColor(40, 40, 40);
/// Light grey for reference lines (chance, perfect calibration).
pub(crate) const REFERENCE: RGBColor = RGBColor(150, 150, 150);
/// Mid grey for notes.
const NOTE_INK: RGBColor = RGBColor(110, 110, 110);
/// Series colour of the all-sites curve.
pub(crate) const OVERALL: RGBColor = RGBColor(0, 0, 0);
/// Okabe and Ito's colour-blind-safe palette (Okabe & Ito, "Color Universal
/// Design", 2008), without black (kept for all sites) and yellow (too pale
/// on white).
const PALETTE: [RGBColor; 6] = [
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 158, 115),
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
];

/// Width of the legend strip to the right of each plot, in pixels.
pub(crate) const LEGEND_WIDTH: u32 = 300;
/// Longest legend label, in characters; longer ones (and any too wide for
/// the legend strip) are cut with an ellipsis.
const MAX_LABEL_CHARS: usize = 40;
/// Longest title, in characters.
const MAX_TITLE_CHARS: usize = 90;

/// Font sizes in pixels.
pub(crate) const TITLE_SIZE: u32 = 30;
pub(crate) const CAPTION_SIZE: u32 = 24;
pub(crate) const AXIS_DESC_SIZE: u32 = 20;
pub(crate) const TICK_SIZE: u32 = 17;
const LEGEND_SIZE: u32 = 18;
pub(crate) const NOTE_SIZE: u32 = 20;

/// The family name the compiled-in font is registered under. SVG viewers
/// render `<text>` with their own sans-serif font.
pub(crate) const FAMILY: &str = "sans-serif";

/// Errors while drawing, as text: the backends' error types differ, and the
/// caller adds the file they were drawing.
pub(crate) type Drawn = Result<(), String>;

/// Converts a drawing error to text.
pub(crate) fn fail(err: impl std::fmt::Display) -> String {
    err.to_string()
}

/// A chart that can be drawn on any backend.
pub(crate) trait Figure {
    /// Width and height in pixels (SVG user units).
    fn size(&self) -> (u32, u32);
    /// Draws the whole chart on `root`, which is already white.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn;
}

/// Registers the compiled-in font with plotters once per process.
pub(crate) fn register_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(PlotError::Font { name: FONT_NAME })
    }
}

/// The figure as SVG text.
pub(crate) fn render_svg(figure: &impl Figure) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, figure.size()).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        figure.draw(&root)?;
        root.present().map_err(fail)?;
    }
    Ok(svg)
}

/// The figure as PNG bytes (8-bit RGB).
pub(crate) fn render_png(figure: &impl Figure) -> Result<Vec<u8>, String> {
    let (width, height) = figure.size();
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let font = ab_glyph::FontRef::try_from_slice(FONT_BYTES)
            .map_err(|_| format!("the bundled font {FONT_NAME} could not be loaded"))?;
        let backend = BitMapBackend::with_buffer(&mut pixels, (width, height));
        let root = GlyphText::new(backend, font).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        figure.draw(&root)?;
        root.present().map_err(fail)?;
    }
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(&pixels).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(bytes)
}

/// Text in the compiled-in font.
pub(crate) fn text(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&INK)
}

/// The title drawn across the top of `root`; returns the area below it.
pub(crate) fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>, String> {
    let title = shorten(title, MAX_TITLE_CHARS);
    let area = root.margin(12, 0, 0, 0);
    area.titled(&title, text(TITLE_SIZE)).map_err(fail)
}

/// `label` cut to `max` characters, with an ellipsis when cut, and with
/// control characters replaced by spaces.
pub(crate) fn shorten(label: &str, max: usize) -> String {
    let clean: String = label
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= max {
        clean
    } else {
        let mut cut: String = clean.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// `label` cut to `max` characters by replacing its middle with an
/// ellipsis, with control characters replaced by spaces.
pub(crate) fn elide_middle(label: &str, max: usize) -> String {
    let clean: Vec<char> = label
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.len() <= max {
        return clean.into_iter().collect();
    }
    let kept = max.saturating_sub(1);
    let tail = kept / 2;
    let head = kept - tail;
    let mut cut: String = clean[..head].iter().collect();
    cut.push('…');
    cut.extend(&clean[clean.len() - tail..]);
    cut
}

/// How points of a series are marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Marker {
    Circle,
    Square,
    Triangle,
}

/// Colour, line width and marker of one series.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeriesStyle {
    pub(crate) color: RGBColor,
    pub(crate) width: u32,
    pub(crate) marker: Marker,
}

impl SeriesStyle {
    /// The all-sites series: black and thicker, drawn on top.
    pub(crate) fn overall() -> Self {
        SeriesStyle {
            color: OVERALL,
            width: 3,
            marker: Marker::Circle,
        }
    }

    /// The `index`-th site: palette colours in turn, then the same colours
    /// with another marker shape.
    pub(crate) fn site(index: usize) -> Self {
        let marker = match (index / PALETTE.len()) % 3 {
            0 => Marker::Circle,
            1 => Marker::Square,
            _ => Marker::Triangle,
        };
        SeriesStyle {
            color: PALETTE[index % PALETTE.len()],
            width: 2,
            marker,
        }
    }

    /// The line style.
    pub(crate) fn line(&self) -> ShapeStyle {
        self.color.stroke_width(self.width)
    }

    /// Draws this series' marker centred at pixel `at` of `area`.
    pub(crate) fn draw_marker<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        at: (i32, i32),
        radius: i32,
    ) -> Drawn {
        let style = self.color.filled();
        match self.marker {
            Marker::Circle => area.draw(&Circle::new(at, radius, style)),
            Marker::Square => area.draw(&Rectangle::new(
                [
                    (at.0 - radius, at.1 - radius),
                    (at.0 + radius, at.1 + radius),
                ],
                style,
            )),
            Marker::Triangle => area.draw(&TriangleMarker::new(at, radius + 1, style)),
        }
        .map_err(fail)
    }
}

/// One row of a legend.
pub(crate) struct LegendEntry {
    pub(crate) label: String,
    pub(crate) kind: LegendKind,
}

/// What the legend shows before a label.
pub(crate) enum LegendKind {
    /// A line with the series' marker.
    Series(SeriesStyle),
    /// A line without a marker.
    Line(SeriesStyle),
    /// A dashed reference line.
    Reference,
    /// No symbol: an explanatory line in grey.
    Note,
}

/// Draws `entries` top-down in `area` (the strip right of a plot), from
/// `top` pixels down, shrinking the spacing and the font when there are many
/// and cutting labels that would not fit the strip.
pub(crate) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    top: i32,
) -> Drawn {
    if entries.is_empty() {
        return Ok(());
    }
    let (width, height) = area.dim_in_pixel();
    let available = (height as i32 - top - 10).max(0);
    let spacing = (available / entries.len() as i32).clamp(12, 30);
    let font = (spacing - 8).clamp(11, LEGEND_SIZE as i32) as u32;
    let label_style = text(font).pos(Pos::new(HPos::Left, VPos::Center));
    let note_style = label_style.color(&NOTE_INK);
    for (i, entry) in entries.iter().enumerate() {
        let y = top + spacing * i as i32 + spacing / 2;
        if y > height as i32 {
            break;
        }
        let (x, style) = match entry.kind {
            LegendKind::Note => (10, &note_style),
            _ => (52, &label_style),
        };
        let room = (width as i32 - x - 8).max(0) as u32;
        let label = fit(area, &entry.label, style, room)?;
        match &entry.kind {
            LegendKind::Series(series) | LegendKind::Line(series) => {
                area.draw(&PathElement::new(vec![(10, y), (44, y)], series.line()))
                    .map_err(fail)?;
                if matches!(entry.kind, LegendKind::Series(_)) {
                    series.draw_marker(area, (27, y), 4)?;
                }
            }
            LegendKind::Reference => {
                for dash in [10, 24, 38] {
                    area.draw(&PathElement::new(
                        vec![(dash, y), (dash + 7, y)],
                        REFERENCE.stroke_width(2),
                    ))
                    .map_err(fail)?;
                }
            }
            LegendKind::Note => {}
        }
        area.draw_text(&label, style, (x, y)).map_err(fail)?;
    }
    Ok(())
}

/// `label` (at most [`MAX_LABEL_CHARS`]), shortened further in the middle
/// until it is at most `room` pixels wide in `style`. Cutting the middle
/// keeps what usually tells labels apart: a site name's end ("-north",
/// "-02") and a trailing "(AUC 0.912)".
fn fit<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    label: &str,
    style: &TextStyle<'_>,
    room: u32,
) -> Result<String, String> {
    let mut chars = label.chars().count().min(MAX_LABEL_CHARS);
    loop {
        let candidate = elide_middle(label, chars);
        let (width, _) = area.estimate_text_size(&candidate, style).map_err(fail)?;
        if width <= room || chars <= 4 {
            return Ok(candidate);
        }
        chars -= 1;
    }
}

/// Splits `area` into the plot (left) and the legend strip (right).
pub(crate) fn with_legend_strip<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    let (width, _) = area.dim_in_pixel();
    area.split_horizontally(width.saturating_sub(LEGEND_WIDTH))
}

/// A value range `[low, high]` for an axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Span {
    pub(crate) low: f64,
    pub(crate) high: f64,
}

impl Span {
    /// The range of the finite `values` with a 6% margin each side, or
    /// `None` if there are none. A single value gets a margin of its own
    /// size (or 0.05 around zero).
    pub(crate) fn of(values: impl IntoIterator<Item = f64>) -> Option<Span> {
        let (low, high) = values.into_iter().filter(|v| v.is_finite()).fold(
            None,
            |acc: Option<(f64, f64)>, v| match acc {
                None => Some((v, v)),
                Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
            },
        )?;
        let spread = high - low;
        let margin = if spread > 0.0 {
            0.06 * spread
        } else {
            (0.05 * low.abs()).max(0.05)
        };
        Some(Span {
            low: low - margin,
            high: high + margin,
        })
    }

    /// A range for the x axis of rounds `first..=last`, with room for
    /// markers at both ends.
    pub(crate) fn rounds(first: u32, last: u32) -> Span {
        let spread = f64::from(last - first);
        let margin = (0.03 * spread).max(0.3);
        Span {
            low: f64::from(first) - margin,
            high: f64::from(last) + margin,
        }
    }

    /// The range as plotters wants it.
    pub(crate) fn range(self) -> std::ops::Range<f64> {
        self.low..self.high
    }
}

/// Tick label of a round axis: whole rounds only.
pub(crate) fn round_label(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-6 && *x >= 0.0 {
        format!("{:.0}", x)
    } else {
        String::new()
    }
}

/// Tick labels with as many decimals as a span of `span` split into about
/// ten ticks needs.
pub(crate) fn value_labeller(span: Span) -> impl Fn(&f64) -> String {
    let step = (span.high - span.low).abs() / 10.0;
    let decimals = if step > 0.0 && step.is_finite() {
        (-step.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        2
    };
    move |v: &f64| {
        // Avoid "-0.00" for a tick at zero.
        let v = if v.abs() < 0.5 * 10f64.powi(-(decimals as i32)) {
            0.0
        } else {
            *v
        };
        format!("{v:.decimals$}")
    }
}

/// Writes `note` in grey centred at `(fx, fy)`, fractions of the width
/// and height of a plot's drawing area from its top left.
pub(crate) fn draw_note<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    note: &str,
    (fx, fy): (f64, f64),
) -> Drawn {
    let (width, height) = area.dim_in_pixel();
    let at = (
        (f64::from(width) * fx) as i32,
        (f64::from(height) * fy) as i32,
    );
    let style = text(NOTE_SIZE)
        .color(&NOTE_INK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw_text(note, &style, at).map_err(fail)
}

/// The finite points of `points`, in order.
pub(crate) fn finite_points(points: impl IntoIterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    points
        .into_iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// A chart over the unit square (rates or probabilities on both axes), with
/// `pad` of room around it, ticks every 0.1, the axis descriptions, and the
/// dashed diagonal that means "no better than chance" (ROC) or "perfectly
/// calibrated" (calibration) already drawn.
pub(crate) fn unit_square_chart<'a, DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    pad: f64,
    x_desc: &str,
    y_desc: &str,
) -> Result<
    ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    String,
> {
    let axis = Span {
        low: -pad,
        high: 1.0 + pad,
    };
    let labels = value_labeller(Span {
        low: 0.0,
        high: 1.0,
    });
    let mut chart = ChartBuilder::on(plot)
        .margin(14)
        .x_label_area_size(56)
        .y_label_area_size(76)
        .build_cartesian_2d(axis.range(), axis.range())
        .map_err(fail)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(11)
        .y_labels(11)
        .x_label_formatter(&labels)
        .y_label_formatter(&labels)
        .label_style(text(TICK_SIZE))
        .axis_desc_style(text(AXIS_DESC_SIZE))
        .axis_style(INK)
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()
        .map_err(fail)?;
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            8,
            6,
            REFERENCE.stroke_width(2),
        ))
        .map_err(fail)?;
    Ok(chart)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_skip_non_finite_values_and_add_a_margin() {
        let span = Span::of([0.6, f64::NAN, 0.9, f64::INFINITY]).unwrap();
        approx::assert_relative_eq!(span.low, 0.6 - 0.018, epsilon = 1e-12);
        approx::assert_relative_eq!(span.high, 0.9 + 0.018, epsilon = 1e-12);
        assert_eq!(Span::of([f64::NAN]), None);
        let single = Span::of([2.0]).unwrap();
        assert!(single.low < 2.0 && single.high > 2.0);
        let zero = Span::of([0.0]).unwrap();
        assert!(zero.low < 0.0 && zero.high > 0.0);
    }

    #[test]
    fn labels_fit_the_tick_step() {
        let fine = value_labeller(Span {
            low: 0.5,
            high: 1.0,
        });
        assert_eq!(fine(&0.75), "0.75");
        let coarse = value_labeller(Span {
            low: 0.0,
            high: 400.0,
        });
        assert_eq!(coarse(&120.0), "120");
        assert_eq!(fine(&-0.0001), "0.00");
        assert_eq!(round_label(&3.0), "3");
        assert_eq!(round_label(&2.5), "");
    }

    #[test]
    fn long_labels_are_cut_with_an_ellipsis() {
        assert_eq!(shorten("va", 5), "va");
        assert_eq!(shorten("abcdefgh", 5), "abcd…");
        assert_eq!(shorten("a\nb", 5), "a b");
        assert_eq!(elide_middle("hospital-north", 9), "hosp…orth");
        assert_eq!(elide_middle("hospital-north", 14), "hospital-north");
        assert_eq!(elide_middle("abcdef", 4), "ab…f");
    }

    #[test]
    fn sites_beyond_the_palette_change_marker() {
        assert_eq!(SeriesStyle::site(0).marker, Marker::Circle);
        assert_eq!(SeriesStyle::site(6).marker, Marker::Square);
        assert_eq!(SeriesStyle::site(6).color, SeriesStyle::site(0).color);
        assert_ne!(SeriesStyle::site(1).color, SeriesStyle::site(0).color);
    }
}
