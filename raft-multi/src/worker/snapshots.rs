//! Snapshots: saving the raft snapshot a leader serves, streaming the state machine
//! to a follower, and restoring one that arrives (on its own thread).

use raft::SnapshotStatus;
use raft_fsm::SnapshotMeta;
use raft_transport::OutgoingSnapshot;
use tokio::sync::mpsc::error::TryRecvError;

use super::Worker;
use crate::command::{answer, Command, Reply, SnapshotHeader};
use crate::error::{Error, SnapshotRejection};
use crate::peer::Peer;
use crate::snapshot::{self, FsmChunks, Restored};
use crate::GroupId;

/// Manual mode: a snapshot being received, restored on the worker's thread once its
/// stream has ended (so the caller's thread alone decides when things happen).
pub(crate) struct PendingRestore {
    group: GroupId,
    fsm: Box<dyn raft_fsm::StateMachine>,
    meta: SnapshotMeta,
    message: Box<raft::eraftpb::Message>,
    reply: Reply<()>,
    chunks: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, String>>,
    received: Vec<Result<bytes::Bytes, String>>,
}

impl PendingRestore {
    /// The worker stops: the sender learns the snapshot was not installed.
    pub(crate) fn abandon(self) {
        answer(self.reply, Err(Error::Stopped));
    }
}

impl Worker {
    /// Saves the raft snapshot a leader serves to followers that fell behind its
    /// compacted log (the state machine's data streams separately).
    pub(super) fn save_snapshot(&mut self, group: GroupId) {
        let Some(snapshot) = self.peers.get(&group).and_then(Peer::raft_snapshot) else {
            return;
        };
        if let Err(error) = self.engine.save_snapshot(group, &snapshot) {
            tracing::warn!(group, %error, "saving the raft snapshot failed");
        }
        if let Some(peer) = self.peers.get(&group) {
            if peer.node.raft.state == raft::StateRole::Leader {
                self.touch(group);
            }
        }
    }

    pub(super) fn snapshot_received(
        &mut self,
        group: GroupId,
        header: SnapshotHeader,
        chunks: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, String>>,
        reply: Reply<()>,
    ) {
        let reject = |reply: Reply<()>, reason| {
            answer(reply, Err(Error::SnapshotRejected { group, reason }))
        };
        let Some(peer) = self.peers.get_mut(&group) else {
            return answer(reply, Err(Error::GroupNotFound(group)));
        };
        let meta = header.message.get_snapshot().get_metadata();
        if header.fsm_index < meta.index {
            return reject(reply, SnapshotRejection::MalformedHeader);
        }
        if peer.already_has(meta.index) {
            // This replica committed past the snapshot (an earlier copy arrived, or the
            // log caught up) and the leader does not know it yet. Raft ignores such a
            // snapshot and answers with its commit index, which moves the leader on;
            // without that answer it would send the same snapshot forever. The
            // follower does hold the snapshot's state: the transfer succeeded.
            let metrics = std::sync::Arc::clone(&self.metrics);
            peer.step(*header.message, &metrics);
            self.touch(group);
            return answer(reply, Ok(()));
        }
        if !peer.is_snapshot_target(meta.index, header.message.term) {
            return reject(reply, SnapshotRejection::Stale);
        }
        let Some(fsm) = peer.fsm.take() else {
            return reject(reply, SnapshotRejection::Busy);
        };
        let fsm_meta = SnapshotMeta {
            index: header.fsm_index,
            term: header.fsm_term,
        };
        let message = header.message;
        if self.manual {
            self.restores.push(PendingRestore {
                group,
                fsm,
                meta: fsm_meta,
                message,
                reply,
                chunks,
                received: Vec::new(),
            });
            return;
        }
        let router = self.router.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("snapshot-restore-{group}"))
            .spawn(move || {
                let (fsm, outcome) = snapshot::restore(fsm, fsm_meta, chunks);
                let restored = Restored {
                    fsm,
                    outcome,
                    message,
                    reply,
                };
                router.send_to_owner(
                    group,
                    Command::RestoreDone {
                        group,
                        restored: Box::new(restored),
                    },
                );
            });
        if let Err(error) = spawned {
            // The closure (with the state machine) is lost only if the thread could not
            // start: stop the group rather than run it without its state.
            self.stop_group(group, Error::Storage(raft_storage::Error::from(error)));
        }
    }

    /// Manual mode: moves the chunks that arrived into each pending restore, and
    /// restores on this thread those whose stream has ended. True if any progressed.
    pub(super) fn poll_restores(&mut self) -> bool {
        if self.restores.is_empty() {
            return false;
        }
        let mut progressed = false;
        let mut finished = Vec::new();
        for (position, pending) in self.restores.iter_mut().enumerate() {
            loop {
                match pending.chunks.try_recv() {
                    Ok(chunk) => {
                        progressed = true;
                        pending.received.push(chunk);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        finished.push(position);
                        break;
                    }
                }
            }
        }
        for position in finished.into_iter().rev() {
            progressed = true;
            let pending = self.restores.remove(position);
            let PendingRestore {
                group,
                fsm,
                meta,
                message,
                reply,
                received,
                ..
            } = pending;
            let (fsm, outcome) = snapshot::restore_from(fsm, meta, received.into_iter());
            let restored = Restored {
                fsm,
                outcome,
                message,
                reply,
            };
            self.restore_done(group, restored);
        }
        progressed
    }

    pub(super) fn restore_done(&mut self, group: GroupId, restored: Restored) {
        let Restored {
            fsm,
            outcome,
            message,
            reply,
        } = restored;
        let Some(peer) = self.peers.get_mut(&group) else {
            return answer(reply, Err(Error::GroupNotFound(group)));
        };
        peer.fsm = Some(fsm);
        match outcome {
            Ok(()) => {
                self.metrics.add(&self.metrics.snapshots_received, 1);
                peer.step(*message, &self.metrics);
                answer(reply, Ok(()));
            }
            Err(error) => {
                tracing::warn!(group, %error, "snapshot restore failed");
                answer(
                    reply,
                    Err(Error::SnapshotRejected {
                        group,
                        reason: SnapshotRejection::RestoreFailed,
                    }),
                );
            }
        }
        self.touch(group);
    }

    /// Streams the state machine's snapshot to a follower that needs one.
    pub(super) fn send_snapshot(&mut self, group: GroupId, msg: raft::eraftpb::Message) {
        let to = msg.to;
        let Some(peer) = self.peers.get_mut(&group) else {
            return;
        };
        let source = match peer.fsm.as_ref().map(|f| f.snapshot()) {
            Some(Ok(source)) => source,
            Some(Err(error)) => {
                tracing::warn!(group, to, %error, "state machine snapshot failed");
                peer.node.report_snapshot(to, SnapshotStatus::Failure);
                return;
            }
            None => {
                peer.node.report_snapshot(to, SnapshotStatus::Failure);
                return;
            }
        };
        let meta = source.meta();
        let header = SnapshotHeader {
            fsm_index: meta.index,
            fsm_term: meta.term,
            message: Box::new(msg),
        };
        let snapshot = OutgoingSnapshot {
            group_id: group,
            header: header.encode(),
            chunks: Box::new(FsmChunks(source)),
        };
        let router = self.router.clone();
        self.metrics.add(&self.metrics.snapshots_sent, 1);
        self.transport.send_snapshot(
            to,
            snapshot,
            Box::new(move |outcome| {
                router.send_to_owner(
                    group,
                    Command::SnapshotSent {
                        group,
                        to,
                        ok: outcome.is_ok(),
                    },
                );
            }),
        );
    }
}
