//! The machine: core count, and the single-core memory bandwidth that the
//! compute kernels are judged against.

use std::hint::black_box;
use std::time::Instant;

/// Cores this process may use (`std::thread::available_parallelism`), or 1
/// if unknown.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Sums `values` with eight independent accumulators, so the loop is bound
/// by reading memory rather than by the latency of one chain of additions.
/// This is the plain streaming-read baseline: the least work that still
/// touches every byte once.
pub fn stream_sum(values: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = values.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Seconds one streaming read of `values` takes (the sum is kept alive so
/// the read cannot be optimised away).
pub fn time_stream(values: &[f64]) -> f64 {
    let started = Instant::now();
    black_box(stream_sum(black_box(values)));
    started.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_sum_is_the_sum() {
        let values: Vec<f64> = (1..=1003).map(f64::from).collect();
        assert_eq!(stream_sum(&values), 1003.0 * 1004.0 / 2.0);
        assert_eq!(stream_sum(&[]), 0.0);
        assert!(cores() >= 1);
    }
}
