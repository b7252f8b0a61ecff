//! Configuration of a partition machine.

/// How a partition lays out and bounds its log.
///
/// # Correctness
/// `segment_bytes` decides where segments roll, and retention deletes whole
/// segments; `max_batch_bytes` decides which appends are rejected. Every
/// replica of a partition must use the same values (they come from the
/// topic's configuration), or their logs would diverge. A restored snapshot
/// carries the sender's segment layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionConfig {
    /// Roll to a new segment when the active one would exceed this size.
    pub segment_bytes: u64,
    /// Largest accepted record batch (Kafka's `max.message.bytes`).
    pub max_batch_bytes: u64,
    /// Size of the chunks a snapshot is streamed in.
    pub snapshot_chunk_bytes: usize,
    /// Read and verify every frame of every segment on open, even what a
    /// valid index file or index journal vouches for (such frames are
    /// otherwise verified when fetched). The tail after the last journaled
    /// index entry is always verified.
    pub verify_on_open: bool,
}

impl Default for PartitionConfig {
    fn default() -> Self {
        PartitionConfig {
            segment_bytes: 64 * 1024 * 1024,
            max_batch_bytes: 8 * 1024 * 1024,
            snapshot_chunk_bytes: 1024 * 1024,
            verify_on_open: false,
        }
    }
}

impl PartitionConfig {
    /// Sets the segment size.
    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes.max(1);
        self
    }

    /// Sets the largest accepted batch.
    pub fn with_max_batch_bytes(mut self, bytes: u64) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// Verifies every segment on open (see [`PartitionConfig::verify_on_open`]).
    pub fn with_verify_on_open(mut self, verify: bool) -> Self {
        self.verify_on_open = verify;
        self
    }

    /// Sets the snapshot chunk size.
    pub fn with_snapshot_chunk_bytes(mut self, bytes: usize) -> Self {
        self.snapshot_chunk_bytes = bytes.max(1);
        self
    }
}
