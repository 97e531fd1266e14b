//! `node import`: a hospital's CSV into an encrypted vault, once.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use medfed_vault::{ImportOptions, KEY_ENV_VAR, Table, VaultKey};

/// Where the vault key comes from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// A key file (base64 Fernet key).
    File(PathBuf),
    /// The environment variable [`KEY_ENV_VAR`].
    Env,
}

impl KeySource {
    /// The key file if given, else the environment variable.
    pub fn from_flag(key_file: Option<PathBuf>) -> KeySource {
        key_file.map_or(KeySource::Env, KeySource::File)
    }

    /// Loads the key; with `create`, a missing key file is created (0600).
    ///
    /// # Errors
    /// An unreadable or invalid key, or no key at all.
    pub fn load(&self, create: bool) -> anyhow::Result<VaultKey> {
        match self {
            KeySource::File(path) if create && !path.exists() => {
                let key = VaultKey::generate();
                create_parent(path)?;
                key.write_new(path)?;
                println!(
                    "created vault key {} (fingerprint {}); keep it safe: without it the vault cannot be read",
                    path.display(),
                    key.fingerprint()
                );
                Ok(key)
            }
            KeySource::File(path) => Ok(VaultKey::from_file(path)?),
            KeySource::Env if create => {
                bail!(
                    "--create-key needs --vault-key-file (a key from {KEY_ENV_VAR} already exists)"
                )
            }
            KeySource::Env => Ok(VaultKey::from_env(KEY_ENV_VAR)?),
        }
    }
}

/// Imports `csv` into the vault at `vault`, replacing it atomically.
///
/// # Errors
/// A bad CSV (file, line and column named), a bad key, or a failed write; an
/// existing vault is left as it was.
pub fn import(
    csv: &Path,
    vault: &Path,
    key: &VaultKey,
    options: &ImportOptions,
) -> anyhow::Result<Table> {
    let table = medfed_vault::import_csv(csv, options)?;
    create_parent(vault)?;
    medfed_vault::write_vault(vault, &table, key)
        .with_context(|| format!("cannot write the vault {}", vault.display()))?;
    Ok(table)
}

/// Creates the directory that will hold `path`, if it is missing.
fn create_parent(path: &Path) -> anyhow::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display())),
        _ => Ok(()),
    }
}
