//! [`FixedPoint`]: how `f64` values become elements of the ring Z_{2^64}
//! that masks are added in, and back.
//!
//! A value x is encoded as round(x · 2^f), held as a two's-complement `u64`.
//! Sums are taken with wrapping addition, which is exact in Z_{2^64}, so the
//! decoded sum is right as long as the true sum of the encoded integers stays
//! inside the `i64` range. That is what [`FixedPoint::encode`] guarantees: it
//! refuses any value whose encoded magnitude exceeds ⌊(2^63 − 1) / n⌋ for a
//! sum over n members, so no sum of n encoded values can wrap.
//!
//! # Precision and range
//! - Each value is rounded to the nearest multiple of 2^−f: error at most
//!   2^−(f+1) per value.
//! - The decoded sum of n values is within n · 2^−(f+1) of the true sum, plus
//!   the final `f64` rounding (relative 2^−53).
//! - The sum's magnitude stays below 2^(63−f); each value's magnitude must be
//!   at most [`FixedPoint::value_bound`]`(n)` ≈ 2^(63−f) / n.
//!
//! With the default f = 24: steps of 6.0e−8 per value, and a range of
//! ±5.5e11 for the whole sum (±5.5e9 per value among 100 members). Model
//! updates and row counts fit well inside that; raise f for finer steps over
//! a smaller range.

use super::error::SecAggError;

/// The fixed-point encoding of a round: f fractional bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedPoint {
    frac_bits: u32,
}

impl Default for FixedPoint {
    /// f = [`FixedPoint::DEFAULT_FRAC_BITS`].
    fn default() -> Self {
        Self {
            frac_bits: Self::DEFAULT_FRAC_BITS,
        }
    }
}

impl FixedPoint {
    /// The default: 24 fractional bits (steps of 2^−24 ≈ 6.0e−8).
    pub const DEFAULT_FRAC_BITS: u32 = 24;
    /// The most fractional bits accepted. Beyond 52 an `f64` can no longer
    /// carry a unit step of a value near 1, and the range per value shrinks
    /// below 2^11 / n.
    pub const MAX_FRAC_BITS: u32 = 52;

    /// An encoding with `frac_bits` fractional bits.
    ///
    /// # Errors
    /// [`SecAggError::InvalidConfig`] unless `frac_bits` is in
    /// 0..=[`FixedPoint::MAX_FRAC_BITS`].
    pub fn new(frac_bits: u32) -> Result<Self, SecAggError> {
        if frac_bits > Self::MAX_FRAC_BITS {
            return Err(SecAggError::InvalidConfig {
                field: "frac_bits",
                reason: format!("got {frac_bits}, expected 0..={}", Self::MAX_FRAC_BITS),
            });
        }
        Ok(Self { frac_bits })
    }

    /// The number of fractional bits f.
    pub fn frac_bits(&self) -> u32 {
        self.frac_bits
    }

    /// The step between representable values, 2^−f; each encoded value is
    /// within half of it.
    pub fn precision(&self) -> f64 {
        (-f64::from(self.frac_bits)).exp2()
    }

    /// The largest error of a decoded sum over `members` values that comes
    /// from encoding: `members` · 2^−(f+1). (Decoding adds `f64` rounding,
    /// relative 2^−53, on top.)
    pub fn sum_error_bound(&self, members: u32) -> f64 {
        f64::from(members) * self.precision() / 2.0
    }

    /// The largest encoded magnitude a value may have when `members` values
    /// are summed: ⌊(2^63 − 1) / members⌋.
    fn encoded_bound(members: u32) -> u64 {
        // i64::MAX is positive, so unsigned_abs is exact.
        i64::MAX.unsigned_abs() / u64::from(members.max(1))
    }

    /// The largest magnitude of one value that [`FixedPoint::encode`] accepts
    /// for a sum over `members` values: about 2^(63−f) / `members`.
    pub fn value_bound(&self, members: u32) -> f64 {
        // u64 -> f64 rounds to nearest; the exact check is done on integers.
        Self::encoded_bound(members) as f64 * self.precision()
    }

    /// Encodes `values` for a sum over `members` values.
    ///
    /// # Errors
    /// [`SecAggError::NotFinite`] for NaN or ±∞ and
    /// [`SecAggError::OutOfRange`] for a value above
    /// [`FixedPoint::value_bound`], each naming the first such index.
    pub fn encode(&self, values: &[f64], members: u32) -> Result<Vec<u64>, SecAggError> {
        let limit = Self::encoded_bound(members);
        let scale = f64::from(self.frac_bits).exp2();
        values
            .iter()
            .enumerate()
            .map(|(index, &value)| {
                if !value.is_finite() {
                    return Err(SecAggError::NotFinite { index });
                }
                let scaled = (value * scale).round();
                // Below 2^63 the cast is exact (scaled is an integer), and the
                // integer comparison with the limit is exact too.
                let fits = scaled.abs() < 2f64.powi(63) && {
                    let int = scaled as i64;
                    int.unsigned_abs() <= limit
                };
                if !fits {
                    return Err(SecAggError::OutOfRange {
                        index,
                        value,
                        bound: self.value_bound(members),
                        members,
                        frac_bits: self.frac_bits,
                    });
                }
                // Two's complement: the ring element of a negative integer.
                Ok(scaled as i64 as u64)
            })
            .collect()
    }

    /// Decodes ring elements (a sum of encoded values) back to `f64`.
    pub fn decode(&self, encoded: &[u64]) -> Vec<f64> {
        let step = self.precision();
        encoded
            .iter()
            .map(|&element| element as i64 as f64 * step)
            .collect()
    }
}

/// One member's input, encoded and checked for a round: the right length,
/// every value inside the round's bound. Made by
/// [`SecAggParams::encode_input`](super::SecAggParams::encode_input).
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedInput {
    values: Vec<u64>,
}

impl EncodedInput {
    pub(crate) fn new(values: Vec<u64>) -> Self {
        Self { values }
    }

    /// The ring elements, round(x · 2^f) in two's complement.
    pub fn as_slice(&self) -> &[u64] {
        &self.values
    }
}

impl std::fmt::Debug for EncodedInput {
    /// Only the length: an input is private to its member.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncodedInput({} values)", self.values.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_within_half_a_step() {
        let fp = FixedPoint::default();
        let values = [0.0, 1.0, -1.0, 0.123_456_789, -3.999_999_9, 1e6, -2.5e-9];
        let encoded = fp.encode(&values, 10).unwrap();
        for (x, y) in values.iter().zip(fp.decode(&encoded)) {
            assert!((x - y).abs() <= fp.precision() / 2.0, "{x} -> {y}");
        }
        assert_eq!(
            encoded[2],
            u64::MAX - (1 << 24) + 1,
            "-1 is two's complement"
        );
    }

    #[test]
    fn bound_is_exact_at_the_edge() {
        let fp = FixedPoint::new(0).unwrap();
        let limit = i64::MAX / 3;
        assert!(fp.encode(&[limit as f64 - 1024.0], 3).is_ok());
        // The next representable f64 above limit is beyond it.
        let err = fp.encode(&[1.0, limit as f64 * 1.000_001], 3).unwrap_err();
        assert!(
            matches!(
                err,
                SecAggError::OutOfRange {
                    index: 1,
                    members: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn sum_of_extremes_does_not_wrap() {
        let fp = FixedPoint::default();
        let members = 7;
        let bound = fp.value_bound(members);
        // The largest accepted magnitude, n times, still decodes right.
        let x = bound * (1.0 - 1e-12);
        let enc = fp.encode(&[x, -x], members).unwrap();
        let (mut pos, mut neg) = (0u64, 0u64);
        for _ in 0..members {
            pos = pos.wrapping_add(enc[0]);
            neg = neg.wrapping_add(enc[1]);
        }
        let sum = fp.decode(&[pos, neg]);
        assert!(sum[0] > 0.0 && sum[1] < 0.0);
        assert!((sum[0] - x * f64::from(members)).abs() / sum[0] < 1e-9);
        assert!(fp.encode(&[bound * 1.01], members).is_err());
    }

    #[test]
    fn refuses_non_finite_and_too_many_bits() {
        let fp = FixedPoint::default();
        assert!(matches!(
            fp.encode(&[0.0, f64::NAN], 2),
            Err(SecAggError::NotFinite { index: 1 })
        ));
        assert!(matches!(
            fp.encode(&[f64::NEG_INFINITY], 2),
            Err(SecAggError::NotFinite { index: 0 })
        ));
        assert!(FixedPoint::new(53).is_err());
    }
}
