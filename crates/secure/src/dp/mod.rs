//! Differential privacy: clipping, Gaussian noise and a Rényi-DP accountant.
