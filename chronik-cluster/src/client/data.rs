//! Data requests: produce, fetch, offsets.

use crate::api::{
    Acks, FetchRequest, FetchResponse, OffsetQuery, ProduceRequest, ProduceResponse, RecordBatch,
};
use crate::service::proto;

use super::{check, ChronikClient, ClientResult, Target};

impl ChronikClient {
    /// Produces to the partition's leader.
    ///
    /// # Errors
    /// The partition's refusal, or `GaveUp`.
    pub async fn produce(&self, request: ProduceRequest) -> ClientResult<ProduceResponse> {
        let target = Target::Leader(request.topic.clone(), request.partition);
        let wire = proto::ProduceRequest {
            topic: request.topic,
            partition: request.partition,
            records: request.records,
            record_count: request.record_count,
            max_timestamp: request.max_timestamp,
            acks: match request.acks {
                Acks::None => 0,
                Acks::Leader => 1,
                Acks::All => -1,
            },
            idempotent: request.producer.is_some(),
            producer_id: request.producer.map_or(0, |p| p.producer_id),
            producer_epoch: request.producer.map_or(0, |p| p.producer_epoch),
            base_sequence: request.producer.map_or(0, |p| p.base_sequence),
            timeout_ms: u32::try_from(request.timeout.as_millis()).unwrap_or(u32::MAX),
        };
        self.with_retry(target, |mut rpc, address| {
            let wire = wire.clone();
            async move {
                let reply = rpc
                    .produce(wire)
                    .await
                    .map_err(|s| self.rpc_error(&address, s))?
                    .into_inner();
                check(reply.outcome)?;
                Ok(ProduceResponse {
                    base_offset: reply.base_offset,
                    last_offset: reply.last_offset,
                    log_append_time: reply.log_append_time,
                })
            }
        })
        .await
    }

    /// Fetches from the partition's leader.
    ///
    /// # Errors
    /// The partition's refusal (`OffsetOutOfRange` is code 1), or `GaveUp`.
    pub async fn fetch(&self, request: FetchRequest) -> ClientResult<FetchResponse> {
        let target = Target::Leader(request.topic.clone(), request.partition);
        let wire = proto::FetchRequest {
            topic: request.topic,
            partition: request.partition,
            offset: request.offset,
            max_bytes: u32::try_from(request.max_bytes).unwrap_or(u32::MAX),
            max_wait_ms: u32::try_from(request.max_wait.as_millis()).unwrap_or(u32::MAX),
        };
        self.with_retry(target, |mut rpc, address| {
            let wire = wire.clone();
            async move {
                let reply = rpc
                    .fetch(wire)
                    .await
                    .map_err(|s| self.rpc_error(&address, s))?
                    .into_inner();
                check(reply.outcome)?;
                Ok(FetchResponse {
                    batches: reply
                        .batches
                        .into_iter()
                        .map(|b| RecordBatch {
                            base_offset: b.base_offset,
                            last_offset: b.last_offset,
                            max_timestamp: b.max_timestamp,
                            leader_epoch: b.leader_epoch,
                            records: b.records,
                        })
                        .collect(),
                    high_watermark: reply.high_watermark,
                    log_start_offset: reply.log_start_offset,
                })
            }
        })
        .await
    }

    /// An offset of a partition, from its leader.
    ///
    /// # Errors
    /// The partition's refusal, or `GaveUp`.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partition: u32,
        query: OffsetQuery,
    ) -> ClientResult<Option<u64>> {
        let wire = proto::ListOffsetsRequest {
            topic: topic.to_owned(),
            partition,
            query: match query {
                OffsetQuery::Earliest => -2,
                OffsetQuery::Latest => -1,
                OffsetQuery::Timestamp(ts) => ts,
            },
        };
        self.with_retry(
            Target::Leader(topic.to_owned(), partition),
            |mut rpc, address| {
                let wire = wire.clone();
                async move {
                    let reply = rpc
                        .list_offsets(wire)
                        .await
                        .map_err(|s| self.rpc_error(&address, s))?
                        .into_inner();
                    check(reply.outcome)?;
                    Ok(reply.found.then_some(reply.offset))
                }
            },
        )
        .await
    }

    /// Commits a consumer group's offset for one partition.
    ///
    /// # Errors
    /// The controller's refusal, or `GaveUp`.
    pub async fn commit_offset(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        offset: i64,
    ) -> ClientResult<()> {
        let wire = proto::CommitOffsetsRequest {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
            offset,
        };
        self.with_retry(Target::Controller, |mut rpc, address| {
            let wire = wire.clone();
            async move {
                let reply = rpc
                    .commit_offsets(wire)
                    .await
                    .map_err(|s| self.rpc_error(&address, s))?;
                check(Some(reply.into_inner()))
            }
        })
        .await
    }

    /// A consumer group's committed offset for one partition.
    ///
    /// # Errors
    /// `GaveUp` when no node answers.
    pub async fn committed_offset(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
    ) -> ClientResult<Option<i64>> {
        let wire = proto::FetchOffsetRequest {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
        };
        self.with_retry(Target::Any, |mut rpc, address| {
            let wire = wire.clone();
            async move {
                let reply = rpc
                    .fetch_offset(wire)
                    .await
                    .map_err(|s| self.rpc_error(&address, s))?
                    .into_inner();
                Ok(reply.found.then_some(reply.offset))
            }
        })
        .await
    }
}
