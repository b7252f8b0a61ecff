//! Protocol messages to API values.

use crate::api::{
    ClusterStatus, LocalPartitionStatus, NodeDescription, PartitionDescription, TopicDescription,
};
use crate::service::proto;

pub(super) fn topic_from_proto(t: proto::Topic) -> TopicDescription {
    TopicDescription {
        name: t.name,
        topic_id: t.topic_id.to_vec(),
        replication_factor: t.replication_factor,
        partitions: t.partitions.into_iter().map(partition_from_proto).collect(),
        configs: t.configs.into_iter().collect(),
    }
}

fn partition_from_proto(p: proto::Partition) -> PartitionDescription {
    PartitionDescription {
        topic: p.topic,
        partition: p.partition,
        group_id: p.group_id,
        replicas: p.replicas,
        leader: (p.leader != 0).then_some(p.leader),
    }
}

pub(super) fn status_from_proto(s: proto::StatusReply) -> ClusterStatus {
    ClusterStatus {
        node_id: s.node_id,
        controller: (s.controller != 0).then_some(s.controller),
        nodes: s
            .nodes
            .into_iter()
            .map(|n| NodeDescription {
                id: n.id,
                raft_address: n.raft_address,
                client_address: n.client_address,
                rack: (!n.rack.is_empty()).then_some(n.rack),
            })
            .collect(),
        partitions: s.partitions.into_iter().map(partition_from_proto).collect(),
        local_groups: s.local_groups,
        local_leaders: s.local_leaders,
        local_hibernated: s.local_hibernated,
        local_partitions: s
            .local_partitions
            .into_iter()
            .map(|p| LocalPartitionStatus {
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
    }
}
