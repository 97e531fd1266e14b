//! The local compute a node does: one gradient pass and one Newton-terms
//! (gradient + Hessian) pass over a large standardised matrix, against the
//! streaming-read baseline in the same run; and loading a vault (read,
//! Fernet verification and decryption, payload parsing).

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use medfed_model::{ModelKind, NewtonTerms, loss_and_gradient};
use medfed_vault::{Table, VaultKey, read_vault, write_vault};
use ndarray::Array1;

use crate::machine::time_stream;
use crate::stats::Sample;
use crate::synthetic::Generator;

/// Throughputs of the kernels, in bytes of the feature matrix per second.
pub struct Kernels {
    /// The streaming-read baseline.
    pub stream: Sample,
    /// `loss_and_gradient` (logistic).
    pub gradient: Sample,
    /// `NewtonTerms::from_rows` (loss, gradient and Hessian).
    pub newton: Sample,
}

/// Measures the kernels on `rows x d` rows, `repeats` times each,
/// interleaved so that a noisy moment hits all three alike.
///
/// # Errors
/// A kernel refused the data (it should not: the data are finite and the
/// labels 0/1).
pub fn kernels(rows: usize, d: usize, repeats: usize) -> anyhow::Result<Kernels> {
    let (x, y) = Generator::new(d, 11).matrix(rows);
    let values = x
        .as_slice()
        .context("the generated matrix is in standard layout")?;
    let bytes = std::mem::size_of_val(values) as f64;
    let params = Array1::from_shape_fn(d + 1, |j| 0.01 * (j as f64 % 7.0 - 3.0));
    let mut result = Kernels {
        stream: Sample::default(),
        gradient: Sample::default(),
        newton: Sample::default(),
    };
    // One untimed read brings the pages in and warms the caches' state.
    time_stream(values);
    for _ in 0..repeats {
        result.stream.push(bytes / time_stream(values));

        let started = Instant::now();
        let out = loss_and_gradient(ModelKind::Logistic, x.view(), y.view(), params.view(), 0.0)?;
        let seconds = started.elapsed().as_secs_f64();
        black_box(out);
        result.gradient.push(bytes / seconds);

        let started = Instant::now();
        let out = NewtonTerms::from_rows(x.view(), y.view(), params.view())?;
        let seconds = started.elapsed().as_secs_f64();
        black_box(out);
        result.newton.push(bytes / seconds);
    }
    Ok(result)
}

/// Vault load throughput, in vault-file bytes per second.
pub struct VaultLoad {
    /// Rows and columns of the table (features plus the target).
    pub shape: (usize, usize),
    /// Size of the vault file.
    pub file_bytes: u64,
    /// `read_vault` throughput.
    pub throughput: Sample,
}

/// Writes a vault of `rows` synthetic rows (`d` features and a 0/1 target)
/// under `dir` and times `read_vault` on it `repeats` times.
///
/// # Errors
/// The vault cannot be written or read back, or reads back different.
pub fn vault_load(dir: &Path, rows: usize, d: usize, repeats: usize) -> anyhow::Result<VaultLoad> {
    let mut generator = Generator::new(d, 13);
    let mut values = Vec::with_capacity(rows * (d + 1));
    let mut features = vec![0.0; d];
    for _ in 0..rows {
        let label = generator.row(&mut features);
        values.extend_from_slice(&features);
        values.push(label);
    }
    let mut columns: Vec<String> = (1..=d).map(|j| format!("f{j}")).collect();
    columns.push("target".into());
    let table = Table::new(columns, values)?;
    let key = VaultKey::generate();
    let path = dir.join("load.vault");
    write_vault(&path, &table, &key)?;
    let file_bytes = std::fs::metadata(&path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    drop(table);
    let mut throughput = Sample::default();
    for _ in 0..repeats {
        let started = Instant::now();
        let back = read_vault(&path, &key)?;
        let seconds = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            back.n_rows() == rows,
            "the vault read back {} rows, wrote {rows}",
            back.n_rows()
        );
        drop(black_box(back));
        throughput.push(file_bytes as f64 / seconds);
    }
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(VaultLoad {
        shape: (rows, d + 1),
        file_bytes,
        throughput,
    })
}
