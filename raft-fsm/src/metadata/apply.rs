//! Validation and mutation of the [`Catalog`] by metadata commands. Every
//! command is validated completely before anything changes.

use super::catalog::{valid_topic_name, Catalog, CommittedOffset, TopicInfo};
use super::command::{AlterReplicas, CommitOffsets, CreateTopic, MetadataOp, UpdateConfigs};
use crate::error::MetadataError;

impl Catalog {
    /// Applies one operation, or rejects it leaving the catalogue unchanged.
    pub(crate) fn apply_op(&mut self, op: MetadataOp) -> Result<(), MetadataError> {
        match op {
            MetadataOp::RegisterNode(node) => {
                self.nodes.insert(node.node_id, node);
            }
            MetadataOp::CreateTopic(create) => self.create_topic(create)?,
            MetadataOp::DeleteTopic(delete) => {
                if self.topics.remove(&delete.name).is_none() {
                    return Err(Self::unknown(&delete.name, None));
                }
                for group in self.consumer_offsets.values_mut() {
                    group.topics.remove(&delete.name);
                }
                self.consumer_offsets.retain(|_, g| !g.topics.is_empty());
            }
            MetadataOp::AlterReplicas(alter) => self.alter_replicas(alter)?,
            MetadataOp::UpdateConfigs(update) => self.update_configs(update)?,
            MetadataOp::CommitOffsets(commit) => self.commit_offsets(commit)?,
        }
        self.version += 1;
        Ok(())
    }

    fn create_topic(&mut self, create: CreateTopic) -> Result<(), MetadataError> {
        if !valid_topic_name(&create.name) {
            return Err(MetadataError::InvalidTopicName(create.name));
        }
        if self.topics.contains_key(&create.name) {
            return Err(MetadataError::TopicAlreadyExists(create.name));
        }
        let rf = create.replication_factor;
        if rf == 0 {
            return Err(MetadataError::InvalidReplicationFactor(rf));
        }
        if create.partitions.is_empty()
            || create
                .partitions
                .iter()
                .enumerate()
                .any(|(i, p)| p.partition as usize != i)
        {
            return Err(MetadataError::InvalidPartitions);
        }
        let mut used = self.group_ids();
        // Group 0 is reserved: raft-rs treats id 0 as "none".
        used.insert(0);
        for partition in &create.partitions {
            if partition.replicas.len() != rf as usize {
                return Err(MetadataError::InvalidReplicationFactor(rf));
            }
            self.check_replicas(&partition.replicas)?;
            if !used.insert(partition.group_id) {
                return Err(MetadataError::DuplicateGroupId(partition.group_id));
            }
        }
        let topic = TopicInfo {
            name: create.name.clone(),
            topic_id: create.topic_id,
            replication_factor: rf,
            partitions: create.partitions,
            configs: create.configs,
        };
        self.topics.insert(create.name, topic);
        Ok(())
    }

    fn alter_replicas(&mut self, alter: AlterReplicas) -> Result<(), MetadataError> {
        self.check_replicas(&alter.replicas)?;
        let unknown = || Self::unknown(&alter.topic, Some(alter.partition));
        let topic = self.topics.get_mut(&alter.topic).ok_or_else(unknown)?;
        let partition = topic
            .partitions
            .get_mut(alter.partition as usize)
            .ok_or_else(unknown)?;
        partition.replicas = alter.replicas;
        partition.altered = true;
        Ok(())
    }

    fn update_configs(&mut self, update: UpdateConfigs) -> Result<(), MetadataError> {
        let topic = self
            .topics
            .get_mut(&update.topic)
            .ok_or_else(|| Self::unknown(&update.topic, None))?;
        for key in &update.delete {
            topic.configs.remove(key);
        }
        topic.configs.extend(update.set);
        Ok(())
    }

    fn commit_offsets(&mut self, commit: CommitOffsets) -> Result<(), MetadataError> {
        for offset in &commit.offsets {
            if self.partition(&offset.topic, offset.partition).is_none() {
                return Err(Self::unknown(&offset.topic, Some(offset.partition)));
            }
        }
        let group = self.consumer_offsets.entry(commit.group).or_default();
        for offset in commit.offsets {
            let committed = CommittedOffset {
                offset: offset.offset,
                leader_epoch: offset.leader_epoch,
                metadata: offset.metadata,
                commit_timestamp: commit.commit_timestamp_ms,
            };
            group
                .topics
                .entry(offset.topic)
                .or_default()
                .partitions
                .insert(offset.partition, committed);
        }
        Ok(())
    }
}
