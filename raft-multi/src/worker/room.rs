//! Room in the write-ahead log under a size limit, shared by every worker of a node.
//!
//! A round accepts proposals and inbound appends one command at a time, but the engine
//! learns their bytes only at the round's write, and every worker of the node writes to
//! the same engine. Checking each command against [`LogEngine::usage`] alone lets a
//! round (or two workers at once) accept more than is left, and a write past the
//! engine's hard limit stops the worker for every group it drives. So every accepted
//! entry reserves its bytes here until its worker's write is done: a check sees what
//! was written plus what every worker has accepted but not yet written. Concurrent
//! workers can only refuse too early, never take too much.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use raft::eraftpb::{Entry, Message, MessageType};
use raft_storage::{LogEngine, NEAR_FULL_DIVISOR};

/// The share of the log's size limit a follower keeps free for its own records (hard
/// states, compactions) when it takes other leaders' entries. Proposals keep more
/// ([`NEAR_FULL_DIVISOR`]): what they leave is for entries accepted earlier, raft's own
/// records (hard states, a new leader's empty entry) and replicas of other leaders'
/// entries.
pub(crate) const FOLLOWER_RESERVE_DIVISOR: u64 = 16;

/// Bytes an entry's record takes in the log at most, beyond its data and context: the
/// term and length before it and the protobuf fields around them.
const ENTRY_OVERHEAD: u64 = 12 + 32;

/// Bytes one append record takes in the log beyond its entries: the record header, the
/// first index and the count, and a share of the frame header.
const RECORD_OVERHEAD: u64 = 64;

/// The node-wide count of bytes accepted but not yet written. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Room {
    unwritten: Arc<AtomicU64>,
    /// Something was refused for lack of room since maintenance last looked.
    pressure: Arc<AtomicBool>,
}

/// What one worker reserved since its last write.
#[derive(Debug, Default)]
pub(crate) struct Reserved(u64);

/// What became of an append under the size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// Every entry fits (or the message appends nothing).
    All,
    /// Only the first entries fit: the message was cut to them.
    Prefix,
    /// Not even the first entry fits: drop the message.
    None,
}

/// Attempts at reserving against other workers' concurrent reservations before giving up
/// (refusing is always safe: raft resends, a producer retries).
const RESERVE_ATTEMPTS: usize = 4;

impl Room {
    /// Reserves room for a proposal of `data_len` bytes, keeping an eighth of the limit
    /// free. False when it does not fit: the proposal gets `StorageFull`.
    pub(crate) fn reserve_proposal(
        &self,
        engine: &LogEngine,
        reserved: &mut Reserved,
        data_len: usize,
    ) -> bool {
        let size = data_len as u64 + ENTRY_OVERHEAD;
        self.reserve_prefix(engine, reserved, &[size], NEAR_FULL_DIVISOR) == 1
    }

    /// Reserves room for the entries `msg` appends, keeping a sixteenth of the limit free.
    /// When only the first entries fit the message is cut to them: raft commits no further
    /// than the last entry it appended, and the leader sends the rest again. A leader
    /// catching up a follower sends appends of up to `max_size_per_msg`, which may be more
    /// than a small log can ever hold at once; taking a prefix is how such a follower
    /// makes progress.
    pub(crate) fn reserve_append(
        &self,
        engine: &LogEngine,
        reserved: &mut Reserved,
        msg: &mut Message,
    ) -> Admitted {
        if msg.get_msg_type() != MessageType::MsgAppend
            || msg.entries.is_empty()
            || engine.usage().limit == 0
        {
            return Admitted::All;
        }
        let sizes: Vec<u64> = msg.entries.iter().map(entry_bytes).collect();
        let count = self.reserve_prefix(engine, reserved, &sizes, FOLLOWER_RESERVE_DIVISOR);
        if count == sizes.len() {
            Admitted::All
        } else if count == 0 {
            Admitted::None
        } else {
            msg.entries.truncate(count);
            Admitted::Prefix
        }
    }

    /// Reserves room for the longest prefix of entries of `sizes` bytes that leaves
    /// `limit / divisor` free, counting what every worker has reserved; returns its length.
    fn reserve_prefix(
        &self,
        engine: &LogEngine,
        reserved: &mut Reserved,
        sizes: &[u64],
        divisor: u64,
    ) -> usize {
        let usage = engine.usage();
        if usage.limit == 0 {
            return sizes.len();
        }
        let free = usage
            .limit
            .saturating_sub(usage.limit / divisor)
            .saturating_sub(usage.used);
        for _ in 0..RESERVE_ATTEMPTS {
            let unwritten = self.unwritten.load(Ordering::Acquire);
            let (count, bytes) = prefix_within(sizes, free.saturating_sub(unwritten));
            if count == 0 {
                break;
            }
            // Only if no other worker reserved meanwhile: both see each other's bytes.
            let swapped = self.unwritten.compare_exchange(
                unwritten,
                unwritten + bytes,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            if swapped.is_ok() {
                reserved.0 += bytes;
                if count < sizes.len() {
                    self.pressure.store(true, Ordering::Release);
                }
                return count;
            }
        }
        self.pressure.store(true, Ordering::Release);
        0
    }

    /// Gives back what a worker reserved, once its round's write is done (the engine's
    /// usage counts those bytes now) or failed.
    pub(crate) fn release(&self, reserved: &mut Reserved) {
        let bytes = std::mem::take(&mut reserved.0);
        if bytes > 0 {
            self.unwritten.fetch_sub(bytes, Ordering::AcqRel);
        }
    }

    /// True (once) when a proposal or an append was refused for lack of room since the
    /// last call: maintenance should compact and purge now, not at its next period.
    pub(crate) fn take_pressure(&self) -> bool {
        self.pressure.swap(false, Ordering::AcqRel)
    }

    /// Bytes accepted by every worker and not yet written.
    #[cfg(test)]
    fn unwritten(&self) -> u64 {
        self.unwritten.load(Ordering::Acquire)
    }
}

/// The longest prefix of `sizes` whose bytes, with one record header, fit in `room`:
/// its length and its bytes (header included).
fn prefix_within(sizes: &[u64], room: u64) -> (usize, u64) {
    let mut bytes = RECORD_OVERHEAD;
    let mut count = 0;
    for &size in sizes {
        if bytes + size > room {
            break;
        }
        bytes += size;
        count += 1;
    }
    (count, bytes)
}

/// The most bytes `entry` takes in the log.
fn entry_bytes(entry: &Entry) -> u64 {
    (entry.data.len() + entry.context.len()) as u64 + ENTRY_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_storage::EngineConfig;

    fn limited(limit: u64) -> (tempfile::TempDir, LogEngine) {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = EngineConfig::new(dir.path())
            .segment_size(16 * 1024)
            .max_log_bytes(limit);
        let engine = LogEngine::open(config).expect("open engine");
        (dir, engine)
    }

    fn append(entries: usize, data: usize) -> Message {
        let mut msg = Message::default();
        msg.set_msg_type(MessageType::MsgAppend);
        for i in 0..entries {
            msg.entries.push(Entry {
                index: i as u64 + 1,
                term: 1,
                data: vec![7u8; data].into(),
                ..Default::default()
            });
        }
        msg
    }

    fn append_bytes(msg: &Message) -> u64 {
        msg.entries.iter().map(entry_bytes).sum::<u64>() + RECORD_OVERHEAD
    }

    #[test]
    fn appends_in_one_round_add_up_until_the_reserve() {
        let limit = 256 * 1024;
        let (_dir, engine) = limited(limit);
        let room = Room::default();
        let mut reserved = Reserved::default();
        let msg = append(4, 1000);
        let mut accepted = 0u64;
        loop {
            let mut copy = msg.clone();
            match room.reserve_append(&engine, &mut reserved, &mut copy) {
                Admitted::All => accepted += 1,
                Admitted::Prefix => {
                    assert!(!copy.entries.is_empty() && copy.entries.len() < 4);
                    assert!(copy
                        .entries
                        .iter()
                        .zip(msg.entries.iter())
                        .all(|(a, b)| a == b));
                }
                Admitted::None => break,
            }
            assert!(accepted < 1000, "never refused");
        }
        // Each check alone would pass (nothing was written): only the reservations stop it.
        assert!(engine
            .usage()
            .has_room(append_bytes(&msg), limit / FOLLOWER_RESERVE_DIVISOR));
        let taken = room.unwritten();
        assert!(taken + limit / FOLLOWER_RESERVE_DIVISOR <= limit, "{taken}");
        assert!(
            taken + append_bytes(&append(1, 1000)) + limit / FOLLOWER_RESERVE_DIVISOR > limit,
            "refused too early: {taken}"
        );
        room.release(&mut reserved);
        assert_eq!(room.unwritten(), 0);
        assert!(room.take_pressure(), "a refusal asks for maintenance");
        assert!(!room.take_pressure(), "once");
        let mut again = msg.clone();
        assert_eq!(
            room.reserve_append(&engine, &mut reserved, &mut again),
            Admitted::All
        );
    }

    #[test]
    fn an_append_larger_than_the_log_is_cut_to_what_fits() {
        // A leader catching up a follower sends up to max_size_per_msg (1 MiB) at once: a
        // follower with a 256 KiB log must take a prefix, or it would drop the same
        // message forever.
        let limit = 256 * 1024;
        let (_dir, engine) = limited(limit);
        let room = Room::default();
        let mut reserved = Reserved::default();
        let mut msg = append(256, 4000);
        assert_eq!(
            room.reserve_append(&engine, &mut reserved, &mut msg),
            Admitted::Prefix
        );
        let kept = msg.entries.len();
        assert!(kept > 40 && kept < 64, "{kept} entries kept");
        assert_eq!(msg.entries[0].index, 1);
        assert_eq!(msg.entries[kept - 1].index, kept as u64);
        assert_eq!(room.unwritten(), append_bytes(&msg));
        assert!(room.take_pressure());
    }

    #[test]
    fn workers_share_the_room() {
        let limit = 128 * 1024;
        let (_dir, engine) = limited(limit);
        let room = Room::default();
        let (mut a, mut b) = (Reserved::default(), Reserved::default());
        let mut accepted = 0;
        for turn in 0..10_000 {
            let reserved = if turn % 2 == 0 { &mut a } else { &mut b };
            if !room.reserve_proposal(&engine, reserved, 900) {
                break;
            }
            accepted += 1;
        }
        let total = a.0 + b.0;
        assert!(accepted > 10, "{accepted}");
        assert_eq!(room.unwritten(), total);
        assert!(total + limit / NEAR_FULL_DIVISOR <= limit, "{total}");
        room.release(&mut a);
        assert_eq!(room.unwritten(), b.0);
    }

    #[test]
    fn racing_workers_never_reserve_past_the_limit() {
        let limit = 1 << 20;
        let (_dir, engine) = limited(limit);
        let room = Room::default();
        let totals: Vec<u64> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let mut reserved = Reserved::default();
                        // Bounded: the room runs out long before.
                        for _ in 0..100_000 {
                            let mut msg = append(3, 500);
                            let _ = room.reserve_append(&engine, &mut reserved, &mut msg);
                            let _ = room.reserve_proposal(&engine, &mut reserved, 700);
                        }
                        reserved.0
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("worker thread"))
                .collect()
        });
        let total: u64 = totals.iter().sum();
        assert_eq!(room.unwritten(), total);
        assert!(total + limit / FOLLOWER_RESERVE_DIVISOR <= limit, "{total}");
    }

    #[test]
    fn proposals_keep_more_free_than_appends() {
        let limit = 64 * 1024;
        let (_dir, engine) = limited(limit);
        let room = Room::default();
        let mut reserved = Reserved::default();
        while room.reserve_proposal(&engine, &mut reserved, 1000) {}
        // A follower may still take a replica's entries where proposals are refused.
        assert_eq!(
            room.reserve_append(&engine, &mut reserved, &mut append(1, 1000)),
            Admitted::All
        );
    }

    #[test]
    fn no_limit_takes_everything_and_reserves_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = LogEngine::open(EngineConfig::new(dir.path())).expect("open engine");
        let room = Room::default();
        let mut reserved = Reserved::default();
        for _ in 0..100 {
            let mut msg = append(100, 100_000);
            assert_eq!(
                room.reserve_append(&engine, &mut reserved, &mut msg),
                Admitted::All
            );
            assert_eq!(msg.entries.len(), 100);
        }
        assert_eq!(room.unwritten(), 0);
        assert!(!room.take_pressure());
    }

    #[test]
    fn other_messages_always_pass() {
        let (_dir, engine) = limited(64 * 1024);
        let room = Room::default();
        let mut reserved = Reserved::default();
        let mut heartbeat = append(3, 100_000);
        heartbeat.set_msg_type(MessageType::MsgHeartbeat);
        assert_eq!(
            room.reserve_append(&engine, &mut reserved, &mut heartbeat),
            Admitted::All
        );
        assert_eq!(heartbeat.entries.len(), 3);
        assert_eq!(
            room.reserve_append(&engine, &mut reserved, &mut append(0, 0)),
            Admitted::All
        );
        assert_eq!(room.unwritten(), 0);
    }
}
