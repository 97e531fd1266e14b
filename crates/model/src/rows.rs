//! The rows a computation runs over: features, labels and an optional
//! offset.

use ndarray::{ArrayView1, ArrayView2};

/// A view of training or held-out rows: standardised features `x`
/// (`(n, d)`), labels `y` (length `n`) and, optionally, a per-row offset
/// added to the linear predictor with a fixed coefficient of 1 (for a
/// Poisson rate model, the log of each row's exposure). Nothing is copied.
///
/// The functions taking `Rows` check that the lengths agree and that the
/// offset is finite before they use it.
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    /// Features, one row per record.
    pub x: ArrayView2<'a, f64>,
    /// Labels, one per row.
    pub y: ArrayView1<'a, f64>,
    /// Per-row offset of the linear predictor, if any.
    pub offset: Option<ArrayView1<'a, f64>>,
}

impl<'a> Rows<'a> {
    /// Rows without an offset.
    pub fn new(x: ArrayView2<'a, f64>, y: ArrayView1<'a, f64>) -> Self {
        Rows { x, y, offset: None }
    }

    /// The same rows with `offset` added to every linear predictor.
    pub fn with_offset(self, offset: ArrayView1<'a, f64>) -> Self {
        Rows {
            offset: Some(offset),
            ..self
        }
    }
}

/// How a row's linear predictor is shifted: not at all, or by its entry of
/// an offset vector. Generic code takes `O: Offset` so that the common case
/// without an offset compiles to exactly the unshifted expression.
pub(crate) trait Offset: Copy {
    /// The linear predictor `eta` of row `row`, shifted.
    fn shift(self, row: usize, eta: f64) -> f64;
}

/// No offset.
#[derive(Clone, Copy)]
pub(crate) struct NoOffset;

impl Offset for NoOffset {
    #[inline(always)]
    fn shift(self, _row: usize, eta: f64) -> f64 {
        eta
    }
}

impl Offset for ArrayView1<'_, f64> {
    #[inline(always)]
    fn shift(self, row: usize, eta: f64) -> f64 {
        eta + self[row]
    }
}

/// Runs `$body` with `$o` bound to an [`Offset`] for the optional offset
/// `$offset`: each arm is compiled for its own offset type.
macro_rules! with_offset {
    ($offset:expr, |$o:ident| $body:expr) => {
        match $offset {
            None => {
                let $o = $crate::rows::NoOffset;
                $body
            }
            Some($o) => $body,
        }
    };
}
pub(crate) use with_offset;
