//! Writing a figure as `stem.svg` and `stem.png`, each atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::PlotError;
use crate::figure::{self, Figure};

/// Longest file stem accepted, in bytes.
const MAX_STEM_LEN: usize = 100;

/// Renders `figure` to SVG and PNG in memory, then writes `dir/stem.svg`
/// and `dir/stem.png`. Both are drawn before either is written, so a
/// drawing failure leaves no file behind; each file is replaced atomically,
/// so a reader never sees half a chart.
pub(crate) fn write_figure(
    dir: &Path,
    stem: &str,
    figure: &impl Figure,
) -> Result<Vec<PathBuf>, PlotError> {
    check_stem(stem)?;
    figure::register_font()?;
    let svg_path = dir.join(format!("{stem}.svg"));
    let png_path = dir.join(format!("{stem}.png"));
    let svg = figure::render_svg(figure).map_err(|message| PlotError::Render {
        path: svg_path.clone(),
        message,
    })?;
    let png = figure::render_png(figure).map_err(|message| PlotError::Render {
        path: png_path.clone(),
        message,
    })?;
    write_atomically(&svg_path, svg.as_bytes())?;
    write_atomically(&png_path, &png)?;
    Ok(vec![svg_path, png_path])
}

/// A stem must name a plain file: no separators, no leading dot, nothing a
/// shell or a file system would read specially.
fn check_stem(stem: &str) -> Result<(), PlotError> {
    let invalid = |reason| {
        Err(PlotError::InvalidStem {
            stem: stem.to_owned(),
            reason,
        })
    };
    if stem.is_empty() {
        return invalid("it is empty");
    }
    if stem.len() > MAX_STEM_LEN {
        return invalid("it is longer than 100 bytes");
    }
    if stem.starts_with('.') {
        return invalid("it starts with a dot");
    }
    if !stem
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return invalid("only ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk and
/// renames it over `path`, then syncs the directory so the rename survives a
/// crash.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    let dir = medfed_fsutil::parent_dir(path);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PlotError::Io { path, source }
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".medfed-plot-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    tmp.write_all(bytes).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| PlotError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    medfed_fsutil::sync_parent_dir(path).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_plain_file_names() {
        for good in ["curves", "roc-round_3", "run.1"] {
            assert!(check_stem(good).is_ok(), "{good}");
        }
        let long = "a".repeat(101);
        for bad in ["", ".hidden", "../x", "a/b", "a\\b", "a b", "é", &long] {
            assert!(
                matches!(check_stem(bad), Err(PlotError::InvalidStem { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.svg");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.svg")]);
    }

    #[test]
    fn a_missing_directory_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = write_atomically(&missing.join("x.png"), b"png").unwrap_err();
        match &err {
            PlotError::Io { path, .. } => assert_eq!(path, &missing),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
