//! [`Cluster`]: the API other Chronik crates call on a node.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use raft_fsm::{
    decode_append_response, decode_metadata_response, Catalog, MetadataCommand, OffsetCommit,
    PartitionCommand, PartitionError, ProducerInfo,
};

use crate::api::{
    Acks, ClusterStatus, FetchRequest, FetchResponse, LocalPartitionStatus, NodeDescription,
    OffsetQuery, PartitionDescription, ProduceRequest, ProduceResponse, RecordBatch,
    TopicDescription, TopicSpec,
};
use crate::error::{ClusterError, InvalidRequest, Result};
use crate::node::NodeInner;
use crate::{GroupId, NodeId, METADATA_GROUP};

/// The cluster as seen through one node. Cheap to clone.
///
/// Data requests (produce, fetch) must reach the partition's leader: on another node
/// they answer [`ClusterError::NotLeaderOrFollower`] with a leader hint, as a Kafka
/// broker does. Administrative requests must reach the controller (the metadata
/// group's leader) and otherwise answer [`ClusterError::NotController`].
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<NodeInner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.inner.node_id())
            .finish()
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Cluster {
    pub(crate) fn new(inner: Arc<NodeInner>) -> Cluster {
        Cluster { inner }
    }

    /// The node serving this handle.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id()
    }

    /// The controller (metadata group leader), as this node last saw it.
    pub fn controller(&self) -> Option<NodeId> {
        self.inner.multi.leader_of(METADATA_GROUP)
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.inner.metadata.catalog()
    }

    /// Proposes a metadata command on this node (it must be the controller).
    pub(crate) async fn propose_metadata(&self, command: MetadataCommand) -> Result<u64> {
        let response = self
            .inner
            .multi
            .propose(METADATA_GROUP, command.encode().to_vec())
            .await
            .map_err(ClusterError::from_metadata_replication)?;
        Ok(decode_metadata_response(&response)?)
    }

    /// Waits until this node's catalogue has applied `version` (bounded by `timeout`).
    pub(crate) async fn await_catalog(&self, version: u64, timeout: Duration) -> Result<()> {
        let mut watch = self.inner.metadata.subscribe();
        tokio::time::timeout(timeout, watch.wait_for(|v| *v >= version))
            .await
            .map_err(|_| ClusterError::RequestTimedOut)?
            .map_err(|_| ClusterError::ShuttingDown)?;
        Ok(())
    }

    /// Creates a topic; the controller places its replicas evenly across nodes (rack
    /// aware). Returns once this node's catalogue holds it.
    ///
    /// # Errors
    /// `NotController`, `TopicAlreadyExists`, `InvalidReplicationFactor`, ...
    pub async fn create_topic(&self, spec: TopicSpec) -> Result<TopicDescription> {
        if spec.partitions == 0 {
            return Err(ClusterError::InvalidRequest(InvalidRequest::NoPartitions));
        }
        if !self.inner.multi.is_leader(METADATA_GROUP) {
            return Err(ClusterError::NotController {
                leader: self.controller(),
            });
        }
        crate::controller::register_configured(&self.inner, self).await?;
        let command = crate::controller::plan_topic(&self.catalog(), &spec)?;
        let version = self.propose_metadata(command).await?;
        self.await_catalog(version, Duration::from_secs(10)).await?;
        self.describe_topic(&spec.name)
    }

    /// Registers a node (one joining the cluster) in the catalogue and adds it to the
    /// metadata group as a learner, so it replicates the catalogue.
    ///
    /// # Errors
    /// `NotController`.
    pub async fn register_node(&self, node: NodeDescription) -> Result<()> {
        if !self.inner.multi.is_leader(METADATA_GROUP) {
            return Err(ClusterError::NotController {
                leader: self.controller(),
            });
        }
        let id = node.id;
        let info = raft_fsm::NodeInfo {
            node_id: node.id,
            raft_address: node.raft_address,
            client_address: node.client_address,
            rack: node.rack,
        };
        if self.catalog().nodes.get(&id) != Some(&info) {
            self.propose_metadata(MetadataCommand::register_node(info))
                .await?;
        }
        let status = self
            .inner
            .multi
            .status(METADATA_GROUP)
            .await
            .map_err(ClusterError::from_metadata_replication)?;
        if !status.voters.contains(&id) && !status.learners.contains(&id) {
            self.inner
                .multi
                .change_membership(
                    METADATA_GROUP,
                    vec![raft_multi::MembershipChange::AddLearner(id)],
                )
                .await
                .map_err(ClusterError::from_metadata_replication)?;
        }
        Ok(())
    }

    /// Deletes a topic; every node then removes its replicas.
    ///
    /// # Errors
    /// `NotController`, `UnknownTopicOrPartition`.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        if !self.inner.multi.is_leader(METADATA_GROUP) {
            return Err(ClusterError::NotController {
                leader: self.controller(),
            });
        }
        let version = self
            .propose_metadata(MetadataCommand::delete_topic(name))
            .await?;
        self.await_catalog(version, Duration::from_secs(10)).await
    }

    /// Every topic in this node's catalogue, by name.
    pub fn list_topics(&self) -> Vec<TopicDescription> {
        let catalog = self.catalog();
        catalog
            .topics
            .keys()
            .filter_map(|name| self.describe(&catalog, name))
            .collect()
    }

    /// One topic.
    ///
    /// # Errors
    /// `UnknownTopicOrPartition`.
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        self.describe(&self.catalog(), name)
            .ok_or_else(|| ClusterError::UnknownTopicOrPartition {
                topic: name.to_owned(),
                partition: None,
            })
    }

    fn describe(&self, catalog: &Catalog, name: &str) -> Option<TopicDescription> {
        let topic = catalog.topics.get(name)?;
        Some(TopicDescription {
            name: topic.name.clone(),
            topic_id: topic.topic_id.clone(),
            replication_factor: topic.replication_factor,
            partitions: topic
                .partitions
                .iter()
                .map(|p| PartitionDescription {
                    topic: topic.name.clone(),
                    partition: p.partition,
                    group_id: p.group_id,
                    replicas: p.replicas.clone(),
                    leader: self.inner.multi.leader_of(p.group_id),
                })
                .collect(),
            configs: topic.configs.clone(),
        })
    }

    pub(crate) fn multi(&self) -> &raft_multi::MultiRaft {
        &self.inner.multi
    }

    /// The address clients use for this node.
    #[cfg(feature = "grpc")]
    pub(crate) fn client_address(&self) -> String {
        self.inner.config.advertised_client()
    }

    /// The raft group of a partition.
    pub(crate) fn group_of(&self, topic: &str, partition: u32) -> Result<GroupId> {
        self.locate(topic, partition).map(|(group, _)| group)
    }

    fn locate(&self, topic: &str, partition: u32) -> Result<(GroupId, Arc<Catalog>)> {
        let catalog = self.catalog();
        let group = catalog
            .partition(topic, partition)
            .map(|p| p.group_id)
            .ok_or_else(|| ClusterError::UnknownTopicOrPartition {
                topic: topic.to_owned(),
                partition: Some(partition),
            })?;
        Ok((group, catalog))
    }

    /// The group and reader of a partition replica hosted on this node.
    fn local_reader(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<(GroupId, raft_fsm::PartitionReader)> {
        let (group, _) = self.locate(topic, partition)?;
        let reader = self
            .inner
            .partitions
            .read()
            .get(&group)
            .map(|p| p.reader.clone());
        match reader {
            Some(reader) => Ok((group, reader)),
            None => Err(self.not_leader(topic, partition, group)),
        }
    }

    fn not_leader(&self, topic: &str, partition: u32, group: GroupId) -> ClusterError {
        ClusterError::NotLeaderOrFollower {
            topic: topic.to_owned(),
            partition,
            leader: self.inner.multi.leader_of(group),
        }
    }

    /// Appends a record batch to a partition led by this node. With `Acks::All` (and
    /// `Leader`) the answer comes once the batch is committed on a quorum and applied;
    /// the topic's `min.insync.replicas` is checked first.
    ///
    /// # Errors
    /// `NotLeaderOrFollower`, `UnknownTopicOrPartition`, `NotEnoughReplicas`,
    /// `RequestTimedOut`, and the partition's own (`OutOfOrderSequence`, `ProducerFenced`, ...).
    pub async fn produce(&self, request: ProduceRequest) -> Result<ProduceResponse> {
        if request.records.is_empty() || request.record_count == 0 {
            return Err(ClusterError::InvalidRequest(InvalidRequest::EmptyRecords));
        }
        let (group, catalog) = self.locate(&request.topic, request.partition)?;
        let multi = &self.inner.multi;
        if !multi.is_leader(group) {
            return Err(self.not_leader(&request.topic, request.partition, group));
        }
        let min_isr = catalog
            .topics
            .get(&request.topic)
            .and_then(|t| t.configs.get("min.insync.replicas"))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1);
        if request.acks == Acks::All && min_isr > 1 {
            let status = multi.status(group).await.map_err(|e| {
                ClusterError::from_replication(e, &request.topic, request.partition)
            })?;
            if status.in_sync.len() < min_isr {
                return Err(ClusterError::NotEnoughReplicas {
                    required: min_isr,
                    in_sync: status.in_sync.len(),
                });
            }
        }
        let append_time = now_ms();
        let command = match request.producer {
            Some(p) => PartitionCommand::append_idempotent(
                request.records,
                request.record_count,
                request.max_timestamp,
                append_time,
                ProducerInfo {
                    producer_id: p.producer_id,
                    producer_epoch: p.producer_epoch,
                    base_sequence: p.base_sequence,
                },
            ),
            None => PartitionCommand::append(
                request.records,
                request.record_count,
                request.max_timestamp,
                append_time,
            ),
        };
        let proposer = multi.clone();
        let data = command.encode().to_vec();
        let proposal = async move { proposer.propose(group, data).await };
        if request.acks == Acks::None {
            tokio::spawn(proposal);
            return Ok(ProduceResponse {
                base_offset: -1,
                last_offset: -1,
                log_append_time: append_time,
            });
        }
        let started = std::time::Instant::now();
        let response = tokio::time::timeout(request.timeout, proposal)
            .await
            .map_err(|_| ClusterError::RequestTimedOut)?
            .map_err(|e| ClusterError::from_replication(e, &request.topic, request.partition))?;
        self.inner.produce_latency.record(started.elapsed());
        let appended = decode_append_response(&response)?;
        Ok(ProduceResponse {
            base_offset: appended.base_offset as i64,
            last_offset: appended.last_offset as i64,
            log_append_time: appended.log_append_time,
        })
    }

    /// Reads a partition led by this node from `offset`, never past the high
    /// watermark; with nothing to return yet, waits up to `max_wait` for data.
    ///
    /// # Errors
    /// `NotLeaderOrFollower`, `UnknownTopicOrPartition`, `OffsetOutOfRange`.
    pub async fn fetch(&self, request: FetchRequest) -> Result<FetchResponse> {
        let (group, reader) = self.local_reader(&request.topic, request.partition)?;
        if !self.inner.multi.is_leader(group) {
            return Err(self.not_leader(&request.topic, request.partition, group));
        }
        let mut result = reader.fetch(request.offset, request.max_bytes)?;
        if result.batches.is_empty()
            && !request.max_wait.is_zero()
            && request.offset >= result.high_watermark
        {
            match reader.wait_for(request.offset, request.max_wait).await {
                Ok(_) => result = reader.fetch(request.offset, request.max_bytes)?,
                Err(PartitionError::WaitTimeout { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(FetchResponse {
            batches: result
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
            high_watermark: result.high_watermark,
            log_start_offset: result.log_start_offset,
        })
    }

    /// Looks up an offset of a partition hosted on this node: earliest, latest (the
    /// high watermark) or the first at or after a timestamp (`None` when no record is).
    ///
    /// # Errors
    /// `UnknownTopicOrPartition`, `NotLeaderOrFollower` when not hosted here.
    pub fn list_offsets(
        &self,
        topic: &str,
        partition: u32,
        query: OffsetQuery,
    ) -> Result<Option<u64>> {
        let (_, reader) = self.local_reader(topic, partition)?;
        let spec = match query {
            OffsetQuery::Earliest => raft_fsm::OffsetSpec::Earliest,
            OffsetQuery::Latest => raft_fsm::OffsetSpec::Latest,
            OffsetQuery::Timestamp(ts) => raft_fsm::OffsetSpec::Timestamp(ts),
        };
        Ok(reader.list_offsets(spec)?.offset)
    }

    /// Commits a consumer group's offsets (replicated in the metadata group).
    ///
    /// # Errors
    /// `NotController`, `UnknownTopicOrPartition`.
    pub async fn commit_offsets(&self, group: &str, offsets: &[(String, u32, i64)]) -> Result<()> {
        if !self.inner.multi.is_leader(METADATA_GROUP) {
            return Err(ClusterError::NotController {
                leader: self.controller(),
            });
        }
        let commits = offsets
            .iter()
            .map(|(topic, partition, offset)| OffsetCommit {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
                leader_epoch: None,
                metadata: String::new(),
            })
            .collect();
        self.propose_metadata(MetadataCommand::commit_offsets(group, commits, now_ms()))
            .await?;
        Ok(())
    }

    /// A consumer group's committed offset, from this node's catalogue.
    pub fn committed_offset(&self, group: &str, topic: &str, partition: u32) -> Option<i64> {
        self.catalog()
            .committed_offset(group, topic, partition)
            .map(|c| c.offset)
    }

    /// Every partition and who leads it.
    pub fn leaders(&self) -> Vec<PartitionDescription> {
        self.list_topics()
            .into_iter()
            .flat_map(|t| t.partitions)
            .collect()
    }

    /// The registered nodes.
    pub fn nodes(&self) -> Vec<NodeDescription> {
        self.catalog()
            .nodes
            .values()
            .map(|n| NodeDescription {
                id: n.node_id,
                raft_address: n.raft_address.clone(),
                client_address: n.client_address.clone(),
                rack: n.rack.clone(),
            })
            .collect()
    }

    /// A summary: nodes, partitions and leaders, and this node's groups.
    pub fn status(&self) -> ClusterStatus {
        let metrics = self.inner.multi.metrics();
        let wal = self.inner.engine.stats();
        let local_partitions = self
            .inner
            .partitions
            .read()
            .iter()
            .map(|(&group_id, p)| LocalPartitionStatus {
                topic: p.topic.clone(),
                partition: p.partition,
                group_id,
                leader: self.inner.multi.is_leader(group_id),
                high_watermark: p.reader.high_watermark(),
                log_start_offset: p.reader.log_start_offset(),
            })
            .collect();
        ClusterStatus {
            node_id: self.node_id(),
            controller: self.controller(),
            nodes: self.nodes(),
            partitions: self.leaders(),
            local_groups: metrics.groups,
            local_leaders: metrics.leaders,
            local_hibernated: metrics.hibernated,
            local_partitions,
            wal_syncs: wal.syncs,
            wal_bytes_written: wal.bytes_written,
            wal_sync_max_micros: wal.max_sync_nanos / 1_000,
            wal_slow_syncs: wal.slow_syncs,
        }
    }
}
