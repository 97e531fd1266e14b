//! Renders every chart from data shaped like a real run of the four UCI
//! Heart Disease sites and checks the files: PNGs decode, have the promised
//! size and real content; SVGs hold the title, the axis labels and one line
//! per series. Set `MEDFED_PLOT_OUT=<dir>` to also keep the charts there for
//! a look.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use medfed_model::counts::{BinaryCounts, CalibrationCounts, DEFAULT_SCORE_BINS};
use medfed_plot::{
    CalibrationPlot, HeldOutMetric, PlotError, RocCurve, RocPlot, RoundPoint, TrainingCurves,
    write_calibration, write_roc, write_training_curves,
};
use ndarray::Array1;

const SITES: [&str; 4] = ["cleveland", "hungary", "switzerland", "va"];

/// SplitMix64: reproducible pseudo-random numbers for the simulated rows.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal (sum of uniforms), mean 0, sd 1.
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}

/// Held-out probabilities and labels of one site: `rows` rows, a share
/// `prevalence` of positives, separation `signal` on the logit scale.
fn site_scores(rows: usize, prevalence: f64, signal: f64, seed: u64) -> (Array1<f64>, Array1<f64>) {
    let mut rng = Rng(seed);
    let labels: Array1<f64> = (0..rows)
        .map(|_| f64::from(rng.unit() < prevalence))
        .collect();
    let base = (prevalence / (1.0 - prevalence)).ln();
    let scores = labels.mapv(|y| {
        let logit = base + signal * (y - prevalence) + 1.1 * rng.normal();
        1.0 / (1.0 + (-logit).exp())
    });
    (scores, labels)
}

/// Per-site evaluation counts and the merged calibration counts.
fn evaluation() -> (BTreeMap<String, BinaryCounts>, CalibrationCounts) {
    let shapes = [
        (61, 0.46, 3.2),
        (59, 0.36, 3.0),
        (25, 0.93, 1.6),
        (40, 0.74, 2.0),
    ];
    let mut per_site = BTreeMap::new();
    let mut calibration = CalibrationCounts::default();
    for (i, (site, (rows, prevalence, signal))) in SITES.iter().zip(shapes).enumerate() {
        let (scores, labels) = site_scores(rows, prevalence, signal, 11 + i as u64);
        let counts =
            BinaryCounts::from_scores(scores.view(), labels.view(), DEFAULT_SCORE_BINS).unwrap();
        calibration
            .merge(&CalibrationCounts::from_scores(scores.view(), labels.view()).unwrap())
            .unwrap();
        per_site.insert((*site).to_string(), counts);
    }
    (per_site, calibration)
}

/// Newton-like training: the loss falls fast and flattens; AUC starts at
/// 0.5 (the zero model scores every row alike) and rises. Held-out
/// evaluation every `every` rounds.
fn training(rounds: u32, every: u32) -> TrainingCurves {
    let aucs = [0.89, 0.86, 0.69, 0.74];
    let points = (1..=rounds)
        .map(|r| {
            let progress = 1.0 - 0.35f64.powi(r as i32 - 1);
            let evaluated = r % every == 0 || r == 1;
            let auc = |target: f64| 0.5 + (target - 0.5) * progress;
            RoundPoint {
                round: r,
                train_loss: Some(0.693 - 0.31 * progress),
                overall: evaluated.then(|| auc(0.85)),
                per_site: if evaluated {
                    SITES
                        .iter()
                        .zip(aucs)
                        .map(|(s, a)| (s.to_string(), Some(auc(a))))
                        .collect()
                } else {
                    BTreeMap::new()
                },
            }
        })
        .collect();
    TrainingCurves {
        title: "heart-disease-2025: training".into(),
        metric: HeldOutMetric::Auc,
        rounds: points,
    }
}

fn roc_plot() -> RocPlot {
    let (per_site, _) = evaluation();
    let mut overall = BinaryCounts::new(DEFAULT_SCORE_BINS).unwrap();
    for counts in per_site.values() {
        overall.merge(counts).unwrap();
    }
    RocPlot {
        title: "heart-disease-2025: ROC on held-out rows".into(),
        overall: RocCurve::from_counts("all sites", &overall),
        per_site: per_site
            .iter()
            .filter_map(|(site, c)| RocCurve::from_counts(site.as_str(), c))
            .collect(),
    }
}

fn calibration_plot() -> CalibrationPlot {
    let (_, calibration) = evaluation();
    CalibrationPlot {
        title: "heart-disease-2025: calibration on held-out rows".into(),
        label: "federated model".into(),
        bins: calibration.summary(),
        expected_calibration_error: calibration.expected_calibration_error(),
    }
}

/// Where to render: a fresh temporary directory, and also
/// `MEDFED_PLOT_OUT` when set.
fn render(
    write: impl Fn(&Path) -> Result<Vec<PathBuf>, PlotError>,
) -> (tempfile::TempDir, Vec<PathBuf>) {
    if let Some(keep) = std::env::var_os("MEDFED_PLOT_OUT") {
        std::fs::create_dir_all(&keep).unwrap();
        write(Path::new(&keep)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let written = write(dir.path()).unwrap();
    (dir, written)
}

/// Decodes the PNG at `path` and checks its size and that it is a picture,
/// not a blank: over 5 KB, the expected dimensions, many colours (curves,
/// anti-aliased text) and a white background.
fn check_png(path: &Path, width: u32, height: u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.len() > 5_000,
        "{} is {} bytes",
        path.display(),
        bytes.len()
    );
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (width, height));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let pixels = &pixels[..info.buffer_size()];
    let colours: BTreeSet<&[u8]> = pixels.chunks_exact(3).collect();
    assert!(colours.len() > 50, "only {} colours", colours.len());
    let white = pixels
        .chunks_exact(3)
        .filter(|p| p == &[255, 255, 255])
        .count();
    let total = pixels.len() / 3;
    assert!(
        white > total / 2 && white < total,
        "{white} of {total} pixels white"
    );
}

/// The SVG text, checked to be one well-formed `<svg>` element.
fn read_svg(path: &Path) -> String {
    let svg = std::fs::read_to_string(path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.trim_end().ends_with("</svg>"));
    // Every element opened is closed: self-closing tags aside, as many
    // "<name" as "</name>" for the containers plotters writes.
    for tag in ["text", "svg"] {
        let opened =
            svg.matches(&format!("<{tag} ")).count() + svg.matches(&format!("<{tag}>")).count();
        assert_eq!(opened, svg.matches(&format!("</{tag}>")).count(), "<{tag}>");
    }
    svg
}

/// The text content of every `<text>` element.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text ")
        .skip(1)
        .filter_map(|t| {
            let body = t.split_once('>')?.1;
            Some(body.split("</text>").next()?.trim().to_string())
        })
        .collect()
}

/// Stroke colours of the `<polyline>`s with at least `min_points` points:
/// data lines, not legend samples, dashes or ticks.
fn data_lines(svg: &str, min_points: usize) -> Vec<String> {
    svg.split("<polyline ")
        .skip(1)
        .filter_map(|p| {
            let tag = p.split("/>").next()?;
            let points = tag.split("points=\"").nth(1)?.split('"').next()?;
            let stroke = tag.split("stroke=\"").nth(1)?.split('"').next()?;
            (points.split_whitespace().count() >= min_points).then(|| stroke.to_string())
        })
        .collect()
}

/// Number of points of every `<polyline>`.
fn polyline_lengths(svg: &str) -> Vec<usize> {
    svg.split("<polyline ")
        .skip(1)
        .filter_map(|p| {
            let points = p.split("points=\"").nth(1)?.split('"').next()?;
            Some(points.split_whitespace().count())
        })
        .collect()
}

fn assert_has_texts(svg: &str, expected: &[&str]) {
    let texts = svg_texts(svg);
    for want in expected {
        assert!(
            texts.iter().any(|t| t == want),
            "no <text> {want:?} among {texts:?}"
        );
    }
}

#[test]
fn training_curves_render_as_svg_and_png() {
    let curves = training(8, 1);
    let (_dir, written) = render(|dir| write_training_curves(dir, "training", &curves));
    assert_eq!(written.len(), 2);
    assert!(written[0].ends_with("training.svg") && written[1].ends_with("training.png"));
    check_png(&written[1], 1200, 980);
    let svg = read_svg(&written[0]);
    assert_has_texts(
        &svg,
        &[
            "heart-disease-2025: training",
            "Training loss per round",
            "Held-out AUC per round",
            "round",
            "training loss (row-weighted mean)",
            "held-out AUC",
            "all sites",
            "cleveland",
            "switzerland",
        ],
    );
    // One line for the loss, one per site and one for all sites; the loss
    // and the all-sites AUC share black.
    let lines = data_lines(&svg, 3);
    assert_eq!(lines.len(), 1 + SITES.len() + 1, "{lines:?}");
    let colours: BTreeSet<&String> = lines.iter().collect();
    assert_eq!(colours.len(), SITES.len() + 1, "{lines:?}");
}

#[test]
fn unevaluated_rounds_leave_gaps_not_zeros() {
    // Evaluated at rounds 1, 3, 6, 9, 12: five points per held-out line.
    let curves = training(12, 3);
    let (_dir, written) = render(|dir| write_training_curves(dir, "gaps", &curves));
    let svg = read_svg(&written[0]);
    let point_counts: Vec<usize> = polyline_lengths(&svg)
        .into_iter()
        .filter(|&n| n > 2)
        .collect();
    // The loss has all 12 rounds; every held-out line only its 5.
    assert_eq!(
        point_counts.iter().filter(|&&n| n == 12).count(),
        1,
        "{point_counts:?}"
    );
    assert_eq!(
        point_counts.iter().filter(|&&n| n == 5).count(),
        SITES.len() + 1,
        "{point_counts:?}"
    );
    check_png(&written[1], 1200, 980);
}

#[test]
fn roc_curves_render_with_auc_in_the_legend() {
    let plot = roc_plot();
    let overall_auc = plot.overall.as_ref().unwrap().auc.unwrap();
    let (_dir, written) = render(|dir| write_roc(dir, "roc", &plot));
    check_png(&written[1], 1060, 780);
    let svg = read_svg(&written[0]);
    assert_has_texts(
        &svg,
        &[
            "heart-disease-2025: ROC on held-out rows",
            "false positive rate (1 − specificity)",
            "true positive rate (sensitivity)",
            &format!("all sites (AUC {overall_auc:.3})"),
            "chance (AUC 0.5)",
        ],
    );
    let lines = data_lines(&svg, 3);
    assert_eq!(lines.len(), SITES.len() + 1, "{lines:?}");
    assert_eq!(lines.iter().collect::<BTreeSet<_>>().len(), SITES.len() + 1);
}

#[test]
fn calibration_renders_bins_counts_and_diagonal() {
    let plot = calibration_plot();
    let (_dir, written) = render(|dir| write_calibration(dir, "calibration", &plot));
    check_png(&written[1], 1060, 780);
    let svg = read_svg(&written[0]);
    assert_has_texts(
        &svg,
        &[
            "heart-disease-2025: calibration on held-out rows",
            "mean predicted probability",
            "observed rate of positives",
            "perfectly calibrated",
        ],
    );
    // The joined bins make one line, and each bin's row count is written.
    assert_eq!(data_lines(&svg, 3).len(), 1);
    let texts = svg_texts(&svg);
    for bin in &plot.bins {
        assert!(
            texts.contains(&bin.count.to_string()),
            "count {}",
            bin.count
        );
    }
}

#[test]
fn empty_and_non_finite_inputs_give_charts_with_notes() {
    let curves = TrainingCurves {
        title: "nothing yet".into(),
        metric: HeldOutMetric::R2,
        rounds: vec![RoundPoint {
            round: 1,
            train_loss: Some(f64::NAN),
            overall: Some(f64::INFINITY),
            per_site: BTreeMap::from([("a".to_string(), None)]),
        }],
    };
    let (_dir, written) = render(|dir| write_training_curves(dir, "empty-curves", &curves));
    let svg = read_svg(&written[0]);
    assert_has_texts(
        &svg,
        &[
            "no finite training loss",
            "no round was evaluated on held-out rows",
            "a (no values)",
            "held-out R²",
        ],
    );
    // Only two-point lines (axes, ticks, legend samples): no data line.
    assert!(
        polyline_lengths(&svg).iter().all(|&n| n == 2),
        "{:?}",
        polyline_lengths(&svg)
    );

    let no_rounds = TrainingCurves {
        title: "no rounds".into(),
        metric: HeldOutMetric::Rmse,
        rounds: Vec::new(),
    };
    let (_dir, written) = render(|dir| write_training_curves(dir, "no-rounds", &no_rounds));
    check_png(&written[1], 1200, 980);

    let roc = RocPlot {
        title: "no curves".into(),
        overall: None,
        per_site: vec![RocCurve {
            label: "va".into(),
            points: vec![(f64::NAN, f64::NAN)],
            auc: Some(f64::NAN),
        }],
    };
    let (_dir, written) = render(|dir| write_roc(dir, "empty-roc", &roc));
    assert_has_texts(
        &read_svg(&written[0]),
        &[
            "no ROC curve: each needs positive and negative rows",
            "va (no curve)",
        ],
    );

    let calibration = CalibrationPlot {
        title: "no bins".into(),
        label: "federated model".into(),
        bins: Vec::new(),
        expected_calibration_error: None,
    };
    let (_dir, written) = render(|dir| write_calibration(dir, "empty-calibration", &calibration));
    assert_has_texts(&read_svg(&written[0]), &["no calibration bin holds rows"]);
    check_png(&written[1], 1060, 780);
}

#[test]
fn many_sites_with_long_names_get_cut_labels_and_their_own_lines() {
    let names: Vec<String> = (0..30)
        .map(|i| format!("university-hospital-of-a-long-city-name-{i:02}"))
        .collect();
    let rounds = (1..=5)
        .map(|r| RoundPoint {
            round: r,
            train_loss: Some(0.7 / f64::from(r)),
            overall: Some(0.6 + 0.05 * f64::from(r)),
            per_site: names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    (
                        n.clone(),
                        Some(0.5 + 0.008 * i as f64 + 0.03 * f64::from(r)),
                    )
                })
                .collect(),
        })
        .collect();
    let curves = TrainingCurves {
        title: "thirty sites".into(),
        metric: HeldOutMetric::Auc,
        rounds,
    };
    let (_dir, written) = render(|dir| write_training_curves(dir, "many-sites", &curves));
    let svg = read_svg(&written[0]);
    assert_eq!(data_lines(&svg, 3).len(), 1 + names.len() + 1);
    let texts = svg_texts(&svg);
    // Cut in the middle: each keeps its start and its distinguishing end.
    let cut: BTreeSet<&String> = texts.iter().filter(|t| t.contains('…')).collect();
    assert_eq!(cut.len(), names.len(), "{texts:?}");
    for i in 0..names.len() {
        let end = format!("-{i:02}");
        assert!(
            cut.iter()
                .any(|t| t.starts_with("univ") && t.ends_with(&end)),
            "no label ending {end} in {cut:?}"
        );
    }
    check_png(&written[1], 1200, 980);
}

#[test]
fn bad_stems_and_missing_directories_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let curves = training(3, 1);
    let err = write_training_curves(dir.path(), "../escape", &curves).unwrap_err();
    assert!(matches!(err, PlotError::InvalidStem { .. }), "{err}");
    let missing = dir.path().join("missing");
    let err = write_training_curves(&missing, "training", &curves).unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}
