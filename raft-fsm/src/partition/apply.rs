//! The command handlers of [`PartitionStateMachine`]: append, DeleteRecords,
//! retention. Every decision depends only on the state and the command.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::command::{
    AppendCommand, DeleteRecordsCommand, PartitionCommand, PartitionOp, RetentionCommand,
};
use super::frame::{self, FRAME_HEADER};
use super::machine::PartitionStateMachine;
use super::producer::{last_sequence, ProducerBatch, SequenceCheck};
use super::reader::LogView;
use super::response::{
    AppendResult, DeleteRecordsResult, PartitionOutcome, PartitionResponse, RetentionResult,
};
use super::segment::Segment;
use crate::error::{FsmError, InvalidRecordReason, PartitionError};

/// A command's outcome: `Err` inside is a deterministic rejection.
type Outcome = Result<PartitionOutcome, PartitionError>;

impl PartitionStateMachine {
    /// Applies one encoded command; only I/O failures are `Err`.
    pub(crate) fn apply_command(&mut self, data: &[u8], term: u64) -> Result<Bytes, FsmError> {
        let outcome = match PartitionCommand::decode_checked(data) {
            Ok(PartitionOp::Append(append)) => self.append(append, term)?,
            Ok(PartitionOp::DeleteRecords(delete)) => self.delete_records(delete),
            Ok(PartitionOp::ApplyRetention(retention)) => self.retention(retention)?,
            Err(error) => Err(error),
        };
        Ok(match outcome {
            Ok(outcome) => PartitionResponse::encode_outcome(outcome),
            Err(error) => {
                self.shared
                    .rejected_commands
                    .fetch_add(1, Ordering::Relaxed);
                PartitionResponse::encode_error(&error)
            }
        })
    }

    fn append(&mut self, append: AppendCommand, term: u64) -> Result<Outcome, FsmError> {
        let count = append.record_count;
        if append.records.is_empty() || count == 0 {
            return Ok(Err(PartitionError::InvalidRecord {
                reason: InvalidRecordReason::Empty,
            }));
        }
        let size = append.records.len() as u64;
        // Frames carry a u32 length: larger batches never fit, whatever the config.
        let max = self
            .config
            .max_batch_bytes
            .min(u64::from(u32::MAX) - FRAME_HEADER as u64);
        if size > max {
            return Ok(Err(PartitionError::MessageTooLarge { size, max }));
        }
        if let Some(producer) = append.producer {
            let check = self.producers.check(
                producer.producer_id,
                producer.producer_epoch,
                producer.base_sequence,
                count,
            );
            match check {
                Ok(SequenceCheck::Append) => {}
                Ok(SequenceCheck::Duplicate(batch)) => {
                    self.shared
                        .duplicate_batches
                        .fetch_add(1, Ordering::Relaxed);
                    return Ok(Ok(PartitionOutcome::Append(AppendResult {
                        base_offset: batch.base_offset,
                        last_offset: batch.last_offset,
                        log_append_time: batch.log_append_time,
                        log_start_offset: self.log_start_offset,
                        duplicate: true,
                    })));
                }
                Err(error) => return Ok(Err(error)),
            }
        }
        let base_offset = self.next_offset;
        let next_offset = base_offset + u64::from(count);
        let header = frame::build(
            base_offset,
            count,
            append.max_timestamp,
            append.append_time_ms,
            term,
            &append.records,
        );
        let active_len = self.active.len();
        if active_len > 0 && active_len + header.frame_len() as u64 > self.config.segment_bytes {
            let rolled = self.new_segment(self.generation, base_offset)?;
            self.shared.view.write().segments.push(Arc::clone(&rolled));
            self.active = rolled;
        }
        self.active.append(&header, &append.records)?;
        self.next_offset = next_offset;
        {
            let mut view = self.shared.view.write();
            view.next_offset = next_offset;
            // Waking waiters costs a lock per shard of the channel even when none wait,
            // on every applied batch: send only to receivers. One subscribing now has
            // to take the view's lock first and catches the channel up with it.
            if self.shared.high_watermark.receiver_count() > 0 {
                self.shared.high_watermark.send_replace(next_offset);
            }
        }
        if let Some(producer) = append.producer {
            let batch = ProducerBatch {
                first_sequence: producer.base_sequence,
                last_sequence: last_sequence(producer.base_sequence, count),
                base_offset,
                last_offset: next_offset - 1,
                log_append_time: append.append_time_ms,
            };
            self.producers
                .record(producer.producer_id, producer.producer_epoch, batch);
        }
        Ok(Ok(PartitionOutcome::Append(AppendResult {
            base_offset,
            last_offset: next_offset - 1,
            log_append_time: append.append_time_ms,
            log_start_offset: self.log_start_offset,
            duplicate: false,
        })))
    }

    fn delete_records(&mut self, delete: DeleteRecordsCommand) -> Outcome {
        if delete.offset > self.next_offset {
            return Err(PartitionError::OffsetOutOfRange {
                offset: delete.offset,
                log_start_offset: self.log_start_offset,
                high_watermark: self.next_offset,
            });
        }
        if delete.offset > self.log_start_offset {
            let mut view = self.shared.view.write();
            view.log_start_offset = delete.offset;
            // Whole segments below the new start go; the active one stays.
            while view.segments.len() > 1 && view.segments[0].next_offset() <= delete.offset {
                let removed = view.segments.remove(0);
                self.pending_deletes.push(removed);
            }
            view.epochs.trim_to(delete.offset);
            self.log_start_offset = delete.offset;
        }
        Ok(PartitionOutcome::DeleteRecords(DeleteRecordsResult {
            low_watermark: self.log_start_offset,
        }))
    }

    fn retention(&mut self, retention: RetentionCommand) -> Result<Outcome, FsmError> {
        let cutoff = retention
            .retention_ms
            .map(|ms| retention.now_ms.saturating_sub(ms.max(0)));
        let expired = |segment: &Segment| {
            cutoff.is_some_and(|c| segment.len() > 0 && segment.max_timestamp() < c)
        };
        // Every record expired: roll so the active segment can go too (as Kafka does).
        let all_expired = self.shared.view.read().segments.iter().all(|s| expired(s));
        if all_expired {
            let rolled = self.new_segment(self.generation, self.next_offset)?;
            self.shared.view.write().segments.push(Arc::clone(&rolled));
            self.active = rolled;
        }
        let shared = Arc::clone(&self.shared);
        let mut view = shared.view.write();
        let mut deleted = 0u64;
        while view.segments.len() > 1 && expired(&view.segments[0]) {
            self.pending_deletes.push(view.segments.remove(0));
            deleted += 1;
        }
        if let Some(limit) = retention.retention_bytes {
            let mut total: u64 = view.segments.iter().map(|s| s.len()).sum();
            while view.segments.len() > 1 && total.saturating_sub(limit) >= view.segments[0].len() {
                total -= view.segments[0].len();
                self.pending_deletes.push(view.segments.remove(0));
                deleted += 1;
            }
        }
        if deleted > 0 {
            self.advance_log_start(&mut view);
        }
        drop(view);
        let producers_expired = match retention.producer_expiration_ms {
            Some(ms) => self
                .producers
                .expire(retention.now_ms.saturating_sub(ms.max(0))),
            None => 0,
        };
        Ok(Ok(PartitionOutcome::Retention(RetentionResult {
            log_start_offset: self.log_start_offset,
            segments_deleted: deleted,
            producers_expired,
        })))
    }

    fn advance_log_start(&mut self, view: &mut LogView) {
        let first = view
            .segments
            .first()
            .map_or(self.next_offset, |s| s.base_offset());
        if first > view.log_start_offset {
            view.log_start_offset = first;
            view.epochs.trim_to(first);
            self.log_start_offset = first;
        }
    }
}
