//! Secure-aggregation steps: the inbox of each stage is the medfed-secure
//! server state machine of that stage, kept typed from one stage to the
//! next, which adds masked inputs and never holds a member's vector in
//! clear.

use std::collections::BTreeMap;

use medfed_secure::secagg::{
    SecAggError, Server, ServerChecking, ServerMasking, ServerSharing, ServerUnmasking,
};
use medfed_wire::{SecAggMessage, Submission};

use super::{Context, Inbox, SubmitError};

/// One stage of the server state machine: the message it takes.
pub trait Stage: Send + 'static {
    /// What the stage collects, as refusals name it.
    const COLLECTS: &'static str;

    /// Feeds `message` to the stage; `None` when it is another stage's.
    fn receive(&mut self, message: SecAggMessage) -> Option<Result<(), SecAggError>>;
}

impl Stage for Server {
    const COLLECTS: &'static str = "advertised keys";

    fn receive(&mut self, message: SecAggMessage) -> Option<Result<(), SecAggError>> {
        match message {
            SecAggMessage::Keys(m) => Some(Server::receive(self, m)),
            _ => None,
        }
    }
}

impl Stage for ServerSharing {
    const COLLECTS: &'static str = "encrypted shares";

    fn receive(&mut self, message: SecAggMessage) -> Option<Result<(), SecAggError>> {
        match message {
            SecAggMessage::Shares(m) => Some(ServerSharing::receive(self, m)),
            _ => None,
        }
    }
}

impl Stage for ServerMasking {
    const COLLECTS: &'static str = "masked inputs";

    fn receive(&mut self, message: SecAggMessage) -> Option<Result<(), SecAggError>> {
        match message {
            SecAggMessage::Masked(m) => Some(ServerMasking::receive(self, m)),
            _ => None,
        }
    }
}

impl Stage for ServerChecking {
    const COLLECTS: &'static str = "signatures on the survivor set";

    fn receive(&mut self, message: SecAggMessage) -> Option<Result<(), SecAggError>> {
        match message {
            SecAggMessage::Consistency(m) => Some(ServerChecking::receive(self, m)),
            _ => None,
        }
    }
}

impl Stage for ServerUnmasking {
    const COLLECTS: &'static str = "unmasking shares";

    fn receive(&mut self, message: SecAggMessage) -> Option<Result<(), SecAggError>> {
        match message {
            SecAggMessage::Unmask(m) => Some(ServerUnmasking::receive(self, m)),
            _ => None,
        }
    }
}

/// The inbox of one secure-aggregation stage.
pub struct SecureInbox<S: Stage> {
    /// The stage's server state machine.
    pub server: S,
    /// The round's roster: member name to id.
    ids: BTreeMap<String, u32>,
    /// The round, as refusals name it.
    round: u32,
    /// The step, as refusals name it.
    step: u64,
}

impl<S: Stage> SecureInbox<S> {
    /// The inbox of `server`'s stage at `step` of `round`, for the roster
    /// `ids`.
    pub fn new(server: S, ids: BTreeMap<String, u32>, round: u32, step: u64) -> SecureInbox<S> {
        SecureInbox {
            server,
            ids,
            round,
            step,
        }
    }
}

impl<S: Stage> Inbox for SecureInbox<S> {
    fn collects(&self) -> &'static str {
        S::COLLECTS
    }

    fn takes(&self, submission: &Submission) -> bool {
        matches!(submission, Submission::SecAgg(_))
    }

    /// # Errors
    /// A member outside the round's roster or no longer expected, a sender
    /// id other than the member's own, a message of another stage, or one
    /// the protocol refuses.
    fn accept(
        &mut self,
        member: &str,
        submission: Submission,
        context: Context<'_>,
    ) -> Result<(), SubmitError> {
        let Submission::SecAgg(submission) = submission else {
            return Err(SubmitError::Invalid(format!(
                "{} is not a secure-aggregation message",
                super::label(&submission)
            )));
        };
        let round = self.round;
        let kind = submission.message.kind();
        let Some(&id) = self.ids.get(member) else {
            return Err(SubmitError::Invalid(format!(
                "{member} is not on the roster of round {round}"
            )));
        };
        if !context.expected.contains(member) {
            return Err(SubmitError::Invalid(format!(
                "{member} dropped out of round {round} at an earlier stage"
            )));
        }
        // TLS and the signature say who sent it; the id inside must agree,
        // or one member could speak for another.
        let sender = submission.message.sender();
        if sender != id {
            return Err(SubmitError::Invalid(format!(
                "{kind} names sender {sender}, but {member} is member {id} of round {round}"
            )));
        }
        match self.server.receive(submission.message) {
            Some(received) => received.map_err(|e| SubmitError::Invalid(e.to_string()))?,
            None => {
                return Err(SubmitError::Invalid(format!(
                    "{kind} does not answer step {}, which collects {}",
                    self.step,
                    S::COLLECTS
                )));
            }
        }
        // Only the keys of a DP task's training rounds carry a spend (the
        // wire refuses it on any other message).
        if let Some(spend) = submission.privacy_spend {
            context.metrics.set_epsilon_spent(member, spend.epsilon);
            context.privacy_spent.insert(member.to_owned(), spend);
        }
        Ok(())
    }
}
