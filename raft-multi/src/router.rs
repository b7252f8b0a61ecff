//! Routing commands to the worker that owns a group.

use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};

use crate::command::Command;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::GroupId;

/// The mailboxes of all workers. Cheap to clone; no lock: a group's owner is a pure
/// function of its id.
#[derive(Clone)]
pub(crate) struct Router {
    mailboxes: Arc<Vec<Sender<Command>>>,
    pub metrics: Arc<Metrics>,
}

impl Router {
    pub(crate) fn new(mailboxes: Vec<Sender<Command>>, metrics: Arc<Metrics>) -> Router {
        Router {
            mailboxes: Arc::new(mailboxes),
            metrics,
        }
    }

    pub(crate) fn workers(&self) -> usize {
        self.mailboxes.len()
    }

    /// The worker that owns `group`: a multiplicative hash spreads sequential ids.
    pub(crate) fn owner(&self, group: GroupId) -> usize {
        let mixed = group.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        (mixed % self.mailboxes.len() as u64) as usize
    }

    /// Queues a command for worker `index` without blocking.
    ///
    /// # Errors
    /// `Busy` when the mailbox is full, `Stopped` when the worker is gone.
    pub(crate) fn send(&self, index: usize, command: Command, group: GroupId) -> Result<()> {
        let Some(mailbox) = self.mailboxes.get(index) else {
            return Err(Error::Stopped);
        };
        match mailbox.try_send(command) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Error::Busy { group }),
            Err(TrySendError::Disconnected(_)) => Err(Error::Stopped),
        }
    }

    /// Queues a command for the owner of `group`, for internal notices whose loss only
    /// delays work (raft retries); a refusal is counted.
    pub(crate) fn send_to_owner(&self, group: GroupId, command: Command) {
        if self.send(self.owner(group), command, group).is_err() {
            self.metrics.add(&self.metrics.inbound_dropped, 1);
        }
    }

    /// Sends a command to every worker, waiting for room: used for ticks, peer state
    /// and shutdown, which must not be lost.
    pub(crate) fn broadcast(&self, make: impl Fn() -> Command) {
        for mailbox in self.mailboxes.iter() {
            let _ = mailbox.send(make());
        }
    }
}
