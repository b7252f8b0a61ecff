//! Administrative operations during the workload: leader transfers, partition
//! reassignments (add a replica as learner, promote it, remove an old one, delete it
//! there) and new partitions. One runs at a time; each is a future the loop polls.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use raft_multi::{Error, GroupId, MembershipChange, MultiRaft};
use raft_transport::NodeId;
use rand::seq::SliceRandom;
use rand::Rng;

use super::task::Pending;
use super::{Sim, SimError};

/// How an administrative operation ended.
pub(crate) enum AdminDone {
    /// Nothing for the simulation to update.
    Nothing,
    /// `added` replaced `removed` in `group`.
    Reassigned { group: GroupId, removed: NodeId },
}

pub(crate) type AdminTask = Pending<Result<AdminDone, String>>;

/// Returns `Pending` once, so a loop in a future waits one step.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

async fn next_step() {
    YieldOnce(false).await
}

/// The handle of the node that some node believes leads `group`.
fn leader(handles: &[(NodeId, MultiRaft)], group: GroupId) -> Option<MultiRaft> {
    handles.iter().find_map(|(_, multi)| {
        let leader = multi.leader_of(group)?;
        handles
            .iter()
            .find(|(id, _)| *id == leader)
            .map(|(_, m)| m.clone())
    })
}

/// Applies one membership change through whoever leads, retrying while leadership
/// moves or another change is in flight (bounded).
async fn change(
    handles: &[(NodeId, MultiRaft)],
    group: GroupId,
    step: MembershipChange,
) -> Result<(), String> {
    for _ in 0..200 {
        let Some(multi) = leader(handles, group) else {
            next_step().await;
            continue;
        };
        match multi.change_membership(group, vec![step]).await {
            Ok(_) => return Ok(()),
            Err(
                Error::NotLeader { .. }
                | Error::ChangeInProgress { .. }
                | Error::Busy { .. }
                | Error::ProposalDropped { .. }
                | Error::Superseded { .. },
            ) => {
                for _ in 0..5 {
                    next_step().await;
                }
            }
            Err(error) => return Err(format!("{step:?}: {error}")),
        }
    }
    Err(format!("{step:?}: no leader accepted it"))
}

/// Moves `group` from `remove` to `add` (whose replica already waits to join).
async fn reassign(
    handles: Vec<(NodeId, MultiRaft)>,
    group: GroupId,
    add: NodeId,
    remove: NodeId,
) -> Result<AdminDone, String> {
    change(&handles, group, MembershipChange::AddLearner(add)).await?;
    // Promote once the learner has caught up with the leader's log; a learner that
    // does not catch up is left a learner (the reassignment stops there).
    let mut caught_up = false;
    for _ in 0..300 {
        let Some(multi) = leader(&handles, group) else {
            next_step().await;
            continue;
        };
        let status = multi.status(group).await.map_err(|e| e.to_string())?;
        let matched = status
            .matched
            .iter()
            .find(|(n, _)| *n == add)
            .map(|(_, m)| *m);
        if matched.is_some_and(|m| m + 2 >= status.last_index) {
            caught_up = true;
            break;
        }
        next_step().await;
    }
    if !caught_up {
        return Err(format!(
            "learner {add} of partition {group} did not catch up"
        ));
    }
    change(&handles, group, MembershipChange::AddVoter(add)).await?;
    change(&handles, group, MembershipChange::Remove(remove)).await?;
    if let Some((_, multi)) = handles.iter().find(|(id, _)| *id == remove) {
        multi.remove_group(group).await.map_err(|e| e.to_string())?;
    }
    Ok(AdminDone::Reassigned {
        group,
        removed: remove,
    })
}

impl Sim {
    fn handles(&self) -> Vec<(NodeId, MultiRaft)> {
        self.nodes
            .iter()
            .filter_map(|n| n.up.as_ref().map(|r| (n.id, r.multi.clone())))
            .collect()
    }

    fn hosts(&self, group: GroupId) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|n| {
                n.up.as_ref()
                    .is_some_and(|r| r.readers.contains_key(&group))
            })
            .map(|n| n.id)
            .collect()
    }

    /// Polls the operation in flight, or (with `start`) maybe starts one.
    pub(crate) fn admin_step(&mut self, start: bool) -> Result<(), SimError> {
        if let Some(task) = &mut self.admin {
            match task.poll() {
                Some(Ok(AdminDone::Reassigned { group, removed })) => {
                    self.admin = None;
                    self.stats.reassignments += 1;
                    self.left.insert((group, removed));
                    self.trace(format_args!("reassigned {group} removed {removed}"));
                    if let Some(node) = self.nodes.iter_mut().find(|n| n.id == removed) {
                        node.drop_group(group);
                    }
                }
                Some(Ok(AdminDone::Nothing)) => self.admin = None,
                Some(Err(reason)) => {
                    self.trace(format_args!("admin aborted {reason}"));
                    self.admin = None;
                    self.stats.admin_aborted += 1;
                    tracing::debug!(%reason, "administrative operation aborted");
                }
                None => {}
            }
            return Ok(());
        }
        if !start || !self.config.admin || !self.rng.random_bool(0.01) {
            return Ok(());
        }
        let groups: Vec<GroupId> = self.groups.keys().copied().collect();
        let group = groups[self.rng.random_range(0..groups.len())];
        match self.rng.random_range(0..10) {
            0..=4 => self.start_transfer(group),
            5..=7 if self.nodes.len() > 3 => self.start_reassign(group)?,
            _ if self.groups.len() < self.config.partitions as usize + 2 => {
                self.create_partition()?
            }
            _ => {}
        }
        Ok(())
    }

    fn start_transfer(&mut self, group: GroupId) {
        let handles = self.handles();
        let Some((leader_id, multi)) = handles
            .iter()
            .find(|(id, m)| m.leader_of(group) == Some(*id))
            .cloned()
        else {
            return;
        };
        let others: Vec<NodeId> = self
            .hosts(group)
            .into_iter()
            .filter(|n| *n != leader_id)
            .collect();
        if others.is_empty() {
            return;
        }
        let to = others[self.rng.random_range(0..others.len())];
        self.stats.transfers += 1;
        let (task, done) = Pending::start(
            async move {
                multi
                    .transfer_leader(group, to)
                    .await
                    .map(|()| AdminDone::Nothing)
                    .map_err(|e| e.to_string())
            },
            self.now,
        );
        if done.is_none() {
            self.admin = Some(task);
        }
    }

    fn start_reassign(&mut self, group: GroupId) -> Result<(), SimError> {
        let hosts = self.hosts(group);
        let candidates: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|n| n.up.is_some() && !hosts.contains(&n.id) && !n.has_hosted(group))
            .map(|n| n.id)
            .collect();
        if candidates.is_empty() || hosts.len() < 3 {
            return Ok(());
        }
        let add = candidates[self.rng.random_range(0..candidates.len())];
        let remove = hosts[self.rng.random_range(0..hosts.len())];
        let now = self.now;
        if let Some(node) = self.nodes.iter_mut().find(|n| n.id == add) {
            node.add_group(group, None, now)?;
        }
        self.joined.insert((group, add));
        self.trace(format_args!("reassign {group} add {add} remove {remove}"));
        let handles = self.handles();
        let (task, done) = Pending::start(reassign(handles, group, add, remove), now);
        match done {
            Some(_) => {}
            None => self.admin = Some(task),
        }
        Ok(())
    }

    /// Creates a partition on three random nodes; nodes that are down get it when
    /// they restart (as a controller reconciling assignments would do).
    pub(crate) fn create_partition(&mut self) -> Result<(), SimError> {
        let group = self.groups.keys().next_back().map_or(1, |g| g + 1);
        let mut ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        ids.shuffle(&mut self.rng);
        let mut voters: Vec<NodeId> = ids.into_iter().take(3).collect();
        voters.sort_unstable();
        let now = self.now;
        for &id in &voters {
            let Some(node) = self.nodes.iter_mut().find(|n| n.id == id) else {
                continue;
            };
            // A node that is down gets it when it restarts.
            if node.up.is_some() {
                node.add_group(group, Some(voters.clone()), now)?;
            }
        }
        self.groups.insert(group, voters);
        self.add_producers(group);
        self.stats.partitions_created += 1;
        Ok(())
    }
}
