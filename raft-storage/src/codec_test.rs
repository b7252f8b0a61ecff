use raft::eraftpb::{ConfState, Entry, HardState, SnapshotMetadata};

use super::*;
use crate::batch::Op;

fn sample_ops() -> Vec<Op> {
    let entries: Vec<Entry> = (5..8)
        .map(|index| Entry {
            index,
            term: 2,
            data: vec![index as u8; 10].into(),
            ..Default::default()
        })
        .collect();
    let cp = Checkpoint {
        first_index: 4,
        prev_term: 1,
        base_index: 3,
        base_term: 1,
        hard_state: HardState {
            term: 2,
            vote: 1,
            commit: 6,
            ..Default::default()
        },
        conf_state: ConfState {
            voters: vec![1, 2],
            ..Default::default()
        },
        snapshot: Some((3, 1)),
        conf_index: 5,
    };
    vec![
        Op::Append(9, entries),
        Op::HardState(
            9,
            HardState {
                term: 2,
                vote: 3,
                commit: 5,
                ..Default::default()
            },
        ),
        Op::ConfState(
            1,
            ConfState {
                voters: vec![1, 2, 3],
                ..Default::default()
            },
            7,
        ),
        Op::Compact(9, 6, 2),
        Op::ApplySnapshot(
            2,
            SnapshotMetadata {
                index: 10,
                term: 4,
                ..Default::default()
            },
        ),
        Op::Remove(3),
        Op::SnapshotRef(2, 10, 4),
        Op::Checkpoint(7, Box::new(cp)),
    ]
}

#[test]
fn a_batch_round_trips_with_entry_offsets() {
    let ops = sample_ops();
    let mut buf = vec![0xee; 5]; // frames may start anywhere in the buffer
    let mut offsets = Vec::new();
    encode_batch(&ops, &mut buf, &mut offsets).unwrap();
    let (payload, total) = read_frame(&buf[5..], None).unwrap();
    assert_eq!(total, buf.len() - 5);
    assert_eq!(offsets.len(), 3);
    let mut kinds = Vec::new();
    decode_records(payload, |record| {
        match &record {
            Record::Entries {
                group,
                first_index,
                count,
                body,
                body_offset,
            } => {
                assert_eq!((*group, *first_index, *count), (9, 5, 3));
                let spans = entry_spans(body, *count).unwrap();
                for ((term, offset, len), frame_offset) in spans.iter().zip(&offsets) {
                    assert_eq!(*term, 2);
                    // The offset recorded at encode time points at the same bytes.
                    assert_eq!(FRAME_HEADER + body_offset + offset, *frame_offset as usize);
                    let bytes = &buf[5 + *frame_offset as usize..][..*len as usize];
                    assert_eq!(Entry::parse_from_bytes(bytes).unwrap().term, 2);
                }
            }
            Record::Compact(group, index, term) => assert_eq!((*group, *index, *term), (9, 6, 2)),
            Record::Checkpoint(group, cp) => {
                assert_eq!(*group, 7);
                assert_eq!(cp.snapshot, Some((3, 1)));
                assert_eq!(cp.conf_state.voters, vec![1, 2]);
                assert_eq!(cp.hard_state.commit, 6);
                assert_eq!(cp.conf_index, 5);
            }
            Record::ConfState(group, cs, index) => {
                assert_eq!((*group, *index), (1, 7));
                assert_eq!(cs.voters, vec![1, 2, 3]);
            }
            _ => {}
        }
        kinds.push(std::mem::discriminant(&record));
    })
    .unwrap();
    assert_eq!(kinds.len(), ops.len());
}

#[test]
fn damaged_frames_are_told_apart() {
    let mut buf = Vec::new();
    encode_batch(&sample_ops(), &mut buf, &mut Vec::new()).unwrap();
    for cut in 0..buf.len() {
        assert_eq!(
            read_frame(&buf[..cut], None).map(|_| ()),
            Err(FrameError::Truncated),
            "cut at {cut}"
        );
    }
    for at in 0..buf.len() {
        let mut flipped = buf.clone();
        flipped[at] ^= 0x01;
        assert!(
            read_frame(&flipped, None).is_err(),
            "bit flip at {at} undetected"
        );
    }
    let mut wrong_type = buf.clone();
    wrong_type[8] = 9;
    let crc = crc32c::crc32c(&wrong_type[8..]);
    wrong_type[4..8].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        read_frame(&wrong_type, None).map(|_| ()),
        Err(FrameError::UnknownType(9))
    );
}

#[test]
fn undecodable_records_are_errors_not_guesses() {
    // An unknown record type.
    let mut payload = vec![42u8];
    payload.extend_from_slice(&1u64.to_le_bytes());
    payload.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(
        decode_records(&payload, |_| {}).map_err(|e| e.0),
        Err(CorruptionKind::UnknownType(42))
    );
    // A record longer than its payload.
    let mut payload = vec![REC_COMPACT];
    payload.extend_from_slice(&1u64.to_le_bytes());
    payload.extend_from_slice(&100u32.to_le_bytes());
    assert_eq!(
        decode_records(&payload, |_| {}).map_err(|e| e.0),
        Err(CorruptionKind::Truncated)
    );
    // Entries whose spans do not add up.
    let mut body = Vec::new();
    body.extend_from_slice(&1u64.to_le_bytes());
    body.extend_from_slice(&5u32.to_le_bytes());
    assert_eq!(entry_spans(&body, 2), Err(CorruptionKind::Truncated));
    assert_eq!(entry_spans(&[0u8; 3], 0), Err(CorruptionKind::Inconsistent));
}

#[test]
fn a_sealed_frame_reads_only_as_its_own_segments() {
    let mut buf = Vec::new();
    encode_batch(&sample_ops(), &mut buf, &mut Vec::new()).unwrap();
    let unsealed = buf.clone();
    seal_frame(&mut buf, 7);
    let (payload, total) = read_frame(&buf, Some(7)).unwrap();
    assert_eq!(total, buf.len());
    assert_eq!(payload, &unsealed[FRAME_HEADER..]);
    // The same bytes as another segment's frame, or as a version 1 frame: a bad CRC.
    assert!(matches!(
        read_frame(&buf, Some(8)),
        Err(FrameError::Checksum)
    ));
    assert!(matches!(read_frame(&buf, None), Err(FrameError::Checksum)));
    assert!(matches!(
        read_frame(&unsealed, Some(7)),
        Err(FrameError::Checksum)
    ));
    assert!(read_frame(&unsealed, None).is_ok());
}

proptest::proptest! {
    #[test]
    fn concatenated_crcs_match_the_crc_of_the_concatenation(
        a in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        b in proptest::collection::vec(proptest::num::u8::ANY, 0..5000),
    ) {
        let whole = crc32c::crc32c_append(crc32c::crc32c(&a), &b);
        proptest::prop_assert_eq!(
            crc32c_concat(crc32c::crc32c(&a), crc32c::crc32c(&b), b.len() as u64),
            whole
        );
    }
}

#[test]
fn concatenated_crcs_match_the_crate_for_long_and_empty_tails() {
    // An empty tail's CRC is 0 (the crate returns the head's CRC without looking).
    assert_eq!(crc32c_concat(0x1234_5678, 0, 0), 0x1234_5678);
    for len in [1u64, 7, 8, 4095, 1 << 20, (1 << 32) + 17, u64::MAX >> 3] {
        let (a, b) = (0x1234_5678, 0x9abc_def0);
        let ours = crc32c_concat(a, b, len);
        let theirs = crc32c::crc32c_combine(a, b, len as usize);
        assert_eq!(ours, theirs, "len {len}");
    }
}
