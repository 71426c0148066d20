//! Whose link the others confirmed, in an end-to-end encrypted room.
//!
//! The server never sees a key, so it cannot tell a participant with the
//! meeting's link from one with a modified client that only says it has one
//! (`"e2ee": true`). The participants can: a client whose key exchange with
//! a peer checked out under the link's secret says so (`e2ee_confirm`). A
//! member is *confirmed* once someone else in the meeting has confirmed it
//! (that stands after the confirmer left: ids are never reused), or while it
//! is alone (nobody to ask). Only a confirmed member may moderate
//! or be made moderator, a moderator hand-over prefers a confirmed member,
//! and an unconfirmed member's key exchange is relayed up to
//! [`UNCONFIRMED_E2EE_MESSAGES`] only: a joiner needs a handful before its
//! first peer confirms it, a stranger without the key gets no further.
//! Two strangers confirming each other pass; docs/e2ee.md says so.

use std::collections::HashMap;

use crate::ids::ParticipantId;

/// Key exchange messages relayed for a member nobody confirmed yet.
pub const UNCONFIRMED_E2EE_MESSAGES: u16 = 64;

#[derive(Default)]
pub(super) struct Confirmations {
    /// Who confirmed each member.
    by: HashMap<ParticipantId, Vec<ParticipantId>>,
    /// Key exchange messages relayed for each member while unconfirmed.
    unconfirmed_sent: HashMap<ParticipantId, u16>,
}

impl Confirmations {
    /// `by` says `of`'s link checked out for it.
    pub fn confirm(&mut self, by: ParticipantId, of: ParticipantId) {
        let list = self.by.entry(of).or_default();
        if !list.contains(&by) {
            list.push(by);
        }
    }

    /// A member left: what is known of it goes (its confirmations of the
    /// others stand).
    pub fn forget(&mut self, pid: ParticipantId) {
        self.by.remove(&pid);
        self.unconfirmed_sent.remove(&pid);
    }

    /// Whether `pid` is confirmed, among `members` (every member's id).
    pub fn is_confirmed(&self, pid: ParticipantId, members: &[ParticipantId]) -> bool {
        members.iter().all(|m| *m == pid) || self.by.get(&pid).is_some_and(|list| list.iter().any(|b| *b != pid))
    }

    /// Counts one key exchange message of unconfirmed `pid`; false once
    /// it has sent its budget.
    pub fn take_unconfirmed(&mut self, pid: ParticipantId) -> bool {
        let sent = self.unconfirmed_sent.entry(pid).or_insert(0);
        if *sent >= UNCONFIRMED_E2EE_MESSAGES {
            return false;
        }
        *sent += 1;
        true
    }
}
