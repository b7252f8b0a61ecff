//! Messages leaving a worker: gathered per destination node so that each peer gets
//! one transport frame per round, whatever the number of groups.

use std::collections::BTreeMap;
use std::sync::Arc;

use raft::eraftpb::{Message, MessageType};
use raft_transport::{GroupMessage, NodeId, Transport};

use crate::command::{encode_hibernate, encode_raft};
use crate::metrics::Metrics;
use crate::GroupId;

/// Per-destination batches of one round.
#[derive(Default)]
pub(crate) struct Outbox {
    batches: BTreeMap<NodeId, Vec<GroupMessage>>,
    /// `MsgSnapshot`s: they travel as snapshot streams, not in batches.
    snapshots: Vec<(GroupId, Message)>,
}

impl Outbox {
    pub(crate) fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.snapshots.is_empty()
    }

    /// Queues raft messages of `group`.
    pub(crate) fn push_raft(&mut self, group: GroupId, messages: Vec<Message>) {
        for msg in messages {
            if msg.get_msg_type() == MessageType::MsgSnapshot {
                self.snapshots.push((group, msg));
                continue;
            }
            let payload = encode_raft(&msg);
            self.batches.entry(msg.to).or_default().push(GroupMessage {
                group_id: group,
                payload,
            });
        }
    }

    /// Queues a hibernation notice from the leader of `group` to `to`.
    pub(crate) fn push_hibernate(
        &mut self,
        group: GroupId,
        to: NodeId,
        term: u64,
        last_index: u64,
    ) {
        let payload = encode_hibernate(term, last_index);
        self.batches.entry(to).or_default().push(GroupMessage {
            group_id: group,
            payload,
        });
    }

    /// The snapshots to stream, taken out of the outbox.
    pub(crate) fn take_snapshots(&mut self) -> Vec<(GroupId, Message)> {
        std::mem::take(&mut self.snapshots)
    }

    /// Sends one frame per destination. Returns the `(group, node)` pairs that could
    /// not be queued, so their groups can `report_unreachable`.
    pub(crate) fn flush(
        &mut self,
        transport: &Arc<dyn Transport>,
        metrics: &Metrics,
    ) -> Vec<(GroupId, NodeId)> {
        let mut unreachable = Vec::new();
        for (to, batch) in std::mem::take(&mut self.batches) {
            let count = batch.len() as u64;
            let groups: Vec<GroupId> = batch.iter().map(|m| m.group_id).collect();
            match transport.send(to, batch) {
                Ok(()) => {
                    metrics.add(&metrics.frames_sent, 1);
                    metrics.add(&metrics.messages_sent, count);
                }
                Err(_) => {
                    metrics.add(&metrics.messages_dropped, count);
                    unreachable.extend(groups.into_iter().map(|g| (g, to)));
                }
            }
        }
        unreachable.sort_unstable();
        unreachable.dedup();
        unreachable
    }
}
