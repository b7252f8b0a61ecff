//! [`MultiRaft`]: the handle through which a node drives all its groups.

use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use parking_lot::Mutex;
use raft::eraftpb::ConfState;
use raft_storage::LogEngine;
use raft_transport::{NodeId, Transport};
use tokio::sync::oneshot;

use crate::command::Command;
use crate::config::MultiConfig;
use crate::error::{Error, Result};
use crate::handler::Inbound;
use crate::leaders::LeaderTable;
use crate::metrics::{Metrics, MultiMetrics};
use crate::router::Router;
use crate::types::{GroupSpec, GroupStatus, MembershipChange};
use crate::worker::{Shared, Worker};
use crate::GroupId;

/// The scheduler of one node: a fixed pool of worker threads that own every raft group
/// hosted here. Cheap to clone; every clone drives the same workers.
///
/// Calls never block on the network or the disk: they queue a command for the worker
/// that owns the group and await its answer. A full mailbox answers `Busy` at once.
#[derive(Clone)]
pub struct MultiRaft {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: NodeId,
    router: Router,
    metrics: Arc<Metrics>,
    leaders: Arc<LeaderTable>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Driven by a [`crate::Driver`] instead of threads.
    manual: bool,
}

impl MultiRaft {
    /// Starts the workers and registers the scheduler as the transport's inbound handler.
    ///
    /// # Errors
    /// An invalid configuration, or a worker thread that could not be started.
    pub fn start(
        config: MultiConfig,
        engine: LogEngine,
        transport: Arc<dyn Transport>,
    ) -> Result<MultiRaft> {
        let (multi, workers) = Self::assemble(config, engine, transport, false)?;
        let mut threads = Vec::with_capacity(workers.len());
        for worker in workers {
            let name = format!("raft-worker-{}-{}", multi.inner.node_id, threads.len());
            match std::thread::Builder::new()
                .name(name)
                .spawn(move || worker.run())
            {
                Ok(handle) => threads.push(handle),
                Err(error) => {
                    multi.inner.router.broadcast(|| Command::Shutdown);
                    return Err(Error::Storage(raft_storage::Error::from(error)));
                }
            }
        }
        *multi.inner.threads.lock() = threads;
        Ok(multi)
    }

    /// Starts a scheduler without threads: its workers run only when the caller polls
    /// the returned [`Driver`](crate::Driver), so one thread can drive many nodes in a reproducible
    /// order (deterministic simulation). Snapshot restores also run in those polls.
    ///
    /// # Errors
    /// An invalid configuration.
    pub fn start_manual(
        config: MultiConfig,
        engine: LogEngine,
        transport: Arc<dyn Transport>,
    ) -> Result<(MultiRaft, crate::Driver)> {
        let (multi, workers) = Self::assemble(config, engine, transport, true)?;
        Ok((multi, crate::Driver::new(workers)))
    }

    /// Builds the handle and the workers, and registers the inbound handler.
    fn assemble(
        config: MultiConfig,
        engine: LogEngine,
        transport: Arc<dyn Transport>,
        manual: bool,
    ) -> Result<(MultiRaft, Vec<Worker>)> {
        config.validate()?;
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::default());
        let leaders = Arc::new(LeaderTable::default());
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..config.workers)
            .map(|_| crossbeam_channel::bounded(config.mailbox_capacity))
            .unzip();
        let router = Router::new(senders, Arc::clone(&metrics));
        let shared = Shared {
            config: Arc::clone(&config),
            engine,
            transport: Arc::clone(&transport),
            router: router.clone(),
            metrics: Arc::clone(&metrics),
            leaders: Arc::clone(&leaders),
            logger: crate::logger::raft_logger(),
            room: crate::worker::Room::default(),
        };
        let workers = receivers
            .into_iter()
            .enumerate()
            .map(|(index, mailbox)| {
                if manual {
                    Worker::manual(index, shared.clone(), mailbox)
                } else {
                    Worker::new(index, shared.clone(), mailbox)
                }
            })
            .collect();
        transport.set_handler(Arc::new(Inbound {
            router: router.clone(),
        }));
        let multi = MultiRaft {
            inner: Arc::new(Inner {
                node_id: config.node_id,
                router,
                metrics,
                leaders,
                threads: Mutex::new(Vec::new()),
                manual,
            }),
        };
        Ok((multi, workers))
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    async fn call<T>(
        &self,
        group: GroupId,
        make: impl FnOnce(crate::command::Reply<T>) -> Command,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let router = &self.inner.router;
        router.send(router.owner(group), make(tx), group)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Hosts a replica of a group: bootstraps a new group with `spec.voters`, resumes one
    /// found in the log, or waits to join (`GroupSpec::joining`). Returns once the
    /// replica's initial state is durable.
    ///
    /// # Errors
    /// `GroupExists`, `StateMachineBehindLog`, storage errors.
    pub async fn create_group(&self, spec: GroupSpec) -> Result<()> {
        let group = spec.group_id;
        self.call(group, |reply| Command::Create {
            spec: Box::new(spec),
            reply,
        })
        .await
    }

    /// Destroys this node's replica of `group` and its raft state. Callers still waiting
    /// on it get `Unknown`.
    ///
    /// # Errors
    /// `GroupNotFound`.
    pub async fn remove_group(&self, group: GroupId) -> Result<()> {
        self.call(group, |reply| Command::Remove { group, reply })
            .await
    }

    /// Proposes `data` to the group and returns the state machine's response once the
    /// entry is committed and applied on this (leader) node.
    ///
    /// # Correctness
    /// The answer is tied to the entry's (term, index): if another leader overwrites
    /// the entry, the caller gets `Superseded`, never a false success.
    ///
    /// # Errors
    /// `NotLeader { leader }` on a follower, `Busy` under overload, `Superseded`,
    /// `Unknown` when the outcome cannot be known.
    pub async fn propose(&self, group: GroupId, data: Vec<u8>) -> Result<Bytes> {
        self.call(group, |reply| Command::Propose { group, data, reply })
            .await
    }

    /// Linearizable read barrier (ReadIndex): returns once this replica has applied
    /// everything committed before the call; then the state machine may be read locally.
    /// Reads arriving in one round share one ReadIndex round trip.
    ///
    /// # Errors
    /// `NotLeader` when no leader is known or leadership changed meanwhile (retry).
    pub async fn read_index(&self, group: GroupId) -> Result<u64> {
        self.call(group, |reply| Command::ReadIndex { group, reply })
            .await
    }

    /// Changes the group's membership: one step as a simple change, several with joint
    /// consensus (left automatically). One change at a time per group. Returns the
    /// configuration once the change is applied on the leader. A leader asked to remove
    /// itself first hands leadership to a voter that keeps up and answers `NotLeader`
    /// naming it: retry there.
    ///
    /// # Errors
    /// `NotLeader`, `ChangeInProgress`, `InvalidChange`.
    pub async fn change_membership(
        &self,
        group: GroupId,
        changes: Vec<MembershipChange>,
    ) -> Result<ConfState> {
        self.call(group, |reply| Command::ChangeMembership {
            group,
            changes,
            reply,
        })
        .await
    }

    /// Asks the leader to hand leadership to `to` (returns once asked, not when done).
    ///
    /// # Errors
    /// `NotLeader` when called on a follower.
    pub async fn transfer_leader(&self, group: GroupId, to: NodeId) -> Result<()> {
        self.call(group, |reply| Command::TransferLeader { group, to, reply })
            .await
    }

    /// Starts an election for the group on this node now (for a fast first election).
    ///
    /// # Errors
    /// `GroupNotFound`.
    pub async fn campaign(&self, group: GroupId) -> Result<()> {
        self.call(group, |reply| Command::Campaign { group, reply })
            .await
    }

    /// The state of this node's replica of `group`.
    ///
    /// # Errors
    /// `GroupNotFound`.
    pub async fn status(&self, group: GroupId) -> Result<GroupStatus> {
        self.call(group, |reply| Command::Status { group, reply })
            .await
    }

    /// The state of every replica on this node, ordered by group id.
    pub async fn statuses(&self) -> Vec<GroupStatus> {
        let router = &self.inner.router;
        let mut waits = Vec::with_capacity(router.workers());
        for index in 0..router.workers() {
            let (tx, rx) = oneshot::channel();
            if router
                .send(index, Command::AllStatus { reply: tx }, 0)
                .is_ok()
            {
                waits.push(rx);
            }
        }
        let mut all = Vec::new();
        for rx in waits {
            if let Ok(list) = rx.await {
                all.extend(list);
            }
        }
        all.sort_by_key(|s| s.group_id);
        all
    }

    /// Advances every awake group by one tick. The owner calls this at a fixed
    /// interval; the scheduler reads no clock itself.
    pub fn tick(&self) {
        self.inner.router.broadcast(|| Command::Tick);
    }

    /// The leader of `group` as this node last saw it, without asking the worker
    /// (it may be stale by the time the caller uses it: a leader answers `NotLeader`
    /// when it no longer leads).
    pub fn leader_of(&self, group: GroupId) -> Option<NodeId> {
        self.inner.leaders.get(group)
    }

    /// True when this node's replica of `group` is, as last seen, the leader.
    pub fn is_leader(&self, group: GroupId) -> bool {
        self.leader_of(group) == Some(self.inner.node_id)
    }

    /// How many groups `node` leads, as this node sees them.
    pub fn groups_led_by(&self, node: NodeId) -> usize {
        self.inner.leaders.count_led_by(node)
    }

    /// Counters and gauges.
    pub fn metrics(&self) -> MultiMetrics {
        self.inner.metrics.snapshot()
    }

    /// Stops the workers after the commands already queued; waiting callers get
    /// `Stopped`. Idempotent.
    pub fn shutdown(&self) {
        if self.inner.manual {
            // The driver stops at its next poll.
            self.inner.router.broadcast(|| Command::Shutdown);
            return;
        }
        let threads = std::mem::take(&mut *self.inner.threads.lock());
        if threads.is_empty() {
            return;
        }
        self.inner.router.broadcast(|| Command::Shutdown);
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let threads = std::mem::take(&mut *self.threads.lock());
        if !threads.is_empty() {
            self.router.broadcast(|| Command::Shutdown);
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}
