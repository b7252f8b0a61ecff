//! Where the controller puts the replicas of a new topic's partitions.
//!
//! Nodes are ordered so that neighbours sit in different racks (racks alternate),
//! then partition `p` takes `replication_factor` consecutive nodes starting at
//! `start + p`. Consecutive partitions therefore start on different nodes (the first
//! replica is the preferred leader, so leadership spreads evenly), and with at least
//! as many racks as replicas, no partition has two replicas in one rack.

use std::collections::BTreeMap;

use crate::NodeId;

/// One node as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The node.
    pub id: NodeId,
    /// Its rack, if known.
    pub rack: Option<String>,
}

/// Replica lists for `partitions` partitions. `start` shifts the first partition's
/// leader (the controller passes the number of partitions that exist already, so
/// successive topics do not all start on the same node).
///
/// Returns `None` when there are fewer nodes than `replication_factor`.
pub fn assign(
    nodes: &[Candidate],
    partitions: u32,
    replication_factor: u32,
    start: usize,
) -> Option<Vec<Vec<NodeId>>> {
    let rf = replication_factor as usize;
    if rf == 0 || nodes.len() < rf {
        return None;
    }
    let order = rack_alternating(nodes);
    let n = order.len();
    Some(
        (0..partitions as usize)
            .map(|p| (0..rf).map(|i| order[(start + p + i) % n]).collect())
            .collect(),
    )
}

/// Node ids ordered so racks alternate: first node of each rack, then the second of
/// each, and so on (racks and nodes in id order; nodes without a rack form one rack).
fn rack_alternating(nodes: &[Candidate]) -> Vec<NodeId> {
    let mut racks: BTreeMap<Option<&str>, Vec<NodeId>> = BTreeMap::new();
    for node in nodes {
        racks.entry(node.rack.as_deref()).or_default().push(node.id);
    }
    for ids in racks.values_mut() {
        ids.sort_unstable();
    }
    let longest = racks.values().map(Vec::len).max().unwrap_or(0);
    let mut order = Vec::with_capacity(nodes.len());
    for i in 0..longest {
        for ids in racks.values() {
            if let Some(&id) = ids.get(i) {
                order.push(id);
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn nodes(racks: &[Option<&str>]) -> Vec<Candidate> {
        racks
            .iter()
            .enumerate()
            .map(|(i, r)| Candidate {
                id: i as u64 + 1,
                rack: r.map(str::to_owned),
            })
            .collect()
    }

    #[test]
    fn leaders_and_replicas_spread_evenly() {
        let plan = assign(&nodes(&[None, None, None]), 6, 3, 0).unwrap();
        let mut leaders = BTreeMap::new();
        let mut replicas = BTreeMap::new();
        for r in &plan {
            assert_eq!(
                r.iter().collect::<BTreeSet<_>>().len(),
                3,
                "distinct replicas: {r:?}"
            );
            *leaders.entry(r[0]).or_insert(0) += 1;
            for n in r {
                *replicas.entry(*n).or_insert(0) += 1;
            }
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
        assert_eq!(
            replicas.values().copied().collect::<Vec<_>>(),
            vec![6, 6, 6]
        );
    }

    #[test]
    fn replicas_land_in_distinct_racks() {
        let cluster = nodes(&[
            Some("a"),
            Some("a"),
            Some("b"),
            Some("b"),
            Some("c"),
            Some("c"),
        ]);
        let rack = |id: NodeId| cluster[id as usize - 1].rack.clone();
        for start in 0..6 {
            for r in assign(&cluster, 12, 3, start).unwrap() {
                let racks: BTreeSet<_> = r.iter().map(|&n| rack(n)).collect();
                assert_eq!(racks.len(), 3, "replicas {r:?} share a rack");
            }
        }
    }

    #[test]
    fn too_few_nodes_is_refused() {
        assert!(assign(&nodes(&[None, None]), 1, 3, 0).is_none());
        assert!(assign(&nodes(&[None]), 1, 0, 0).is_none());
    }
}
