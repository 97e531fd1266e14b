//! `node import`: a hospital's CSV into an encrypted vault, once, and the
//! columns that look like record identifiers.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use medfed_vault::{IdentifierFlag, ImportOptions, KEY_ENV_VAR, Table, VaultKey};

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

/// What [`import`] wrote, and what the person importing should look at.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The table now in the vault.
    pub table: Table,
    /// Its columns that look like record identifiers, in column order
    /// ([`medfed_vault::flag_identifiers`]).
    pub identifiers: Vec<IdentifierFlag>,
}

impl Imported {
    /// The lines `node import` prints about record identifiers: one per
    /// flagged column, saying why and what the node's default policy does
    /// with it, or one line saying that no column was flagged. No line holds
    /// a cell value.
    pub fn identifier_lines(&self) -> Vec<String> {
        if self.identifiers.is_empty() {
            return vec!["no column looks like a record identifier".to_owned()];
        }
        self.identifiers
            .iter()
            .map(|flag| {
                format!(
                    "{flag}; the node's default policy will refuse it as a feature or target \
                     (to allow it, list it in [policy] not_identifiers of the node file)"
                )
            })
            .collect()
    }
}

/// Imports `csv` into the vault at `vault`, replacing it atomically, and
/// flags the columns that look like record identifiers.
///
/// # Errors
/// A bad CSV (file, line and column named), a bad key, or a failed write; an
/// existing vault is left as it was.
pub fn import(
    csv: &Path,
    vault: &Path,
    key: &VaultKey,
    options: &ImportOptions,
) -> anyhow::Result<Imported> {
    let table = medfed_vault::import_csv(csv, options)?;
    create_parent(vault)?;
    medfed_vault::write_vault(vault, &table, key)
        .with_context(|| format!("cannot write the vault {}", vault.display()))?;
    let identifiers = medfed_vault::flag_identifiers(&table);
    Ok(Imported { table, identifiers })
}

/// Creates the directory that will hold `path`, if it is missing.
fn create_parent(path: &Path) -> anyhow::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use medfed_vault::IdentifierReason;

    use super::*;

    fn imported(identifiers: Vec<IdentifierFlag>) -> Imported {
        match Table::new(vec!["a".into()], vec![]) {
            Ok(table) => Imported { table, identifiers },
            Err(e) => panic!("test table: {e}"),
        }
    }

    #[test]
    fn identifier_lines_name_each_flag_or_say_there_is_none() {
        assert_eq!(
            imported(Vec::new()).identifier_lines(),
            vec!["no column looks like a record identifier".to_owned()]
        );
        let lines = imported(vec![
            IdentifierFlag {
                column: "patient_id".into(),
                reason: IdentifierReason::Name,
            },
            IdentifierFlag {
                column: "number".into(),
                reason: IdentifierReason::DistinctIntegers {
                    distinct: 297,
                    rows: 297,
                },
            },
        ])
        .identifier_lines();
        assert_eq!(
            lines,
            vec![
                "column `patient_id` looks like a record identifier: its name looks like a \
                 record identifier; the node's default policy will refuse it as a feature or \
                 target (to allow it, list it in [policy] not_identifiers of the node file)"
                    .to_owned(),
                "column `number` looks like a record identifier: its 297 values are integers, \
                 distinct in 297 of 297 rows, as record numbers are; the node's default policy \
                 will refuse it as a feature or target (to allow it, list it in [policy] \
                 not_identifiers of the node file)"
                    .to_owned(),
            ]
        );
    }
}
