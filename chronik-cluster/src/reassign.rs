//! Moving a partition to a new replica set without losing availability: add the new
//! replicas as learners, let them catch up, switch voters with one joint-consensus
//! change, then drop the old replicas from the catalogue (their nodes destroy them).

use raft_multi::MembershipChange;

use crate::api::{PartitionRaftStatus, ReplicaChange};
use crate::cluster::Cluster;
use crate::error::{ClusterError, Result};

impl Cluster {
    /// One membership step of a partition led by this node.
    ///
    /// # Errors
    /// `NotLeaderOrFollower` (with a hint) when another node leads it; the raft layer's
    /// refusal (a change in progress, an invalid change).
    pub async fn change_replicas(
        &self,
        topic: &str,
        partition: u32,
        changes: Vec<ReplicaChange>,
    ) -> Result<()> {
        let group = self.group_of(topic, partition)?;
        let changes = changes
            .into_iter()
            .map(|c| match c {
                ReplicaChange::AddVoter(n) => MembershipChange::AddVoter(n),
                ReplicaChange::AddLearner(n) => MembershipChange::AddLearner(n),
                ReplicaChange::Remove(n) => MembershipChange::Remove(n),
            })
            .collect();
        self.multi()
            .change_membership(group, changes)
            .await
            .map(|_| ())
            .map_err(|e| ClusterError::from_replication(e, topic, partition))
    }

    /// The raft members and replication progress of a partition led by this node.
    ///
    /// # Errors
    /// `NotLeaderOrFollower` when this node does not lead it.
    pub async fn partition_raft_status(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<PartitionRaftStatus> {
        let group = self.group_of(topic, partition)?;
        let status = self
            .multi()
            .status(group)
            .await
            .map_err(|e| ClusterError::from_replication(e, topic, partition))?;
        if status.matched.is_empty() {
            return Err(ClusterError::NotLeaderOrFollower {
                topic: topic.to_owned(),
                partition,
                leader: status.leader,
            });
        }
        Ok(PartitionRaftStatus {
            voters: status.voters,
            learners: status.learners,
            commit: status.commit,
            matched: status.matched,
        })
    }

    /// Moves a partition to `target` replicas (run on the controller). The first target
    /// replica becomes the preferred leader.
    ///
    /// # Errors
    /// `NotController`, `UnknownTopicOrPartition`, `InvalidRequest`, `RequestTimedOut`
    /// when a step does not complete.
    #[cfg(feature = "grpc")]
    pub async fn reassign_partition(
        &self,
        topic: &str,
        partition: u32,
        target: Vec<crate::NodeId>,
    ) -> Result<()> {
        use std::collections::BTreeSet;
        use std::time::Duration;

        use raft_fsm::MetadataCommand;

        use crate::client::ChronikClient;
        use crate::error::InvalidRequest;
        use crate::{NodeId, METADATA_GROUP};

        /// How long a step may wait for replicas to catch up or for leadership.
        const STEP_TIMEOUT: Duration = Duration::from_secs(60);

        if !self.multi().is_leader(METADATA_GROUP) {
            return Err(ClusterError::NotController {
                leader: self.controller(),
            });
        }
        let distinct: BTreeSet<NodeId> = target.iter().copied().collect();
        if target.is_empty() || distinct.len() != target.len() {
            return Err(ClusterError::InvalidRequest(InvalidRequest::BadReplicaSet));
        }
        let current = self
            .describe_topic(topic)?
            .partitions
            .get(partition as usize)
            .map(|p| p.replicas.clone())
            .ok_or_else(|| ClusterError::UnknownTopicOrPartition {
                topic: topic.to_owned(),
                partition: Some(partition),
            })?;
        let adding: Vec<NodeId> = target
            .iter()
            .copied()
            .filter(|n| !current.contains(n))
            .collect();
        let removing: Vec<NodeId> = current
            .iter()
            .copied()
            .filter(|n| !distinct.contains(n))
            .collect();
        // 1. The catalogue lists old and new replicas: new nodes host empty replicas that
        //    join the group (the partition is marked altered).
        let mut union = target.clone();
        union.extend(current.iter().copied().filter(|n| !distinct.contains(n)));
        let version = self
            .propose_metadata(MetadataCommand::alter_replicas(topic, partition, union))
            .await?;
        self.await_catalog(version, STEP_TIMEOUT).await?;
        let client = ChronikClient::connect(&[self.client_address()])
            .await
            .map_err(|_| ClusterError::RequestTimedOut)?
            .with_timeout(STEP_TIMEOUT);
        let step = |e: crate::client::ClientError| {
            tracing::warn!(topic, partition, error = %e, "reassignment step failed");
            ClusterError::RequestTimedOut
        };
        // 2. New replicas join as learners and catch up.
        if !adding.is_empty() {
            let learners = adding
                .iter()
                .map(|&n| ReplicaChange::AddLearner(n))
                .collect();
            client
                .change_replicas(topic, partition, learners)
                .await
                .map_err(step)?;
            let caught_up = |status: &PartitionRaftStatus| {
                adding.iter().all(|n| {
                    status
                        .matched
                        .iter()
                        .any(|(id, m)| id == n && *m >= status.commit)
                })
            };
            await_status(&client, topic, partition, STEP_TIMEOUT, caught_up).await?;
        }
        // 3. One joint-consensus change swaps the voters.
        let mut swap: Vec<ReplicaChange> =
            adding.iter().map(|&n| ReplicaChange::AddVoter(n)).collect();
        swap.extend(removing.iter().map(|&n| ReplicaChange::Remove(n)));
        if !swap.is_empty() {
            client
                .change_replicas(topic, partition, swap)
                .await
                .map_err(step)?;
        }
        let swapped = |status: &PartitionRaftStatus| {
            let voters: BTreeSet<NodeId> = status.voters.iter().copied().collect();
            voters == distinct && status.learners.is_empty()
        };
        await_status(&client, topic, partition, STEP_TIMEOUT, swapped).await?;
        // 4. The catalogue drops the old replicas; their nodes destroy them.
        let version = self
            .propose_metadata(MetadataCommand::alter_replicas(topic, partition, target))
            .await?;
        self.await_catalog(version, STEP_TIMEOUT).await
    }
}

/// Polls the partition leader's view until `done` holds, or fails after `timeout`.
#[cfg(feature = "grpc")]
async fn await_status(
    client: &crate::client::ChronikClient,
    topic: &str,
    partition: u32,
    timeout: std::time::Duration,
    done: impl Fn(&PartitionRaftStatus) -> bool,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match client.partition_status(topic, partition).await {
            Ok(status) if done(&status) => return Ok(()),
            Ok(_) => {}
            Err(error) => tracing::debug!(topic, partition, %error, "partition status unavailable"),
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ClusterError::RequestTimedOut);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
