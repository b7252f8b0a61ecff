//! Commands from the mailbox, one at a time, between rounds.

use std::sync::Arc;

use raft::SnapshotStatus;

use super::room::Admitted;
use super::Worker;
use crate::command::{answer, Command, Inbound, Reply};
use crate::error::Error;
use crate::peer::Peer;
use crate::GroupId;

impl Worker {
    /// Handles one command; true on shutdown.
    pub(super) fn handle(&mut self, command: Command) -> bool {
        if let Some(reason) = &self.stopped {
            tracing::debug!(worker = self.index, %reason, "command refused: worker stopped");
            reject(command);
            return false;
        }
        let metrics = Arc::clone(&self.metrics);
        match command {
            Command::Inbound { from, messages } => {
                for (group, inbound) in messages {
                    let Some(peer) = self.peers.get_mut(&group) else {
                        metrics.add(&metrics.inbound_unknown_group, 1);
                        continue;
                    };
                    if peer.fsm.is_none() {
                        continue; // restoring a snapshot: raft retransmits later
                    }
                    match inbound {
                        Inbound::Raft(mut msg) => {
                            let admitted = self.room.reserve_append(
                                &self.engine,
                                &mut self.reserved,
                                &mut msg,
                            );
                            match admitted {
                                Admitted::All => {}
                                Admitted::Prefix => metrics.add(&metrics.appends_trimmed, 1),
                                Admitted::None => {
                                    // Like a lost message: the leader sends it again later.
                                    metrics.add(&metrics.inbound_dropped, 1);
                                    tracing::debug!(
                                        group,
                                        "append dropped: the write-ahead log is full"
                                    );
                                    continue;
                                }
                            }
                            peer.step(*msg, &metrics)
                        }
                        Inbound::Hibernate { term, last_index } => {
                            peer.hibernate_notice(from, term, last_index, &metrics)
                        }
                    }
                    self.touch(group);
                }
            }
            Command::Propose { group, data, reply } => match self.peers.get_mut(&group) {
                Some(_)
                    if !self.room.reserve_proposal(
                        &self.engine,
                        &mut self.reserved,
                        data.len(),
                    ) =>
                {
                    metrics.add(&metrics.proposals_rejected, 1);
                    let usage = self.engine.usage();
                    let (used, limit) = (usage.used, usage.limit);
                    answer(reply, Err(Error::StorageFull { group, used, limit }));
                }
                Some(peer) => {
                    peer.propose(data, reply, &metrics);
                    self.touch(group);
                }
                None => answer(reply, Err(Error::GroupNotFound(group))),
            },
            Command::ReadIndex { group, reply } => match self.peers.get_mut(&group) {
                Some(peer) => {
                    peer.read_index(reply, &metrics);
                    self.touch(group);
                }
                None => answer(reply, Err(Error::GroupNotFound(group))),
            },
            Command::ChangeMembership {
                group,
                changes,
                reply,
            } => match self.peers.get_mut(&group) {
                Some(peer) => {
                    peer.change_membership(changes, reply, &metrics);
                    self.touch(group);
                }
                None => answer(reply, Err(Error::GroupNotFound(group))),
            },
            Command::TransferLeader { group, to, reply } => match self.peers.get_mut(&group) {
                Some(peer) => {
                    peer.transfer_leader(to, reply, &metrics);
                    self.touch(group);
                }
                None => answer(reply, Err(Error::GroupNotFound(group))),
            },
            Command::Campaign { group, reply } => match self.peers.get_mut(&group) {
                Some(peer) => {
                    peer.campaign(reply, &metrics);
                    self.touch(group);
                }
                None => answer(reply, Err(Error::GroupNotFound(group))),
            },
            Command::Create { spec, reply } => self.create(*spec, reply),
            Command::Remove { group, reply } => self.remove(group, reply),
            Command::Status { group, reply } => {
                let status = self
                    .peers
                    .get(&group)
                    .map(Peer::status)
                    .ok_or(Error::GroupNotFound(group));
                answer(reply, status);
            }
            Command::AllStatus { reply } => {
                let _ = reply.send(self.peers.values().map(Peer::status).collect());
            }
            Command::Compact { group } => self.queue_compaction(group, false),
            Command::Tick => self.tick(),
            Command::PeerState { peer: node, state } => self.peer_state(node, state),
            Command::SnapshotSent { group, to, ok } => {
                if let Some(peer) = self.peers.get_mut(&group) {
                    let status = if ok {
                        SnapshotStatus::Finish
                    } else {
                        SnapshotStatus::Failure
                    };
                    peer.node.report_snapshot(to, status);
                    self.touch(group);
                }
            }
            Command::SnapshotReceived {
                group,
                header,
                chunks,
                reply,
            } => self.snapshot_received(group, header, chunks, reply),
            Command::RestoreDone { group, restored } => self.restore_done(group, *restored),
            Command::Shutdown => return true,
        }
        false
    }

    pub(super) fn create(&mut self, spec: crate::GroupSpec, reply: Reply<()>) {
        let group = spec.group_id;
        if self.peers.contains_key(&group) {
            return answer(reply, Err(Error::GroupExists(group)));
        }
        match Peer::open(&self.config, spec, &self.engine, &self.logger) {
            Ok(mut peer) => {
                peer.epoch = self.next_epoch;
                self.next_epoch += 1;
                self.peers.insert(group, peer);
                self.metrics.gauge(&self.metrics.groups, 1);
                self.touch(group);
                self.created.push(reply);
            }
            Err(error) => answer(reply, Err(error)),
        }
    }

    pub(super) fn remove(&mut self, group: GroupId, reply: Reply<()>) {
        let Some(mut peer) = self.peers.remove(&group) else {
            return answer(reply, Err(Error::GroupNotFound(group)));
        };
        peer.fail_all(|| Error::Unknown { group });
        self.forget(&peer);
        self.batch.remove_group(group);
        self.created.push(reply);
    }
}

/// Answers a command that will never run.
pub(super) fn reject(command: Command) {
    match command {
        Command::Propose { reply, .. } => answer(reply, Err(Error::Stopped)),
        Command::ReadIndex { reply, .. } => answer(reply, Err(Error::Stopped)),
        Command::ChangeMembership { reply, .. } => answer(reply, Err(Error::Stopped)),
        Command::TransferLeader { reply, .. }
        | Command::Campaign { reply, .. }
        | Command::Create { reply, .. }
        | Command::Remove { reply, .. } => answer(reply, Err(Error::Stopped)),
        Command::Status { reply, .. } => answer(reply, Err(Error::Stopped)),
        Command::SnapshotReceived { reply, .. } => answer(reply, Err(Error::Stopped)),
        Command::RestoreDone { restored, .. } => answer(restored.reply, Err(Error::Stopped)),
        Command::AllStatus { reply } => drop(reply),
        Command::Inbound { .. }
        | Command::Compact { .. }
        | Command::Tick
        | Command::PeerState { .. }
        | Command::SnapshotSent { .. }
        | Command::Shutdown => {}
    }
}
