//! The client gRPC service: the [`Cluster`] API for other processes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};

use crate::api::{
    Acks, FetchRequest, OffsetQuery, ProduceRequest, ProducerIdentity, TopicDescription, TopicSpec,
};
use crate::cluster::Cluster;
use crate::error::{ClusterError, Result};
use crate::node::NodeInner;

/// The generated protocol types.
pub(crate) mod proto {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("chronik.client.v1");
}

use proto::chronik_server::{Chronik, ChronikServer};

/// Largest request or reply (a fetch reply carries up to its byte budget).
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Binds the client address and serves until the node stops.
pub(crate) async fn serve(inner: Arc<NodeInner>) -> Result<JoinHandle<()>> {
    let address = inner.config.client_addr;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ClusterError::Io {
            path: PathBuf::from(address.to_string()),
            source,
        })?;
    let mut stop = inner.stop.subscribe();
    let service = ChronikServer::new(Service {
        cluster: Cluster::new(Arc::clone(&inner)),
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    Ok(tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        if let Err(error) = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
        {
            tracing::error!(%error, "client service stopped");
        }
    }))
}

struct Service {
    cluster: Cluster,
}

fn ok() -> proto::Outcome {
    proto::Outcome::default()
}

fn outcome(error: &ClusterError) -> proto::Outcome {
    proto::Outcome {
        error_code: i32::from(error.kafka_code()),
        error_message: error.to_string(),
        leader_hint: error.leader_hint().unwrap_or(0),
    }
}

fn topic_to_proto(topic: TopicDescription) -> proto::Topic {
    proto::Topic {
        name: topic.name,
        topic_id: topic.topic_id.into(),
        replication_factor: topic.replication_factor,
        partitions: topic
            .partitions
            .into_iter()
            .map(|p| proto::Partition {
                topic: p.topic,
                partition: p.partition,
                group_id: p.group_id,
                replicas: p.replicas,
                leader: p.leader.unwrap_or(0),
            })
            .collect(),
        configs: topic.configs.into_iter().collect(),
    }
}

#[tonic::async_trait]
impl Chronik for Service {
    async fn create_topic(
        &self,
        request: Request<proto::CreateTopicRequest>,
    ) -> Result<Response<proto::TopicReply>, Status> {
        let r = request.into_inner();
        let spec = TopicSpec {
            name: r.name,
            partitions: r.partitions,
            replication_factor: r.replication_factor,
            configs: r.configs.into_iter().collect(),
        };
        let reply = match self.cluster.create_topic(spec).await {
            Ok(topic) => proto::TopicReply {
                outcome: Some(ok()),
                topic: Some(topic_to_proto(topic)),
            },
            Err(e) => proto::TopicReply {
                outcome: Some(outcome(&e)),
                topic: None,
            },
        };
        Ok(Response::new(reply))
    }

    async fn delete_topic(
        &self,
        request: Request<proto::DeleteTopicRequest>,
    ) -> Result<Response<proto::Outcome>, Status> {
        let reply = match self.cluster.delete_topic(&request.into_inner().name).await {
            Ok(()) => ok(),
            Err(e) => outcome(&e),
        };
        Ok(Response::new(reply))
    }

    async fn list_topics(
        &self,
        _request: Request<proto::ListTopicsRequest>,
    ) -> Result<Response<proto::ListTopicsReply>, Status> {
        let topics = self
            .cluster
            .list_topics()
            .into_iter()
            .map(topic_to_proto)
            .collect();
        Ok(Response::new(proto::ListTopicsReply { topics }))
    }

    async fn produce(
        &self,
        request: Request<proto::ProduceRequest>,
    ) -> Result<Response<proto::ProduceReply>, Status> {
        let r = request.into_inner();
        let acks = match r.acks {
            0 => Acks::None,
            1 => Acks::Leader,
            _ => Acks::All,
        };
        let producer = r.idempotent.then_some(ProducerIdentity {
            producer_id: r.producer_id,
            producer_epoch: r.producer_epoch,
            base_sequence: r.base_sequence,
        });
        let timeout_ms = if r.timeout_ms == 0 {
            30_000
        } else {
            r.timeout_ms
        };
        let produce = ProduceRequest {
            topic: r.topic,
            partition: r.partition,
            records: r.records,
            record_count: r.record_count,
            max_timestamp: r.max_timestamp,
            acks,
            producer,
            timeout: Duration::from_millis(u64::from(timeout_ms)),
        };
        let reply = match self.cluster.produce(produce).await {
            Ok(p) => proto::ProduceReply {
                outcome: Some(ok()),
                base_offset: p.base_offset,
                last_offset: p.last_offset,
                log_append_time: p.log_append_time,
            },
            Err(e) => proto::ProduceReply {
                outcome: Some(outcome(&e)),
                ..Default::default()
            },
        };
        Ok(Response::new(reply))
    }

    async fn fetch(
        &self,
        request: Request<proto::FetchRequest>,
    ) -> Result<Response<proto::FetchReply>, Status> {
        let r = request.into_inner();
        let fetch = FetchRequest {
            topic: r.topic,
            partition: r.partition,
            offset: r.offset,
            max_bytes: (r.max_bytes as usize).min(MAX_MESSAGE_BYTES / 2),
            max_wait: Duration::from_millis(u64::from(r.max_wait_ms).min(60_000)),
        };
        let reply = match self.cluster.fetch(fetch).await {
            Ok(f) => proto::FetchReply {
                outcome: Some(ok()),
                batches: f
                    .batches
                    .into_iter()
                    .map(|b| proto::Batch {
                        base_offset: b.base_offset,
                        last_offset: b.last_offset,
                        max_timestamp: b.max_timestamp,
                        leader_epoch: b.leader_epoch,
                        records: b.records,
                    })
                    .collect(),
                high_watermark: f.high_watermark,
                log_start_offset: f.log_start_offset,
            },
            Err(e) => proto::FetchReply {
                outcome: Some(outcome(&e)),
                ..Default::default()
            },
        };
        Ok(Response::new(reply))
    }

    async fn list_offsets(
        &self,
        request: Request<proto::ListOffsetsRequest>,
    ) -> Result<Response<proto::ListOffsetsReply>, Status> {
        let r = request.into_inner();
        let query = match r.query {
            -2 => OffsetQuery::Earliest,
            -1 => OffsetQuery::Latest,
            ts => OffsetQuery::Timestamp(ts),
        };
        let reply = match self.cluster.list_offsets(&r.topic, r.partition, query) {
            Ok(offset) => proto::ListOffsetsReply {
                outcome: Some(ok()),
                found: offset.is_some(),
                offset: offset.unwrap_or(0),
            },
            Err(e) => proto::ListOffsetsReply {
                outcome: Some(outcome(&e)),
                ..Default::default()
            },
        };
        Ok(Response::new(reply))
    }

    async fn commit_offsets(
        &self,
        request: Request<proto::CommitOffsetsRequest>,
    ) -> Result<Response<proto::Outcome>, Status> {
        let r = request.into_inner();
        let reply = match self
            .cluster
            .commit_offsets(&r.group, &[(r.topic, r.partition, r.offset)])
            .await
        {
            Ok(()) => ok(),
            Err(e) => outcome(&e),
        };
        Ok(Response::new(reply))
    }

    async fn fetch_offset(
        &self,
        request: Request<proto::FetchOffsetRequest>,
    ) -> Result<Response<proto::FetchOffsetReply>, Status> {
        let r = request.into_inner();
        let offset = self
            .cluster
            .committed_offset(&r.group, &r.topic, r.partition);
        Ok(Response::new(proto::FetchOffsetReply {
            found: offset.is_some(),
            offset: offset.unwrap_or(-1),
        }))
    }

    async fn register_node(
        &self,
        request: Request<proto::Node>,
    ) -> Result<Response<proto::Outcome>, Status> {
        let n = request.into_inner();
        let node = crate::api::NodeDescription {
            id: n.id,
            raft_address: n.raft_address,
            client_address: n.client_address,
            rack: (!n.rack.is_empty()).then_some(n.rack),
        };
        let reply = match self.cluster.register_node(node).await {
            Ok(()) => ok(),
            Err(e) => outcome(&e),
        };
        Ok(Response::new(reply))
    }

    async fn reassign_partition(
        &self,
        request: Request<proto::ReassignRequest>,
    ) -> Result<Response<proto::Outcome>, Status> {
        let r = request.into_inner();
        let reply = match self
            .cluster
            .reassign_partition(&r.topic, r.partition, r.replicas)
            .await
        {
            Ok(()) => ok(),
            Err(e) => outcome(&e),
        };
        Ok(Response::new(reply))
    }

    async fn change_replicas(
        &self,
        request: Request<proto::ChangeReplicasRequest>,
    ) -> Result<Response<proto::Outcome>, Status> {
        let r = request.into_inner();
        let mut changes = Vec::with_capacity(r.changes.len());
        for c in r.changes {
            changes.push(match c.kind {
                1 => crate::api::ReplicaChange::AddVoter(c.node),
                2 => crate::api::ReplicaChange::AddLearner(c.node),
                3 => crate::api::ReplicaChange::Remove(c.node),
                _ => {
                    return Ok(Response::new(outcome(&ClusterError::InvalidRequest(
                        crate::InvalidRequest::BadReplicaSet,
                    ))))
                }
            });
        }
        let reply = match self
            .cluster
            .change_replicas(&r.topic, r.partition, changes)
            .await
        {
            Ok(()) => ok(),
            Err(e) => outcome(&e),
        };
        Ok(Response::new(reply))
    }

    async fn partition_status(
        &self,
        request: Request<proto::PartitionStatusRequest>,
    ) -> Result<Response<proto::PartitionStatusReply>, Status> {
        let r = request.into_inner();
        let reply = match self
            .cluster
            .partition_raft_status(&r.topic, r.partition)
            .await
        {
            Ok(s) => proto::PartitionStatusReply {
                outcome: Some(ok()),
                voters: s.voters,
                learners: s.learners,
                commit: s.commit,
                matched: s.matched.into_iter().collect(),
            },
            Err(e) => proto::PartitionStatusReply {
                outcome: Some(outcome(&e)),
                ..Default::default()
            },
        };
        Ok(Response::new(reply))
    }

    async fn status(
        &self,
        _request: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::StatusReply>, Status> {
        let s = self.cluster.status();
        Ok(Response::new(proto::StatusReply {
            node_id: s.node_id,
            controller: s.controller.unwrap_or(0),
            nodes: s
                .nodes
                .into_iter()
                .map(|n| proto::Node {
                    id: n.id,
                    raft_address: n.raft_address,
                    client_address: n.client_address,
                    rack: n.rack.unwrap_or_default(),
                })
                .collect(),
            partitions: s
                .partitions
                .into_iter()
                .map(|p| proto::Partition {
                    topic: p.topic,
                    partition: p.partition,
                    group_id: p.group_id,
                    replicas: p.replicas,
                    leader: p.leader.unwrap_or(0),
                })
                .collect(),
            local_groups: s.local_groups,
            local_leaders: s.local_leaders,
            local_hibernated: s.local_hibernated,
            local_partitions: s
                .local_partitions
                .into_iter()
                .map(|p| proto::LocalPartition {
                    topic: p.topic,
                    partition: p.partition,
                    group_id: p.group_id,
                    leader: p.leader,
                    high_watermark: p.high_watermark,
                    log_start_offset: p.log_start_offset,
                })
                .collect(),
            wal_syncs: s.wal_syncs,
            wal_bytes_written: s.wal_bytes_written,
            wal_sync_max_micros: s.wal_sync_max_micros,
            wal_slow_syncs: s.wal_slow_syncs,
        }))
    }
}
