//! The record of every vector this node masked, kept beside the vault, so
//! that no vector is contributed to two secure sums.
//!
//! A coordinator that runs one round twice, once with a roster R and once
//! with R∖{u} (both at least the threshold), and subtracts the two sums
//! learns u's vector: secure aggregation hides each vector within one sum,
//! not across sums. Each honest member can stop it by masking a vector
//! once: the second run finds the vector in this record and is refused
//! (rule `contribution`) before any key of it leaves.
//!
//! What is recorded is what determines the vector, part by part (see
//! [`parts`]): a Newton round's terms are a function of its parameters and
//! preprocessing, so the same parameters in a later round make the same
//! terms; a round's held-out counts of one model are the same whatever
//! round asks for them, and so are the final evaluation's (in its own
//! layout); the preprocessing passes and the normal equations are asked
//! once per task. The digest of the fixed-point vector itself is recorded too,
//! and checked before masking, for work that differs only in ways the
//! encoding does not see. A DP training round's update is not a repeat:
//! it is clipped and noised afresh and charged to the site's budget at
//! every run, so two runs release two noised updates, each paid for.
//!
//! The file `<vault>.contributions.json` is replaced atomically (write,
//! fsync, rename, fsync the directory) *before* the masked input leaves,
//! so a crash can waste a round but never forget one. A file that cannot
//! be read or is not a valid record is an error, never reset.

use std::path::{Path, PathBuf};

use anyhow::Context;
use medfed_wire::Instruction;
use ndarray::Array1;
use serde::{Deserialize, Serialize};

/// Format tag of the contributions file.
pub const CONTRIBUTIONS_FORMAT: &str = "medfed-contributions/1";

/// Largest contributions file read (a few hundred bytes per masked step;
/// 100 000 steps at most).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// One part of a masked vector and the digest of what determines it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// `update`, `newton`, `normal`, `statistics`, `moments`, `held-out` (a
    /// round's held-out counts of its model) or `evaluation` (the final
    /// evaluation's counts of one model).
    pub part: String,
    /// SHA-256, as hex, of what determines it (model, preprocessing, ...).
    pub sha256: String,
}

/// One vector this node masked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contribution {
    /// The task.
    pub task_id: String,
    /// What stage 0 asked for (`train`, `newton-round`, ... as the
    /// exchange log names it).
    pub kind: String,
    /// The task's round (0 outside training).
    pub round: u32,
    /// The step of the stage-0 instruction.
    pub step: u64,
    /// What the vector holds.
    pub parts: Vec<Part>,
    /// SHA-256, as hex, of the fixed-point vector masked.
    pub input_sha256: String,
}

impl Contribution {
    /// Where it was contributed, for a refusal.
    fn at(&self) -> String {
        format!("round {} (step {}, {})", self.round, self.step, self.kind)
    }
}

/// The contributions file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContributionsFile {
    format: String,
    contributions: Vec<Contribution>,
}

/// The record, bound to its file.
#[derive(Debug)]
pub struct Contributions {
    path: PathBuf,
    contributions: Vec<Contribution>,
}

/// `<vault>.contributions.json`.
pub fn contributions_path(vault: &Path) -> PathBuf {
    let mut name = vault.as_os_str().to_owned();
    name.push(".contributions.json");
    PathBuf::from(name)
}

impl Contributions {
    /// Opens the record beside `vault`, or starts an empty one.
    ///
    /// # Errors
    /// A file that cannot be read, is too large, or is not a valid record
    /// (naming the file and what is wrong).
    pub fn open(vault: &Path) -> anyhow::Result<Contributions> {
        let path = contributions_path(vault);
        let contributions = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            Ok(meta) if meta.len() > MAX_FILE_BYTES => anyhow::bail!(
                "{} is {} bytes, larger than {MAX_FILE_BYTES}: not a contributions record",
                path.display(),
                meta.len()
            ),
            Ok(_) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let file: ContributionsFile = serde_json::from_str(&text).with_context(|| {
                    format!("{} is not a valid contributions record", path.display())
                })?;
                anyhow::ensure!(
                    file.format == CONTRIBUTIONS_FORMAT,
                    "{}: format {:?}, expected {CONTRIBUTIONS_FORMAT:?}",
                    path.display(),
                    file.format
                );
                for (i, entry) in file.contributions.iter().enumerate() {
                    let digests = entry
                        .parts
                        .iter()
                        .map(|p| ("parts.sha256", &p.sha256))
                        .chain(std::iter::once(("input_sha256", &entry.input_sha256)));
                    for (field, digest) in digests {
                        anyhow::ensure!(
                            is_sha256_hex(digest),
                            "{}: contribution {i}: {field} is {digest:?}, expected 64 lowercase \
                             hex digits",
                            path.display()
                        );
                    }
                }
                file.contributions
            }
        };
        Ok(Contributions {
            path,
            contributions,
        })
    }

    /// The file the record is kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every vector recorded, oldest first.
    pub fn contributions(&self) -> &[Contribution] {
        &self.contributions
    }

    /// The refusal of stage-0 work holding `parts` in `task_id`, if one of
    /// them was already masked.
    pub fn refusal(&self, task_id: &str, parts: &[Part]) -> Option<crate::policy::Refused> {
        self.contributions
            .iter()
            .filter(|c| c.task_id == task_id)
            .find_map(|c| {
                let part = parts.iter().find(|p| c.parts.contains(p))?;
                Some(crate::policy::Refused::task(
                    "contribution",
                    format!(
                        "this site already masked the {} this step asks for at {}: the same \
                         vector in a second secure sum would let the difference of the sums \
                         single out a member",
                        part.part,
                        c.at()
                    ),
                ))
            })
    }

    /// The refusal of masking a vector with digest `input_sha256` in
    /// `task_id`, if that vector was already masked.
    pub fn input_refusal(
        &self,
        task_id: &str,
        input_sha256: &str,
    ) -> Option<crate::policy::Refused> {
        let c = self
            .contributions
            .iter()
            .find(|c| c.task_id == task_id && c.input_sha256 == input_sha256)?;
        Some(crate::policy::Refused::task(
            "contribution",
            format!(
                "the vector this step would mask is the one this site masked at {}",
                c.at()
            ),
        ))
    }

    /// Records `contribution`, durably, before its masked input may leave.
    ///
    /// # Errors
    /// The file cannot be written (then the masked input must not leave).
    pub fn record(&mut self, contribution: Contribution) -> anyhow::Result<()> {
        let mut contributions = self.contributions.clone();
        contributions.push(contribution);
        let file = ContributionsFile {
            format: CONTRIBUTIONS_FORMAT.to_owned(),
            contributions,
        };
        crate::privacy::write_atomically(&self.path, &file).with_context(|| {
            format!("cannot record the contribution in {}", self.path.display())
        })?;
        self.contributions = file.contributions;
        Ok(())
    }
}

/// What determines each part of the vector stage-0 `work` masks; `dp`: the
/// task noises training updates (then a training round's update is no
/// repeat, and only its held-out counts are recorded as parts).
pub fn parts(work: &Instruction, dp: bool) -> Vec<Part> {
    let part = |name: &str, bytes: &[&[u8]]| {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(CONTRIBUTIONS_FORMAT.as_bytes());
        for field in std::iter::once(name.as_bytes()).chain(bytes.iter().copied()) {
            context.update(&(field.len() as u64).to_le_bytes());
            context.update(field);
        }
        Part {
            part: name.to_owned(),
            sha256: crate::policy::hex(context.finish().as_ref()),
        }
    };
    let held_out = |model: &Array1<f64>, preprocessing: &[u8]| {
        part("held-out", &[&floats(model.iter().copied()), preprocessing])
    };
    match work {
        Instruction::Train {
            global,
            preprocessing,
            prox_mu,
            evaluate,
            round: _,
        } => {
            let preprocessing = json(preprocessing);
            let mut parts = Vec::new();
            if !dp {
                let global = floats(global.iter().copied());
                let mu = floats([*prox_mu]);
                parts.push(part("update", &[&global, &preprocessing, &mu]));
            }
            if *evaluate {
                parts.push(held_out(global, &preprocessing));
            }
            parts
        }
        Instruction::Newton {
            params,
            preprocessing,
            evaluate,
            round: _,
        } => {
            let preprocessing = json(preprocessing);
            let mut parts = vec![part(
                "newton",
                &[&floats(params.iter().copied()), &preprocessing],
            )];
            if *evaluate {
                parts.push(held_out(params, &preprocessing));
            }
            parts
        }
        // Asked once per task: any second run is a repeat, whatever the
        // preprocessing or plan it names.
        Instruction::Normal { .. } => vec![part("normal", &[])],
        Instruction::CollectStatistics => vec![part("statistics", &[])],
        Instruction::CollectHistograms { .. } => vec![part("moments", &[])],
        Instruction::Evaluate {
            preprocessing,
            models,
        } => {
            // Counts in the final evaluation's own layout: a model a round
            // already evaluated (the solver converged and kept it) is
            // scored again once, never twice.
            let preprocessing = json(preprocessing);
            models
                .iter()
                .map(|model| {
                    part(
                        "evaluation",
                        &[&floats(model.iter().copied()), &preprocessing],
                    )
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// SHA-256, as hex, of a fixed-point vector.
pub fn input_sha256(values: &[u64]) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for value in values {
        context.update(&value.to_le_bytes());
    }
    crate::policy::hex(context.finish().as_ref())
}

/// Little-endian bytes of `values`, with −0 as 0 (the same model).
fn floats(values: impl IntoIterator<Item = f64>) -> Vec<u8> {
    values
        .into_iter()
        .flat_map(|v| (v + 0.0).to_le_bytes())
        .collect()
}

/// The JSON of `value` (a preprocessing: plain structs, no maps, so one
/// value has one text).
fn json(value: &impl Serialize) -> Vec<u8> {
    // Serializing plain structs of numbers and strings cannot fail; an
    // empty digest input would still differ from any real one.
    serde_json::to_vec(value).unwrap_or_default()
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use medfed_model::preprocess::FittedPreprocessor;

    use super::*;

    fn train(round: u32, global: Vec<f64>, evaluate: bool) -> Instruction {
        Instruction::Train {
            round,
            global: Array1::from(global),
            preprocessing: FittedPreprocessor { columns: vec![] },
            prox_mu: 0.0,
            evaluate,
        }
    }

    fn masked(task_id: &str, work: &Instruction, step: u64, input: &[u64]) -> Contribution {
        Contribution {
            task_id: task_id.into(),
            kind: "train".into(),
            round: work.round(),
            step,
            parts: parts(work, false),
            input_sha256: input_sha256(input),
        }
    }

    #[test]
    fn a_recorded_vector_survives_a_restart_and_refuses_its_repeat() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = dir.path().join("site.vault");
        let mut record = Contributions::open(&vault).expect("open");
        assert!(record.contributions().is_empty());
        let round_3 = train(3, vec![0.5, -1.0], false);
        let entry = masked("t", &round_3, 12, &[1, 2, 3]);
        record.record(entry.clone()).expect("record");

        let reopened = Contributions::open(&vault).expect("reopen");
        assert_eq!(reopened.contributions(), [entry]);
        assert_eq!(reopened.path(), contributions_path(&vault));
        // The same model in a later round (−0 for 0 changes nothing) is
        // the same update.
        let again = parts(&train(4, vec![0.5, -1.0], true), false);
        let refused = reopened.refusal("t", &again).expect("refused");
        assert_eq!(refused.rule, "contribution");
        assert!(
            refused.reason.contains("round 3 (step 12, train)")
                && refused.reason.contains("update"),
            "{}",
            refused.reason
        );
        let zero = masked("t", &train(1, vec![0.0], false), 1, &[]);
        let negative_zero = parts(&train(2, vec![-0.0], false), false);
        assert_eq!(zero.parts, negative_zero);
        // Another model, another task, or a DP round's update is no repeat.
        assert!(
            reopened
                .refusal("t", &parts(&train(4, vec![0.5, -0.9], false), false))
                .is_none()
        );
        assert!(reopened.refusal("other", &again).is_none());
        assert!(parts(&round_3, true).is_empty());
        // The vector itself is checked before masking.
        let input = reopened
            .input_refusal("t", &input_sha256(&[1, 2, 3]))
            .expect("refused");
        assert!(input.reason.contains("step 12"), "{}", input.reason);
        assert!(
            reopened
                .input_refusal("t", &input_sha256(&[1, 2, 4]))
                .is_none()
        );
    }

    #[test]
    fn held_out_counts_of_one_model_are_one_part_whatever_step_asks() {
        let model = vec![0.1, 0.2];
        let preprocessing = FittedPreprocessor { columns: vec![] };
        let trained = parts(&train(2, model.clone(), true), true);
        let newton = parts(
            &Instruction::Newton {
                round: 5,
                params: Array1::from(model.clone()),
                preprocessing: preprocessing.clone(),
                evaluate: true,
            },
            false,
        );
        assert_eq!(trained.len(), 1);
        assert_eq!(trained[0].part, "held-out");
        assert_eq!(newton[1], trained[0]);
        let evaluate = |models: Vec<Vec<f64>>| {
            parts(
                &Instruction::Evaluate {
                    preprocessing: preprocessing.clone(),
                    models: models.into_iter().map(Array1::from).collect(),
                },
                false,
            )
        };
        let first = evaluate(vec![model.clone()]);
        let again = evaluate(vec![vec![9.0, 9.0], model]);
        assert_eq!(first[0].part, "evaluation");
        assert_eq!(again[1], first[0]);
        assert_ne!(again[0], first[0]);
        // The final evaluation's own layout is another release than a
        // round's held-out counts of the same model.
        assert_ne!(first[0], trained[0]);
    }

    #[test]
    fn a_damaged_record_is_an_error_naming_the_file_never_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = dir.path().join("site.vault");
        let path = contributions_path(&vault);
        let valid = format!(
            "{{\"format\": \"{CONTRIBUTIONS_FORMAT}\", \"contributions\": [{{\"task_id\": \"t\", \
             \"kind\": \"train\", \"round\": 1, \"step\": 1, \"parts\": [], \"input_sha256\": \
             \"{}\"}}]}}",
            "ab".repeat(32)
        );
        std::fs::write(&path, &valid).expect("write");
        assert_eq!(
            Contributions::open(&vault)
                .expect("valid")
                .contributions()
                .len(),
            1
        );
        for (damaged, wanted) in [
            (
                "{\"format\": 3}".to_owned(),
                "not a valid contributions record",
            ),
            (
                valid[..valid.len() / 2].to_owned(),
                "not a valid contributions record",
            ),
            (
                valid.replace("\"step\": 1", "\"step\": 1, \"extra\": 0"),
                "not a valid contributions record",
            ),
            (
                valid.replace(CONTRIBUTIONS_FORMAT, "medfed-contributions/9"),
                "expected \"medfed-contributions/1\"",
            ),
            (
                valid.replace(&"ab".repeat(32), "abc"),
                "contribution 0: input_sha256 is \"abc\"",
            ),
        ] {
            std::fs::write(&path, &damaged).expect("write");
            let err = format!("{:#}", Contributions::open(&vault).expect_err("refused"));
            assert!(err.contains(wanted), "{wanted}: {err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
            // Nothing is rewritten: the damaged file stays for a person
            // to look at.
            assert_eq!(std::fs::read_to_string(&path).expect("read"), damaged);
        }
    }
}
