//! [`SecAggConfig`] and its checked form [`SecAggParams`]: who takes part in one
//! secure-aggregation round, the threshold, the vector length and the
//! encoding, all bound into one digest that every signature and every
//! derived key names.

use std::sync::Arc;

use ring::digest;

use super::error::SecAggError;
use super::fixed_point::{EncodedInput, FixedPoint};

/// The most members a round may have: shares are evaluated at the points
/// 1..=255 of GF(2^8), one point per member.
pub const MAX_MEMBERS: u32 = 255;
/// The longest vector a round may sum (2^24 values, 128 MiB per vector).
pub const MAX_VECTOR_LEN: usize = 1 << 24;
/// The longest task name, in bytes.
pub const MAX_TASK_LEN: usize = 256;
/// The longest member name, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Protocol label; part of every signed and derived byte string.
pub(crate) const PROTOCOL: &[u8] =
    b"medfed secagg v2 (Bonawitz et al. 2017, malicious server with consistency check)";

/// One member of the roster. Its id is its index in
/// [`SecAggConfig::members`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// A name for people, e.g. the hospital's certificate name. Unique.
    pub name: String,
    /// The member's Ed25519 public key (32 raw bytes, as
    /// `ring::signature::Ed25519KeyPair::public_key` gives it), used to check
    /// the signature on its advertised keys.
    pub verify_key: [u8; 32],
}

/// Everything the parties of one round must agree on before it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct SecAggConfig {
    /// The federation task, e.g. `sepsis-2025`.
    pub task: String,
    /// The training round this aggregation belongs to.
    pub round: u64,
    /// t: the fewest members whose messages must arrive at every step, and
    /// the number of shares that rebuild a secret. Must satisfy
    /// n/2 < t ≤ n, so that a server telling different members different
    /// dropped sets can never gather t shares of both secrets of one member.
    pub threshold: u32,
    /// The roster; member ids are indexes into it.
    pub members: Vec<Member>,
    /// The length of every member's input vector.
    pub vector_len: usize,
    /// The fixed-point encoding of the inputs.
    pub fixed_point: FixedPoint,
}

/// A checked [`SecAggConfig`], cheap to clone, with the digest that binds
/// signatures and keys to it.
#[derive(Debug, Clone)]
pub struct SecAggParams {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: SecAggConfig,
    digest: [u8; 32],
}

impl SecAggParams {
    /// Checks `config`.
    ///
    /// # Errors
    /// [`SecAggError::InvalidConfig`] naming the field: a task name empty or
    /// over [`MAX_TASK_LEN`] bytes; fewer than 2 or more than
    /// [`MAX_MEMBERS`] members; a threshold outside (n/2, n]; a vector length
    /// of 0 or over [`MAX_VECTOR_LEN`]; a member name empty, too long or
    /// repeated; a verify key repeated.
    pub fn new(config: SecAggConfig) -> Result<Self, SecAggError> {
        let invalid = |field, reason: String| Err(SecAggError::InvalidConfig { field, reason });
        if config.task.is_empty() || config.task.len() > MAX_TASK_LEN {
            return invalid(
                "task",
                format!("{} bytes, expected 1..={MAX_TASK_LEN}", config.task.len()),
            );
        }
        let n = config.members.len();
        if !(2..=MAX_MEMBERS as usize).contains(&n) {
            return invalid(
                "members",
                format!("{n} members, expected 2..={MAX_MEMBERS}"),
            );
        }
        let t = config.threshold as usize;
        if t * 2 <= n || t > n {
            return invalid(
                "threshold",
                format!(
                    "{t} for {n} members, expected more than half and at most all \
                     ({}..={n})",
                    n / 2 + 1
                ),
            );
        }
        if config.vector_len == 0 || config.vector_len > MAX_VECTOR_LEN {
            return invalid(
                "vector_len",
                format!("{}, expected 1..={MAX_VECTOR_LEN}", config.vector_len),
            );
        }
        for (id, member) in config.members.iter().enumerate() {
            if member.name.is_empty() || member.name.len() > MAX_NAME_LEN {
                return invalid(
                    "members.name",
                    format!(
                        "member {id}'s name has {} bytes, expected 1..={MAX_NAME_LEN}",
                        member.name.len()
                    ),
                );
            }
            if let Some(first) = config.members[..id]
                .iter()
                .position(|m| m.name == member.name)
            {
                return invalid(
                    "members.name",
                    format!("members {first} and {id} are both named {:?}", member.name),
                );
            }
            if let Some(first) = config.members[..id]
                .iter()
                .position(|m| m.verify_key == member.verify_key)
            {
                return invalid(
                    "members.verify_key",
                    format!("members {first} and {id} have the same verify key"),
                );
            }
        }
        let digest = config_digest(&config);
        Ok(Self {
            inner: Arc::new(Inner { config, digest }),
        })
    }

    /// The checked configuration.
    pub fn config(&self) -> &SecAggConfig {
        &self.inner.config
    }

    /// SHA-256 over the protocol label and every field of the configuration;
    /// parties whose configurations differ in anything cannot verify each
    /// other's keys.
    pub fn digest(&self) -> &[u8; 32] {
        &self.inner.digest
    }

    /// n, the roster size (at most [`MAX_MEMBERS`], so it fits a `u32`).
    pub fn members(&self) -> u32 {
        self.inner.config.members.len() as u32
    }

    /// t, the threshold.
    pub fn threshold(&self) -> u32 {
        self.inner.config.threshold
    }

    /// The length of every input vector.
    pub fn vector_len(&self) -> usize {
        self.inner.config.vector_len
    }

    /// The fixed-point encoding.
    pub fn fixed_point(&self) -> FixedPoint {
        self.inner.config.fixed_point
    }

    /// Encodes a member's input for this round.
    ///
    /// # Errors
    /// [`SecAggError::InputLength`] if `values` is not
    /// [`SecAggParams::vector_len`] long; [`SecAggError::NotFinite`] or
    /// [`SecAggError::OutOfRange`] naming the first bad index (the bound is
    /// [`FixedPoint::value_bound`] for this round's member count).
    pub fn encode_input(&self, values: &[f64]) -> Result<EncodedInput, SecAggError> {
        if values.len() != self.vector_len() {
            return Err(SecAggError::InputLength {
                expected: self.vector_len(),
                got: values.len(),
            });
        }
        let encoded = self.fixed_point().encode(values, self.members())?;
        Ok(EncodedInput::new(encoded))
    }

    /// The name of member `id`, if it is on the roster.
    pub fn member_name(&self, id: u32) -> Option<&str> {
        self.member(id).map(|m| m.name.as_str())
    }

    pub(crate) fn member(&self, id: u32) -> Option<&Member> {
        self.inner.config.members.get(id as usize)
    }

    /// Checks that `id` is on the roster.
    pub(crate) fn check_id(
        &self,
        stage: super::Stage,
        what: &'static str,
        id: u32,
    ) -> Result<(), SecAggError> {
        if id < self.members() {
            Ok(())
        } else {
            Err(SecAggError::UnknownMember {
                stage,
                what,
                member: id,
                members: self.members(),
            })
        }
    }
}

/// Length-prefixed fields, so no two configurations share an encoding.
fn config_digest(config: &SecAggConfig) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut field = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    field(PROTOCOL);
    field(config.task.as_bytes());
    field(&config.round.to_be_bytes());
    field(&config.threshold.to_be_bytes());
    field(&(config.vector_len as u64).to_be_bytes());
    field(&config.fixed_point.frac_bits().to_be_bytes());
    field(&(config.members.len() as u64).to_be_bytes());
    for member in &config.members {
        field(member.name.as_bytes());
        field(&member.verify_key);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(n: u32, t: u32) -> SecAggConfig {
        SecAggConfig {
            task: "task".into(),
            round: 1,
            threshold: t,
            members: (0..n)
                .map(|i| Member {
                    name: format!("m{i}"),
                    verify_key: [i as u8; 32],
                })
                .collect(),
            vector_len: 4,
            fixed_point: FixedPoint::default(),
        }
    }

    #[test]
    fn threshold_must_be_a_majority() {
        assert!(SecAggParams::new(config(5, 3)).is_ok());
        assert!(SecAggParams::new(config(5, 5)).is_ok());
        for t in [0, 2, 6] {
            let err = SecAggParams::new(config(5, t)).unwrap_err();
            assert!(err.to_string().contains("threshold"), "{err}");
        }
        assert!(SecAggParams::new(config(1, 1)).is_err());
        assert!(SecAggParams::new(config(256, 200)).is_err());
    }

    #[test]
    fn refuses_repeated_names_and_keys() {
        let mut c = config(3, 2);
        c.members[2].name = "m0".into();
        assert!(
            SecAggParams::new(c)
                .unwrap_err()
                .to_string()
                .contains("members 0 and 2")
        );
        let mut c = config(3, 2);
        c.members[1].verify_key = c.members[0].verify_key;
        assert!(SecAggParams::new(c).is_err());
    }

    #[test]
    fn digest_covers_every_field() {
        let base = SecAggParams::new(config(3, 2)).unwrap();
        let mut changed = Vec::new();
        let mut c = config(3, 2);
        c.round = 2;
        changed.push(c);
        let mut c = config(3, 2);
        c.threshold = 3;
        changed.push(c);
        let mut c = config(3, 2);
        c.vector_len = 5;
        changed.push(c);
        let mut c = config(3, 2);
        c.fixed_point = FixedPoint::new(20).unwrap();
        changed.push(c);
        let mut c = config(3, 2);
        c.members[1].name = "x".into();
        changed.push(c);
        let mut c = config(3, 2);
        c.task = "other".into();
        changed.push(c);
        for c in changed {
            assert_ne!(SecAggParams::new(c).unwrap().digest(), base.digest());
        }
    }
}
