//! What travels into a worker's mailbox, and the envelope of group messages on the wire.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Message};
use raft_transport::{NodeId, PeerState};
use tokio::sync::oneshot;

use crate::error::Result;
use crate::types::{GroupSpec, GroupStatus, MembershipChange};
use crate::GroupId;

/// Where a caller waits for its answer.
pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

/// Sends `value` to a waiter that may have given up (a dropped receiver is fine).
pub(crate) fn answer<T>(reply: Reply<T>, value: Result<T>) {
    let _ = reply.send(value);
}

/// A message from a peer node for one group.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A raft message.
    Raft(Box<Message>),
    /// The group's leader put the group to sleep at `term` with its log ending at
    /// `last_index`.
    Hibernate { term: u64, last_index: u64 },
}

/// Commands handled by a worker, in mailbox order.
pub(crate) enum Command {
    Inbound {
        from: NodeId,
        messages: Vec<(GroupId, Inbound)>,
    },
    Propose {
        group: GroupId,
        data: Vec<u8>,
        reply: Reply<Bytes>,
    },
    ReadIndex {
        group: GroupId,
        reply: Reply<u64>,
    },
    ChangeMembership {
        group: GroupId,
        changes: Vec<MembershipChange>,
        reply: Reply<ConfState>,
    },
    TransferLeader {
        group: GroupId,
        to: NodeId,
        reply: Reply<()>,
    },
    Campaign {
        group: GroupId,
        reply: Reply<()>,
    },
    Create {
        spec: Box<GroupSpec>,
        reply: Reply<()>,
    },
    Remove {
        group: GroupId,
        reply: Reply<()>,
    },
    Status {
        group: GroupId,
        reply: Reply<GroupStatus>,
    },
    AllStatus {
        reply: oneshot::Sender<Vec<GroupStatus>>,
    },
    Compact {
        group: GroupId,
    },
    Tick,
    PeerState {
        peer: NodeId,
        state: PeerState,
    },
    SnapshotSent {
        group: GroupId,
        to: NodeId,
        ok: bool,
    },
    SnapshotReceived {
        group: GroupId,
        header: SnapshotHeader,
        chunks: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
        reply: Reply<()>,
    },
    RestoreDone {
        group: GroupId,
        restored: Box<crate::snapshot::Restored>,
    },
    Shutdown,
}

const TAG_RAFT: u8 = 0;
const TAG_HIBERNATE: u8 = 1;

/// Encodes a raft message for the wire: a tag byte, then raft-rs's own protobuf bytes.
pub(crate) fn encode_raft(msg: &Message) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + msg.compute_size() as usize);
    out.put_u8(TAG_RAFT);
    // Writing a well-formed message into memory cannot fail.
    if let Ok(body) = msg.write_to_bytes() {
        out.extend_from_slice(&body);
    }
    out.freeze()
}

/// Encodes a hibernation notice.
pub(crate) fn encode_hibernate(term: u64, last_index: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(17);
    out.put_u8(TAG_HIBERNATE);
    out.put_u64_le(term);
    out.put_u64_le(last_index);
    out.freeze()
}

/// Decodes a group message payload; `None` for malformed input (counted by the caller).
pub(crate) fn decode(payload: &[u8]) -> Option<Inbound> {
    let (&tag, mut body) = payload.split_first()?;
    match tag {
        TAG_RAFT => Message::parse_from_bytes(body)
            .ok()
            .map(|m| Inbound::Raft(Box::new(m))),
        TAG_HIBERNATE if body.len() == 16 => {
            let term = body.get_u64_le();
            let last_index = body.get_u64_le();
            Some(Inbound::Hibernate { term, last_index })
        }
        _ => None,
    }
}

/// The header of a snapshot stream: the state machine's snapshot point and the raft
/// `MsgSnapshot` that carries the raft-level metadata.
#[derive(Debug)]
pub(crate) struct SnapshotHeader {
    pub fsm_index: u64,
    pub fsm_term: u64,
    pub message: Box<Message>,
}

impl SnapshotHeader {
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u64_le(self.fsm_index);
        out.put_u64_le(self.fsm_term);
        if let Ok(body) = self.message.write_to_bytes() {
            out.extend_from_slice(&body);
        }
        out.freeze()
    }

    pub(crate) fn decode(mut bytes: &[u8]) -> Option<SnapshotHeader> {
        if bytes.len() < 16 {
            return None;
        }
        let fsm_index = bytes.get_u64_le();
        let fsm_term = bytes.get_u64_le();
        let message = Message::parse_from_bytes(bytes).ok()?;
        Some(SnapshotHeader {
            fsm_index,
            fsm_term,
            message: Box::new(message),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::MessageType;

    #[test]
    fn envelopes_round_trip_and_reject_garbage() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgHeartbeat);
        m.to = 2;
        m.from = 1;
        m.term = 7;
        match decode(&encode_raft(&m)) {
            Some(Inbound::Raft(d)) => assert_eq!(*d, m),
            other => panic!("unexpected {other:?}"),
        }
        let mut append = Message::default();
        append.set_msg_type(MessageType::MsgAppend);
        append.to = 3;
        append.commit = 9;
        for index in 10..13u64 {
            append.entries.push(raft::eraftpb::Entry {
                index,
                term: 4,
                data: vec![index as u8; 100 * index as usize].into(),
                context: vec![1, 2, 3].into(),
                ..Default::default()
            });
        }
        let encoded = encode_raft(&append);
        assert_eq!(encoded.len(), 1 + append.compute_size() as usize);
        match decode(&encoded) {
            Some(Inbound::Raft(d)) => assert_eq!(*d, append),
            other => panic!("unexpected {other:?}"),
        }
        match decode(&encode_hibernate(5, 42)) {
            Some(Inbound::Hibernate { term, last_index }) => {
                assert_eq!((term, last_index), (5, 42))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(decode(&[]).is_none());
        assert!(decode(&[9, 1, 2]).is_none());
        assert!(decode(&[TAG_HIBERNATE, 1, 2]).is_none());
        assert!(decode(&[TAG_RAFT, 0xff, 0xff, 0xff]).is_none());
        let header = SnapshotHeader {
            fsm_index: 10,
            fsm_term: 3,
            message: Box::new(m.clone()),
        };
        let back = SnapshotHeader::decode(&header.encode()).unwrap();
        assert_eq!((back.fsm_index, back.fsm_term, *back.message), (10, 3, m));
        assert!(SnapshotHeader::decode(&[1, 2, 3]).is_none());
    }
}
