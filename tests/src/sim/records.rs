//! The simulation's record batches: length-prefixed records, opaque to the partition
//! machine like Kafka's record batches are.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Encodes records as a batch.
pub(crate) fn encode(records: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for record in records {
        out.put_u32_le(record.len() as u32);
        out.extend_from_slice(record);
    }
    out.freeze()
}

/// Decodes a batch; `None` if it is not one this module wrote.
pub(crate) fn decode(mut batch: Bytes) -> Option<Vec<Bytes>> {
    let mut records = Vec::new();
    while batch.has_remaining() {
        if batch.remaining() < 4 {
            return None;
        }
        let len = batch.get_u32_le() as usize;
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
    fn batches_round_trip_and_bad_ones_are_refused() {
        let records = vec![Bytes::from("a"), Bytes::new(), Bytes::from("ccc")];
        assert_eq!(decode(encode(&records)), Some(records));
        assert_eq!(decode(Bytes::from_static(&[9, 0, 0, 0, 1])), None);
        assert_eq!(decode(Bytes::from_static(&[1, 0])), None);
    }
}
