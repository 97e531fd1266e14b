//! [`SecAggError`], the error type of secure aggregation, and [`Stage`], the
//! protocol step an error belongs to.
//!
//! Messages name the member, the step and what was expected and found, but
//! never key material, shares or input values.

use std::fmt;

/// The five message rounds of the protocol, used to say where a problem was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Round 0: each member advertises its two signed public keys.
    AdvertiseKeys,
    /// Round 1: each member sends encrypted Shamir shares to every other.
    ShareKeys,
    /// Round 2: each member sends its masked input.
    MaskedInput,
    /// Round 3: each survivor signs the survivor set it was shown.
    ConsistencyCheck,
    /// Round 4: survivors send the shares that remove the masks.
    Unmasking,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::AdvertiseKeys => "advertise-keys",
            Stage::ShareKeys => "share-keys",
            Stage::MaskedInput => "masked-input",
            Stage::ConsistencyCheck => "consistency-check",
            Stage::Unmasking => "unmasking",
        })
    }
}

/// Everything that can stop a step of secure aggregation.
///
/// A server that gets an error from `receive` can drop that one message and
/// go on (the member then counts as dropped); an error from `finish`, or any
/// client error, ends the round for that party.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecAggError {
    /// The secure-aggregation configuration is unusable.
    #[error("invalid secure-aggregation config: {field}: {reason}")]
    InvalidConfig {
        /// The offending field, e.g. `threshold`.
        field: &'static str,
        /// What is wrong with it, with the accepted range.
        reason: String,
    },

    /// A message names a member id outside the roster.
    #[error("{stage}: {what} names member {member}, but the roster has members 0..{members}")]
    UnknownMember {
        /// The step.
        stage: Stage,
        /// Which field held the id, e.g. `sender` or `recipient`.
        what: &'static str,
        /// The id found.
        member: u32,
        /// The roster size.
        members: u32,
    },

    /// A member that may not speak at this step sent a message, or a list
    /// names a member that is not allowed in it.
    #[error("{stage}: member {member} is not expected here: {reason}")]
    UnexpectedMember {
        /// The step.
        stage: Stage,
        /// The member.
        member: u32,
        /// Why, e.g. `did not send shares in share-keys`.
        reason: String,
    },

    /// A member sent a second message for the same step, or a list holds
    /// the same member twice.
    #[error("{stage}: member {member} appears twice in {what}")]
    Duplicate {
        /// The step.
        stage: Stage,
        /// The member.
        member: u32,
        /// Where, e.g. `the messages received` or `the key list`.
        what: &'static str,
    },

    /// A member's advertised keys do not carry a valid signature by that
    /// member's roster key: forged, altered or substituted.
    #[error("advertise-keys: the signature on member {member}'s keys does not verify")]
    BadSignature {
        /// The member whose keys were refused.
        member: u32,
    },

    /// The key list sent back to a member does not hold the keys that member
    /// advertised.
    #[error("share-keys: the key list holds other keys for member {member} than it advertised")]
    OwnKeysReplaced {
        /// The member (the client itself).
        member: u32,
    },

    /// A public key is a low-order curve point, which would make the agreed
    /// secret predictable.
    #[error("{stage}: member {member}'s public key is a low-order point")]
    WeakKey {
        /// The step.
        stage: Stage,
        /// The member.
        member: u32,
    },

    /// A field has the wrong size.
    #[error("{stage}: member {member} sent a {field} of {got}, expected {expected}")]
    WrongLength {
        /// The step.
        stage: Stage,
        /// The sender.
        member: u32,
        /// The field, e.g. `masked vector` or `ciphertext`.
        field: &'static str,
        /// The size expected (with its unit).
        expected: String,
        /// The size found (with its unit).
        got: String,
    },

    /// An encrypted share did not decrypt: it was altered, or it was
    /// encrypted for another pair of members.
    #[error("share-keys: the share from member {sender} to member {recipient} does not decrypt")]
    DecryptionFailed {
        /// The member that sent it.
        sender: u32,
        /// The member that tried to open it.
        recipient: u32,
    },

    /// A decrypted share names another pair of members than the one it was
    /// routed as.
    #[error(
        "share-keys: a share routed from member {sender} to member {recipient} names \
         {claimed_sender} -> {claimed_recipient} inside"
    )]
    WrongPair {
        /// The sender it was routed as.
        sender: u32,
        /// The recipient it was routed to.
        recipient: u32,
        /// The sender named inside.
        claimed_sender: u32,
        /// The recipient named inside.
        claimed_recipient: u32,
    },

    /// A Shamir share does not belong where it was found: wrong evaluation
    /// point or wrong length.
    #[error(
        "{stage}: member {member} sent a share of member {owner}'s {secret} that is not its own share: {reason}"
    )]
    BadShare {
        /// The step.
        stage: Stage,
        /// The member that sent it.
        member: u32,
        /// Whose secret it is a share of.
        owner: u32,
        /// Which secret, `self-mask seed` or `mask key`.
        secret: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// A consistency or unmasking request names a survivor set this member
    /// must not answer: one with a member whose shares never reached it, one
    /// that leaves this member out, or another set than the one it signed.
    /// Answering could reveal both secrets of one member, which would let
    /// the server remove all of that member's masks.
    #[error("{stage}: the request {problem} member {member}; refusing to answer it")]
    InconsistentRequest {
        /// The step.
        stage: Stage,
        /// The member concerned.
        member: u32,
        /// What is wrong, e.g. `lists as a survivor, but never routed the shares of,`.
        problem: &'static str,
    },

    /// A member's signature on the survivor set does not verify, or signs
    /// something the server cannot accept.
    #[error(
        "consistency-check: member {member}'s signature on the survivor set is refused: {reason}"
    )]
    BadConsistencySignature {
        /// The member that sent it.
        member: u32,
        /// Why, e.g. `it does not verify under the member's roster key`.
        reason: String,
    },

    /// An unmasking request carries fewer valid signatures on the survivor
    /// set than the threshold: the other survivors may have been shown
    /// another set, so nothing is revealed.
    #[error(
        "unmasking: the request carries {got} valid signatures by survivors on the survivor \
         set this member signed, the threshold is {threshold}; refusing to reveal shares"
    )]
    TooFewSignatures {
        /// Valid signatures by distinct survivors on that set.
        got: usize,
        /// The threshold.
        threshold: u32,
    },

    /// A share does not match the commitment its owner sent with it in
    /// share-keys: the holder altered it (when it is revealed) or the owner
    /// sealed another share than it committed to (when it is opened).
    #[error(
        "{stage}: member {holder}'s share of member {owner}'s {secret} does not match the \
         commitment member {owner} sent for it"
    )]
    CommitmentMismatch {
        /// The step.
        stage: Stage,
        /// Whose secret it is a share of.
        owner: u32,
        /// The member that holds (or revealed) it.
        holder: u32,
        /// Which secret, `self-mask seed` or `mask key`.
        secret: &'static str,
    },

    /// Fewer members took part in a step than the threshold allows.
    #[error(
        "{stage}: {got} members took part, the threshold is {threshold}; the round cannot go on"
    )]
    TooFewMembers {
        /// The step.
        stage: Stage,
        /// How many took part.
        got: usize,
        /// The threshold.
        threshold: u32,
    },

    /// A secret could not be rebuilt from its shares.
    #[error("unmasking: cannot rebuild member {owner}'s {secret}: {reason}")]
    ReconstructionFailed {
        /// Whose secret.
        owner: u32,
        /// Which secret, `self-mask seed` or `mask key`.
        secret: &'static str,
        /// Why.
        reason: String,
    },

    /// An input value is NaN or infinite.
    #[error("input value at index {index} is not finite")]
    NotFinite {
        /// Index in the input vector.
        index: usize,
    },

    /// An input value is too large to encode without risking overflow of the
    /// sum over all members.
    #[error(
        "input value at index {index} is {value}, outside the bound ±{bound} \
         (2^(63-f)/n for {members} members and {frac_bits} fractional bits)"
    )]
    OutOfRange {
        /// Index in the input vector.
        index: usize,
        /// The value.
        value: f64,
        /// The largest magnitude accepted.
        bound: f64,
        /// The member count the bound was derived from.
        members: u32,
        /// Fractional bits of the encoding.
        frac_bits: u32,
    },

    /// The input vector has the wrong length.
    #[error("input vector has {got} values, the round expects {expected}")]
    InputLength {
        /// The round's vector length.
        expected: usize,
        /// The length passed.
        got: usize,
    },

    /// A message's bytes could not be decoded.
    #[error("cannot decode a {message} message at byte {offset}: {reason}")]
    Malformed {
        /// The message type.
        message: &'static str,
        /// Byte offset of the problem.
        offset: usize,
        /// What was expected and found.
        reason: String,
    },

    /// A message for one member was handed to another.
    #[error("{stage}: a message for member {intended} was handed to member {member}")]
    Misdelivered {
        /// The step.
        stage: Stage,
        /// The member it was handed to.
        member: u32,
        /// The member it names.
        intended: u32,
    },

    /// The operating system's random source or a primitive failed.
    #[error("cryptographic operation failed: {what}")]
    Crypto {
        /// What was being done, e.g. `drawing a key`.
        what: &'static str,
    },
}
