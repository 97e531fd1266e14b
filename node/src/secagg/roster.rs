//! The roster of a secure round checked: the hospital's rules first (only
//! the members it agreed to, a threshold of at least `min_threshold` of the
//! roster), then each member's signing key taken from its certificate,
//! checked against the pins and the certificate the name presented earlier
//! in the task, and against the consortium CA (trusted again for a while
//! when the same certificate comes back), never from the coordinator's
//! word.

use std::time::{Duration, Instant};

use anyhow::Context;
use medfed_secure::secagg::{FixedPoint, Member, SecAggConfig, SecAggParams};
use medfed_wire::Task;

use super::SecureRounds;

/// A roster certificate that checked out, and the key it certifies.
pub(super) struct Checked {
    der: Vec<u8>,
    sha256: [u8; 32],
    key: [u8; 32],
    at: Instant,
}

/// How long a checked roster certificate is trusted before it is checked
/// again.
pub(super) const RECHECK_AFTER: Duration = Duration::from_secs(600);

impl SecureRounds {
    /// The round's parameters: the roster's keys from certificates checked
    /// against the consortium CA, the threshold and encoding from the task.
    pub(super) fn params(
        &mut self,
        task: &Task,
        (round, session): (u32, u64),
        roster: &[medfed_wire::RosterMember],
        vector_len: usize,
    ) -> anyhow::Result<SecAggParams> {
        let names: Vec<&str> = roster.iter().map(|m| m.name.as_str()).collect();
        roster_policy(
            self.members.as_deref(),
            self.min_threshold,
            self.settings.threshold,
            round,
            &names,
        )?;
        let members = roster
            .iter()
            .map(|m| {
                Ok(Member {
                    name: m.name.clone(),
                    verify_key: self.checked_key(m)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .with_context(|| format!("the roster of round {round} is refused"))?;
        if let Some(me) = members.iter().find(|m| m.name == self.me)
            && me.verify_key != *self.signer.public_key().as_bytes()
        {
            anyhow::bail!(
                "the roster of round {round} lists {} with a key other than this node's",
                self.me
            );
        }
        SecAggParams::new(SecAggConfig {
            task: task.task_id.clone(),
            round: session,
            threshold: self.settings.threshold,
            members,
            vector_len,
            fixed_point: FixedPoint::new(self.settings.fixed_point_bits)?,
        })
        .with_context(|| format!("the roster of round {round} is refused"))
    }

    /// The signing key `m`'s certificate certifies, checked against the
    /// consortium CA unless the same certificate checked out recently. A
    /// roster entry without the certificate names one sent earlier by its
    /// digest.
    fn checked_key(&mut self, m: &medfed_wire::RosterMember) -> anyhow::Result<[u8; 32]> {
        if let Some(pin) = self.pinned.get(&m.name)
            && *pin != m.certificate_sha256
        {
            return Err(crate::policy::Refused::task(
                "member_certificates",
                format!(
                    "the roster's certificate for {} (SHA-256 {}) is not the one this hospital \
                     pinned for it",
                    m.name,
                    crate::policy::hex(&m.certificate_sha256)
                ),
            )
            .into());
        }
        match self.seen.get(&m.name) {
            Some(first) if *first != m.certificate_sha256 => {
                return Err(crate::policy::Refused::task(
                    "member_certificates",
                    format!(
                        "the roster's certificate for {} (SHA-256 {}) is not the one it presented \
                         earlier in this task (SHA-256 {}): one name, two certificates",
                        m.name,
                        crate::policy::hex(&m.certificate_sha256),
                        crate::policy::hex(first)
                    ),
                )
                .into());
            }
            Some(_) => {}
            None => {
                self.seen.insert(m.name.clone(), m.certificate_sha256);
            }
        }
        let held = self
            .checked
            .get(&m.name)
            .filter(|c| c.sha256 == m.certificate_sha256);
        let der = match (&m.certificate, held) {
            (Some(der), _) => {
                if sha256(der) != m.certificate_sha256 {
                    anyhow::bail!(
                        "the roster's certificate for {} does not match its digest",
                        m.name
                    );
                }
                if let Some(c) = held
                    && c.der == *der
                    && c.at.elapsed() < RECHECK_AFTER
                {
                    return Ok(c.key);
                }
                der.clone()
            }
            (None, Some(c)) if c.at.elapsed() < RECHECK_AFTER => return Ok(c.key),
            (None, Some(c)) => c.der.clone(),
            (None, None) => anyhow::bail!(
                "the roster names {}'s certificate by digest only, and this node holds no \
                 certificate with that digest (a coordinator sends every certificate in full \
                 after a join: restart the node to join again)",
                m.name
            ),
        };
        let key = self.verifier.signing_key(&m.name, &der)?;
        self.checked.insert(
            m.name.clone(),
            Checked {
                der,
                sha256: m.certificate_sha256,
                key,
                at: Instant::now(),
            },
        );
        Ok(key)
    }
}

/// The hospital's rules for the roster `names` of `round`, before any
/// certificate is looked at: every member one the hospital agreed to
/// (`agreed`, from `[policy] members`), and the task's `threshold` at least
/// `min_threshold` of the roster. (The wire already holds a roster to the
/// task's members, and the task is checked at join: these hold whatever
/// the wire lets through.)
pub(super) fn roster_policy(
    agreed: Option<&[String]>,
    min_threshold: crate::policy::Fraction,
    threshold: u32,
    round: u32,
    names: &[&str],
) -> Result<(), crate::policy::Refused> {
    if let Some(agreed) = agreed {
        let strangers: Vec<&str> = names
            .iter()
            .copied()
            .filter(|name| !agreed.iter().any(|a| a == name))
            .collect();
        if !strangers.is_empty() {
            return Err(crate::policy::Refused::task(
                "members",
                format!(
                    "the roster of round {round} lists members this hospital did not agree to \
                     federate with: {}",
                    strangers.join(", ")
                ),
            ));
        }
    }
    let floor = min_threshold.floor(names.len());
    if u64::from(threshold) < floor {
        return Err(crate::policy::Refused::task(
            "min_threshold",
            format!(
                "the roster of round {round} has {} members, which needs a threshold of at least \
                 {floor} (min_threshold = {min_threshold} of the roster, rounded up); the task's \
                 is {threshold}",
                names.len()
            ),
        ));
    }
    Ok(())
}

/// SHA-256 of `bytes`.
fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}
