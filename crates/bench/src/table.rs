//! The one table the bench prints: per figure, the median over repeats with
//! its range, the target, and whether it was met or by how much it missed.

use crate::stats::Sample;

/// What a figure should be.
#[derive(Clone, Copy, Debug)]
pub enum Goal {
    /// At most this value.
    AtMost(f64),
    /// At least this value.
    AtLeast(f64),
    /// No target: shown for context.
    Info,
}

/// How to print a figure's values.
#[derive(Clone, Copy, Debug)]
pub enum Unit {
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
    /// KiB shown as MiB.
    Mib,
    /// KiB.
    Kib,
    /// Bytes per second shown as GB/s (10^9).
    GbPerS,
    /// Bytes per second shown as MB/s (10^6).
    MbPerS,
    /// A plain count.
    Count,
    /// A ratio of two figures, shown as `N.NNx`.
    Ratio,
}

impl Unit {
    fn scale(self, value: f64) -> f64 {
        match self {
            Unit::Mib => value / 1024.0,
            Unit::GbPerS => value / 1e9,
            Unit::MbPerS => value / 1e6,
            Unit::Ms | Unit::S | Unit::Kib | Unit::Count | Unit::Ratio => value,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Unit::Ms => " ms",
            Unit::S => " s",
            Unit::Mib => " MiB",
            Unit::Kib => " KiB",
            Unit::GbPerS => " GB/s",
            Unit::MbPerS => " MB/s",
            Unit::Count => "",
            Unit::Ratio => "x",
        }
    }

    fn show(self, value: f64) -> String {
        let v = self.scale(value);
        let digits = match v.abs() {
            a if a >= 100.0 => 0,
            a if a >= 10.0 => 1,
            a if a >= 1.0 => 2,
            _ => 3,
        };
        format!("{v:.digits$}")
    }

    /// `value` with the unit's digits and suffix, e.g. `12.5 ms`.
    pub fn format(self, value: f64) -> String {
        format!("{}{}", self.show(value), self.suffix())
    }
}

/// One line of the table.
pub struct Row {
    /// What was measured.
    pub figure: String,
    /// The repeats.
    pub sample: Sample,
    /// Its unit.
    pub unit: Unit,
    /// Its target.
    pub goal: Goal,
}

impl Row {
    /// A row.
    pub fn new(figure: impl Into<String>, sample: Sample, unit: Unit, goal: Goal) -> Row {
        Row {
            figure: figure.into(),
            sample,
            unit,
            goal,
        }
    }

    fn measured(&self) -> String {
        let u = self.unit;
        if self.sample.len() <= 1 {
            return format!("{}{}", u.show(self.sample.median()), u.suffix());
        }
        format!(
            "{} ({}–{}){}",
            u.show(self.sample.median()),
            u.show(self.sample.min()),
            u.show(self.sample.max()),
            u.suffix()
        )
    }

    fn target(&self) -> String {
        let u = self.unit;
        match self.goal {
            Goal::AtMost(t) => format!("≤ {}{}", u.show(t), u.suffix()),
            Goal::AtLeast(t) => format!("≥ {}{}", u.show(t), u.suffix()),
            Goal::Info => "—".into(),
        }
    }

    /// "met", "missed by X (N.Nx)" or "info".
    pub fn verdict(&self) -> String {
        let m = self.sample.median();
        let u = self.unit;
        match self.goal {
            _ if m.is_nan() => "not measured".into(),
            Goal::AtMost(t) if m <= t => "met".into(),
            Goal::AtLeast(t) if m >= t => "met".into(),
            Goal::AtMost(t) => format!(
                "missed by {}{} ({:.1}x the target)",
                u.show(m - t),
                u.suffix(),
                m / t
            ),
            Goal::AtLeast(t) => format!(
                "missed by {}{} ({:.2}x the target)",
                u.show(t - m),
                u.suffix(),
                m / t
            ),
            Goal::Info => "info".into(),
        }
    }
}

/// The rows as a Markdown table (readable as text, pasteable into docs).
pub fn render(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| vec![r.figure.clone(), r.measured(), r.target(), r.verdict()])
        .collect();
    let header = [
        "target",
        "measured: median (min–max)",
        "target value",
        "result",
    ]
    .map(str::to_owned);
    grid(&header, &cells)
}

/// A Markdown table with columns padded to their widest cell; short rows
/// are padded with empty cells.
pub fn grid(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            if i == widths.len() {
                widths.push(0);
            }
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let padded: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let c = row.get(i).map_or("", String::as_str);
                format!("{c}{}", " ".repeat(w - c.chars().count()))
            })
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header);
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let row = |values: Vec<f64>, goal| Row::new("x", Sample::of(values), Unit::Ms, goal);
        assert_eq!(row(vec![0.5, 0.6, 0.7], Goal::AtMost(0.7)).verdict(), "met");
        assert_eq!(
            row(vec![1.4], Goal::AtMost(0.7)).verdict(),
            "missed by 0.700 ms (2.0x the target)"
        );
        assert_eq!(
            row(vec![150.0], Goal::AtLeast(300.0)).verdict(),
            "missed by 150 ms (0.50x the target)"
        );
        assert_eq!(row(vec![1.0], Goal::Info).verdict(), "info");
        assert_eq!(row(vec![], Goal::Info).verdict(), "not measured");
        let text = render(&[row(vec![1.0, 2.0, 3.0], Goal::AtMost(2.5))]);
        assert!(text.contains("| 2.00 (1.00–3.00) ms"), "{text}");
        assert!(text.contains("≤ 2.50 ms"), "{text}");
        let ratio = Row::new("r", Sample::of(vec![4.0, 4.5]), Unit::Ratio, Goal::Info);
        assert_eq!(ratio.measured(), "4.25 (4.00–4.50)x");
    }

    #[test]
    fn grid_pads_columns_and_short_rows() {
        let text = grid(
            &["a".to_owned(), "bb".to_owned()],
            &[vec!["ccc".to_owned()], vec!["d".to_owned(), "e".to_owned()]],
        );
        assert_eq!(
            text,
            "| a   | bb |\n|-----|----|\n| ccc |    |\n| d   | e  |\n"
        );
    }
}
