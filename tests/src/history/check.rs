//! The checker behind [`History::check`].

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::{
    Batch, FetchOp, History, OpId, PartitionId, ProduceOutcome, ReplicaLog, Report, Violation,
};

/// One replica's log as a map from offset to record, and from record to offsets.
struct Flat<'a> {
    log: &'a ReplicaLog,
    by_offset: BTreeMap<u64, &'a Bytes>,
    offsets_of: BTreeMap<&'a Bytes, Vec<u64>>,
    /// One past the last offset read.
    end: u64,
}

/// What the history says of one record of a partition.
struct RecordFate {
    /// The first attempt of the batch that carries it.
    family: usize,
    /// Offsets it was acknowledged at (one per acknowledged attempt).
    acknowledged: BTreeSet<u64>,
    /// Some attempt was answered "written already".
    written: bool,
    attempts: usize,
    failed: usize,
}

fn batch_is_well_formed(batch: &Batch) -> bool {
    batch.last_offset >= batch.base_offset
        && batch.last_offset - batch.base_offset + 1 == batch.records.len() as u64
}

pub(super) fn check(history: &History, replicas: &[ReplicaLog]) -> Report {
    let mut report = Report::default();
    for op in history.produces() {
        match op.outcome {
            ProduceOutcome::Acknowledged { .. } | ProduceOutcome::AlreadyWritten => {
                report.acknowledged += 1
            }
            ProduceOutcome::Failed => report.failed += 1,
            ProduceOutcome::Unknown | ProduceOutcome::Pending => report.unknown += 1,
        }
    }
    let mut partitions: BTreeSet<&PartitionId> = BTreeSet::new();
    partitions.extend(history.produces().iter().map(|op| &op.partition));
    partitions.extend(history.fetches().iter().map(|f| &f.partition));
    partitions.extend(replicas.iter().map(|r| &r.partition));
    let v = &mut report.violations;
    for partition in partitions {
        let logs: Vec<&ReplicaLog> = replicas
            .iter()
            .filter(|r| &r.partition == partition)
            .collect();
        if logs.is_empty() {
            v.push(Violation::NoFinalLog {
                partition: partition.clone(),
            });
            continue;
        }
        let flats: Vec<Flat<'_>> = logs.iter().map(|log| flatten(log, v)).collect();
        report.replicas += flats.len();
        report.records += flats.iter().map(|f| f.by_offset.len()).sum::<usize>();
        compare_replicas(&flats, v);
        let fates = record_fates(history, partition, v);
        for flat in &flats {
            check_produces(flat, &fates, v);
        }
        for (index, fetch) in history.fetches().iter().enumerate() {
            if &fetch.partition != partition {
                continue;
            }
            report.fetches += 1;
            check_fetch_shape(index, fetch, v);
            for flat in &flats {
                check_fetch_against(index, fetch, flat, v);
            }
        }
    }
    report
}

/// Indexes one replica's log, checking batch shapes, contiguity, the high watermark
/// and duplicates.
fn flatten<'a>(log: &'a ReplicaLog, v: &mut Vec<Violation>) -> Flat<'a> {
    let (partition, replica) = (&log.partition, log.replica);
    let mut flat = Flat {
        log,
        by_offset: BTreeMap::new(),
        offsets_of: BTreeMap::new(),
        end: log.log_start_offset,
    };
    for batch in &log.batches {
        if batch.base_offset != flat.end {
            v.push(Violation::Gap {
                partition: partition.clone(),
                replica,
                expected: flat.end,
                found: batch.base_offset,
            });
        }
        if !batch_is_well_formed(batch) {
            v.push(Violation::MalformedBatch {
                partition: partition.clone(),
                replica,
                base_offset: batch.base_offset,
                last_offset: batch.last_offset,
                records: batch.records.len(),
            });
        } else {
            for (offset, record) in (batch.base_offset..).zip(&batch.records) {
                flat.by_offset.insert(offset, record);
            }
        }
        flat.end = batch.last_offset.saturating_add(1);
    }
    if flat.end != log.high_watermark {
        v.push(Violation::HighWatermarkMismatch {
            partition: partition.clone(),
            replica,
            log_end: flat.end,
            high_watermark: log.high_watermark,
        });
    }
    for (&offset, &record) in &flat.by_offset {
        flat.offsets_of.entry(record).or_default().push(offset);
    }
    for (&record, offsets) in &flat.offsets_of {
        if offsets.len() > 1 {
            v.push(Violation::Duplicate {
                partition: partition.clone(),
                replica,
                record: record.clone(),
                offsets: offsets.clone(),
            });
        }
    }
    flat
}

/// Every replica must hold what the first one holds, offset by offset.
fn compare_replicas(flats: &[Flat<'_>], v: &mut Vec<Violation>) {
    let Some((reference, others)) = flats.split_first() else {
        return;
    };
    for other in others {
        let offsets: BTreeSet<u64> = reference
            .by_offset
            .keys()
            .chain(other.by_offset.keys())
            .copied()
            .collect();
        if let Some(&offset) = offsets
            .iter()
            .find(|o| reference.by_offset.get(o) != other.by_offset.get(o))
        {
            v.push(Violation::ReplicasDiverge {
                partition: other.log.partition.clone(),
                replica: other.log.replica,
                reference: reference.log.replica,
                offset,
            });
        }
    }
}

/// What the history says of each record produced to `partition`.
fn record_fates<'h>(
    history: &'h History,
    partition: &PartitionId,
    v: &mut Vec<Violation>,
) -> BTreeMap<&'h Bytes, RecordFate> {
    let mut fates: BTreeMap<&Bytes, RecordFate> = BTreeMap::new();
    for (id, op) in history.produces().iter().enumerate() {
        if &op.partition != partition {
            continue;
        }
        let family = op.retry_of.map_or(id, |OpId(first)| first);
        let base = match op.outcome {
            ProduceOutcome::Acknowledged {
                base_offset,
                last_offset,
            } => {
                let count = op.records.len() as u64;
                if last_offset < base_offset || last_offset - base_offset + 1 != count {
                    v.push(Violation::AcknowledgedRangeMismatch {
                        partition: partition.clone(),
                        op: OpId(id),
                        records: op.records.len(),
                        base_offset,
                        last_offset,
                    });
                    None
                } else {
                    Some(base_offset)
                }
            }
            _ => None,
        };
        for (index, record) in op.records.iter().enumerate() {
            let fate = fates.entry(record).or_insert(RecordFate {
                family,
                acknowledged: BTreeSet::new(),
                written: false,
                attempts: 0,
                failed: 0,
            });
            if fate.family != family {
                v.push(Violation::RecordReused {
                    partition: partition.clone(),
                    record: record.clone(),
                    first: OpId(fate.family),
                    second: OpId(id),
                });
            }
            fate.attempts += 1;
            match op.outcome {
                ProduceOutcome::Failed => fate.failed += 1,
                ProduceOutcome::AlreadyWritten => fate.written = true,
                _ => {}
            }
            if let Some(base) = base {
                fate.acknowledged.insert(base + index as u64);
            }
        }
    }
    fates
}

/// Acknowledged records present at their offsets, failed ones absent, no stranger.
fn check_produces(flat: &Flat<'_>, fates: &BTreeMap<&Bytes, RecordFate>, v: &mut Vec<Violation>) {
    let (partition, replica) = (&flat.log.partition, flat.log.replica);
    for (&record, fate) in fates {
        let found = flat.offsets_of.get(record);
        for &acknowledged in &fate.acknowledged {
            match found {
                None => v.push(Violation::LostAcknowledged {
                    partition: partition.clone(),
                    replica,
                    record: record.clone(),
                    offset: Some(acknowledged),
                }),
                Some(offsets) if !offsets.contains(&acknowledged) => {
                    v.push(Violation::WrongOffset {
                        partition: partition.clone(),
                        replica,
                        record: record.clone(),
                        acknowledged,
                        found: offsets[0],
                    })
                }
                Some(_) => {}
            }
        }
        if fate.written && fate.acknowledged.is_empty() && found.is_none() {
            v.push(Violation::LostAcknowledged {
                partition: partition.clone(),
                replica,
                record: record.clone(),
                offset: None,
            });
        }
        if let Some(offsets) = found {
            if fate.attempts > 0 && fate.failed == fate.attempts {
                v.push(Violation::FailedRecordPresent {
                    partition: partition.clone(),
                    replica,
                    record: record.clone(),
                    offset: offsets[0],
                });
            }
        }
    }
    for (&offset, &record) in &flat.by_offset {
        if !fates.contains_key(record) {
            v.push(Violation::UnknownRecord {
                partition: partition.clone(),
                replica,
                record: record.clone(),
                offset,
            });
        }
    }
}

/// A fetch's own consistency: well-formed batches, contiguous from the offset asked
/// for, nothing at or past the high watermark it reported.
fn check_fetch_shape(index: usize, fetch: &FetchOp, v: &mut Vec<Violation>) {
    let partition = &fetch.partition;
    let mut expected = None;
    for batch in &fetch.batches {
        let gap = match expected {
            // The first batch is the one holding the offset asked for.
            None => (batch.base_offset > fetch.offset || batch.last_offset < fetch.offset)
                .then_some((fetch.offset, batch.base_offset)),
            Some(next) => (batch.base_offset != next).then_some((next, batch.base_offset)),
        };
        if let Some((expected, found)) = gap {
            v.push(Violation::FetchGap {
                partition: partition.clone(),
                fetch: index,
                expected,
                found,
            });
        }
        expected = Some(batch.last_offset.saturating_add(1));
        if !batch_is_well_formed(batch) {
            v.push(Violation::FetchMalformed {
                partition: partition.clone(),
                fetch: index,
                base_offset: batch.base_offset,
                last_offset: batch.last_offset,
                records: batch.records.len(),
            });
        } else if batch.last_offset >= fetch.high_watermark {
            v.push(Violation::FetchPastHighWatermark {
                partition: partition.clone(),
                fetch: index,
                offset: batch.last_offset,
                high_watermark: fetch.high_watermark,
            });
        }
    }
}

/// A fetch against one replica's final log: the same record at every offset it
/// returned (the first difference is reported).
fn check_fetch_against(index: usize, fetch: &FetchOp, flat: &Flat<'_>, v: &mut Vec<Violation>) {
    let (partition, replica) = (&fetch.partition, flat.log.replica);
    let returned = fetch
        .batches
        .iter()
        .filter(|b| batch_is_well_formed(b))
        .flat_map(|b| (b.base_offset..).zip(&b.records));
    for (offset, record) in returned {
        if offset < flat.log.log_start_offset {
            continue; // Truncated since: nothing left to compare with.
        }
        let violation = match flat.by_offset.get(&offset) {
            None => Violation::FetchBeyondFinalLog {
                partition: partition.clone(),
                replica,
                fetch: index,
                offset,
                log_end: flat.end,
            },
            Some(&held) if held != record => Violation::FetchMismatch {
                partition: partition.clone(),
                replica,
                fetch: index,
                offset,
                fetched: record.clone(),
                final_record: held.clone(),
            },
            Some(_) => continue,
        };
        v.push(violation);
        return;
    }
}
