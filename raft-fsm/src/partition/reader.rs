//! [`PartitionReader`]: the read side of a partition, shared with apply.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::watch;

use super::epochs::LeaderEpochs;
use super::fetch::{EpochEndOffset, FetchResult, ListedOffset, OffsetSpec};
use super::segment::Segment;
use crate::error::PartitionError;

/// What readers see of the log; changed by apply under the write lock.
#[derive(Debug)]
pub(crate) struct LogView {
    /// Segments, oldest first; the last one is active.
    pub(crate) segments: Vec<Arc<Segment>>,
    /// The next offset to assign: the high watermark.
    pub(crate) next_offset: u64,
    /// The log start offset.
    pub(crate) log_start_offset: u64,
    /// The leader-epoch history.
    pub(crate) epochs: LeaderEpochs,
}

/// State shared by the machine and its readers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) view: RwLock<LogView>,
    pub(crate) high_watermark: watch::Sender<u64>,
    pub(crate) rejected_commands: AtomicU64,
    pub(crate) duplicate_batches: AtomicU64,
}

impl Shared {
    pub(crate) fn new(view: LogView) -> Arc<Self> {
        let (high_watermark, _) = watch::channel(view.next_offset);
        Arc::new(Shared {
            view: RwLock::new(view),
            high_watermark,
            rejected_commands: AtomicU64::new(0),
            duplicate_batches: AtomicU64::new(0),
        })
    }
}

/// Counters of a partition machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionStats {
    /// Commands rejected with a [`PartitionError`] (bad input included).
    pub rejected_commands: u64,
    /// Idempotent retries answered with their original offsets.
    pub duplicate_batches: u64,
}

/// Reads a partition: fetch, list offsets, leader epochs, long-poll.
///
/// Cheap to clone, `Send + Sync`; reads never go through raft and never
/// return anything beyond the high watermark (every applied record is
/// committed, so the high watermark is the next offset to assign).
#[derive(Debug, Clone)]
pub struct PartitionReader {
    shared: Arc<Shared>,
}

impl PartitionReader {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        PartitionReader { shared }
    }

    /// The high watermark: the offset after the last committed record.
    pub fn high_watermark(&self) -> u64 {
        self.shared.view.read().next_offset
    }

    /// The log start offset.
    pub fn log_start_offset(&self) -> u64 {
        self.shared.view.read().log_start_offset
    }

    /// The current leader epoch (raft term), if any entry was applied.
    pub fn leader_epoch(&self) -> Option<u64> {
        self.shared.view.read().epochs.current()
    }

    /// Reads batches from `offset` on, up to `max_bytes` of records; the
    /// first batch is returned whole even if it is larger, as in Kafka.
    ///
    /// # Errors
    /// [`PartitionError::OffsetOutOfRange`] outside
    /// `[log_start_offset, high_watermark]`; storage errors.
    pub fn fetch(&self, offset: u64, max_bytes: usize) -> Result<FetchResult, PartitionError> {
        let (segments, high_watermark, log_start_offset) = {
            let view = self.shared.view.read();
            let (hw, start) = (view.next_offset, view.log_start_offset);
            if offset < start || offset > hw {
                return Err(PartitionError::OffsetOutOfRange {
                    offset,
                    log_start_offset: start,
                    high_watermark: hw,
                });
            }
            let first = view
                .segments
                .partition_point(|s| s.base_offset() <= offset)
                .saturating_sub(1);
            let segments: Vec<Arc<Segment>> = if offset == hw {
                Vec::new()
            } else {
                view.segments[first..].to_vec()
            };
            (segments, hw, start)
        };
        // Files are read without holding the view lock: apply goes on.
        let mut result = FetchResult {
            batches: Vec::new(),
            high_watermark,
            log_start_offset,
        };
        let mut used = 0usize;
        for segment in segments {
            if segment.base_offset() >= high_watermark
                || (used >= max_bytes && !result.batches.is_empty())
            {
                break;
            }
            let (now_used, stopped) = segment.read_batches(
                offset,
                high_watermark,
                max_bytes,
                used,
                &mut result.batches,
            )?;
            used = now_used;
            // A later segment may only continue a read that reached this one's end.
            if stopped {
                break;
            }
        }
        Ok(result)
    }

    /// Kafka ListOffsets.
    ///
    /// # Errors
    /// Storage errors while searching by timestamp.
    pub fn list_offsets(&self, spec: OffsetSpec) -> Result<ListedOffset, PartitionError> {
        let (segments, start, hw) = {
            let view = self.shared.view.read();
            match spec {
                OffsetSpec::Earliest | OffsetSpec::Latest => {
                    let offset = if spec == OffsetSpec::Earliest {
                        view.log_start_offset
                    } else {
                        view.next_offset
                    };
                    return Ok(ListedOffset {
                        offset: Some(offset),
                        timestamp: -1,
                        leader_epoch: view.epochs.current(),
                    });
                }
                OffsetSpec::Timestamp(_) => (
                    view.segments.clone(),
                    view.log_start_offset,
                    view.next_offset,
                ),
            }
        };
        let OffsetSpec::Timestamp(timestamp) = spec else {
            return Ok(ListedOffset {
                offset: None,
                timestamp: -1,
                leader_epoch: None,
            });
        };
        for segment in segments {
            if segment.next_offset() <= start {
                continue;
            }
            if let Some(batch) = segment.find_timestamp(timestamp, start, hw)? {
                return Ok(ListedOffset {
                    offset: Some(batch.base_offset.max(start)),
                    timestamp: batch.max_timestamp,
                    leader_epoch: Some(batch.leader_epoch),
                });
            }
        }
        Ok(ListedOffset {
            offset: None,
            timestamp: -1,
            leader_epoch: None,
        })
    }

    /// Kafka OffsetForLeaderEpoch: the largest epoch not greater than
    /// `epoch` and its end offset; `None` if `epoch` predates the history.
    pub fn offset_for_leader_epoch(&self, epoch: u64) -> Option<EpochEndOffset> {
        let view = self.shared.view.read();
        view.epochs.end_offset_for(epoch, view.next_offset)
    }

    /// A receiver of high-watermark changes (for long-poll fetch), holding the
    /// current high watermark.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        // Applies send to the channel only while it has receivers, under the view's
        // lock: subscribing under that lock and bringing the channel up to the view
        // leaves no apply in between unseen.
        let view = self.shared.view.read();
        let receiver = self.shared.high_watermark.subscribe();
        let current = view.next_offset;
        self.shared.high_watermark.send_if_modified(|hw| {
            let stale = *hw != current;
            *hw = current;
            stale
        });
        receiver
    }

    /// Waits until the high watermark passes `offset` (a record at `offset`
    /// is readable) and returns it.
    ///
    /// # Errors
    /// [`PartitionError::WaitTimeout`] if `timeout` elapses first.
    pub async fn wait_for(&self, offset: u64, timeout: Duration) -> Result<u64, PartitionError> {
        let mut receiver = self.subscribe();
        let waited = tokio::time::timeout(timeout, receiver.wait_for(|hw| *hw > offset)).await;
        match waited {
            Ok(Ok(hw)) => Ok(*hw),
            // The sender lives as long as this reader: only the timeout ends the wait.
            Ok(Err(_)) | Err(_) => Err(PartitionError::WaitTimeout { offset }),
        }
    }

    /// Counters of the machine.
    pub fn stats(&self) -> PartitionStats {
        PartitionStats {
            rejected_commands: self.shared.rejected_commands.load(Ordering::Relaxed),
            duplicate_batches: self.shared.duplicate_batches.load(Ordering::Relaxed),
        }
    }
}
