//! A simple framing of text records inside a batch, used by the CLI's `produce` and
//! `consume` (other Chronik crates send Kafka RecordBatch bytes instead: the cluster
//! never looks inside a batch).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Frames `records` as one batch: each record is a 4-byte big-endian length, then
/// its bytes.
pub fn encode_records<R: AsRef<[u8]>>(records: &[R]) -> Bytes {
    let size = records.iter().map(|r| 4 + r.as_ref().len()).sum();
    let mut out = BytesMut::with_capacity(size);
    for record in records {
        out.put_u32(record.as_ref().len() as u32);
        out.extend_from_slice(record.as_ref());
    }
    out.freeze()
}

/// Splits a batch framed by [`encode_records`]; `None` if it is not such a batch.
pub fn decode_records(mut batch: Bytes) -> Option<Vec<Bytes>> {
    let mut records = Vec::new();
    while batch.has_remaining() {
        if batch.remaining() < 4 {
            return None;
        }
        let len = batch.get_u32() as usize;
        if batch.remaining() < len {
            return None;
        }
        records.push(batch.split_to(len));
    }
    Some(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_refused() {
        let batch = encode_records(&["a", "", "hello"]);
        let back = decode_records(batch).unwrap();
        assert_eq!(
            back,
            vec![Bytes::from("a"), Bytes::new(), Bytes::from("hello")]
        );
        assert!(decode_records(Bytes::from_static(&[0, 0, 0, 9, 1])).is_none());
        assert!(decode_records(Bytes::from_static(&[0, 0])).is_none());
        assert_eq!(decode_records(Bytes::new()).unwrap(), Vec::<Bytes>::new());
    }
}
