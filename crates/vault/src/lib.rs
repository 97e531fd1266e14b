//! The encrypted local record store of a medfed site, and CSV import into it.
//!
//! A hospital imports its patient CSV once ([`import_csv`]) into a
//! [`Table`], which [`write_vault`] encrypts with a [`VaultKey`] into a vault
//! file on its own machine. The node later decrypts it in memory with
//! [`read_vault`] to train. Patient rows never exist on disk outside the
//! encrypted vault, and never appear in an error message or in `Debug`
//! output: errors name files, lines, columns and sizes, not cell values.
//!
//! ```no_run
//! use std::path::Path;
//! use medfed_vault::{ImportOptions, VaultKey, import_csv, read_vault, write_vault};
//!
//! # fn main() -> Result<(), medfed_vault::VaultError> {
//! let key = VaultKey::generate();
//! key.write_new(Path::new("site.key"))?;
//! let options = ImportOptions {
//!     required: vec!["outcome".into()],
//!     missing_tokens: vec!["?".into()],
//!     ..ImportOptions::default()
//! };
//! let table = import_csv(Path::new("patients.csv"), &options)?;
//! write_vault(Path::new("site.vault"), &table, &key)?;
//! let back = read_vault(Path::new("site.vault"), &VaultKey::from_file(Path::new("site.key"))?)?;
//! assert_eq!(back.n_rows(), table.n_rows());
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - `error`: [`VaultError`], the crate's one error type, and [`CellProblem`].
//! - `table`: [`Table`], the in-memory numeric table and its invariants.
//! - `import`: [`ImportOptions`] and [`import_csv`], CSV parsing and limits.
//! - `identifiers`: [`flag_identifiers`], the columns that look like record
//!   identifiers (by name, or by distinct integer values), as
//!   [`IdentifierFlag`]s.
//! - `key`: [`VaultKey`] (generate, load, store with mode 0600, fingerprint)
//!   and [`KEY_ENV_VAR`].
//! - `vault`: [`write_vault`] and [`read_vault`], the encrypt/decrypt path.
//! - `format`: the vault file's outer format (header line + Fernet token).
//! - `payload`: the binary encoding of a table inside the token, and its
//!   strict decoder.
//! - `atomic`: atomic file replacement (temp file, fsync, rename, dir fsync).
//! - (`medfed-fsutil`: owner-only permissions, directory sync, wiping
//!   buffers, shared with the exchange log.)
//!
//! # Vault file format (v1)
//! ```text
//! medfed-vault v1 key=<fingerprint>\n
//! <Fernet token>\n
//! ```
//! The first line is ASCII: the format version and the key's public
//! fingerprint (hex of the first 8 bytes of SHA-256 of the key), so a wrong
//! key is told apart from a damaged file. The token is standard Fernet
//! (url-safe base64; AES-128-CBC with HMAC-SHA256 over version, timestamp,
//! IV and ciphertext), decrypted with no time-to-live. Its plaintext is a
//! versioned binary table: magic `MFVTABLE`, `u16` version 1, `u32` column
//! count, each column name as `u32` length + UTF-8, `u64` row count, then the
//! values as little-endian `f64`, row-major. Files over [`MAX_VAULT_BYTES`]
//! are refused before reading.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod atomic;
mod error;
mod format;
mod identifiers;
mod import;
mod key;
mod payload;
mod table;
mod vault;

pub use error::{CellProblem, VaultError};
pub use identifiers::{
    IDENTIFIER_NAMES, IdentifierFlag, IdentifierReason, MIN_DISTINCT_PERCENT, MIN_VALUES_JUDGED,
    flag_identifiers,
};
pub use import::{
    DEFAULT_MAX_COLUMNS, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_ROWS, ImportOptions, import_csv,
};
pub use key::{KEY_ENV_VAR, VaultKey};
pub use table::Table;
pub use vault::{MAX_VAULT_BYTES, read_vault, write_vault};
