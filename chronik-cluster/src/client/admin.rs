//! Replica administration: reassigning partitions and the raft steps it takes.

use crate::api::{PartitionRaftStatus, ReplicaChange};
use crate::service::proto;
use crate::NodeId;

use super::{check, ChronikClient, ClientResult, Target};

impl ChronikClient {
    /// Moves a partition to `replicas` (the controller orchestrates: learners, catch-up,
    /// a joint-consensus swap, then the old replicas go).
    ///
    /// # Errors
    /// The controller's refusal, or `GaveUp`.
    pub async fn reassign_partition(
        &self,
        topic: &str,
        partition: u32,
        replicas: Vec<NodeId>,
    ) -> ClientResult<()> {
        let wire = proto::ReassignRequest {
            topic: topic.to_owned(),
            partition,
            replicas,
        };
        self.with_retry(Target::Controller, |mut rpc, address| {
            let wire = wire.clone();
            async move {
                let reply = rpc
                    .reassign_partition(wire)
                    .await
                    .map_err(|s| self.rpc_error(&address, s))?;
                check(Some(reply.into_inner()))
            }
        })
        .await
    }

    /// One membership step of a partition's raft group, on its leader.
    ///
    /// # Errors
    /// The leader's refusal, or `GaveUp`.
    pub async fn change_replicas(
        &self,
        topic: &str,
        partition: u32,
        changes: Vec<ReplicaChange>,
    ) -> ClientResult<()> {
        let changes = changes
            .into_iter()
            .map(|c| match c {
                ReplicaChange::AddVoter(node) => proto::ReplicaChange { kind: 1, node },
                ReplicaChange::AddLearner(node) => proto::ReplicaChange { kind: 2, node },
                ReplicaChange::Remove(node) => proto::ReplicaChange { kind: 3, node },
            })
            .collect();
        let wire = proto::ChangeReplicasRequest {
            topic: topic.to_owned(),
            partition,
            changes,
        };
        self.with_retry(
            Target::Leader(topic.to_owned(), partition),
            |mut rpc, address| {
                let wire = wire.clone();
                async move {
                    let reply = rpc
                        .change_replicas(wire)
                        .await
                        .map_err(|s| self.rpc_error(&address, s))?;
                    check(Some(reply.into_inner()))
                }
            },
        )
        .await
    }

    /// A partition's raft members and replication progress, from its leader.
    ///
    /// # Errors
    /// `GaveUp` when no leader answers.
    pub async fn partition_status(
        &self,
        topic: &str,
        partition: u32,
    ) -> ClientResult<PartitionRaftStatus> {
        let wire = proto::PartitionStatusRequest {
            topic: topic.to_owned(),
            partition,
        };
        self.with_retry(
            Target::Leader(topic.to_owned(), partition),
            |mut rpc, address| {
                let wire = wire.clone();
                async move {
                    let reply = rpc
                        .partition_status(wire)
                        .await
                        .map_err(|s| self.rpc_error(&address, s))?
                        .into_inner();
                    check(reply.outcome)?;
                    Ok(PartitionRaftStatus {
                        voters: reply.voters,
                        learners: reply.learners,
                        commit: reply.commit,
                        matched: reply.matched.into_iter().collect(),
                    })
                }
            },
        )
        .await
    }
}
