//! A cluster of scheduler nodes on the in-process network, for the tests of this crate.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use raft_multi::testing::{MemoryDisk, MemoryState, MemoryStateMachine, MemoryView};
use raft_multi::{GroupId, GroupSpec, MultiConfig, MultiRaft, NodeId, Role};
use raft_storage::{EngineConfig, LogEngine};
use raft_transport::local::LocalNetwork;

/// How long any wait in these tests may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Which log engine the nodes use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Memory,
    Wal,
}

pub struct Node {
    pub id: NodeId,
    pub multi: MultiRaft,
    pub engine: LogEngine,
    pub views: BTreeMap<GroupId, MemoryView>,
}

pub struct Cluster {
    pub net: LocalNetwork,
    pub nodes: BTreeMap<NodeId, Node>,
    /// State machine "disks", per (node, group): they survive restarts.
    pub disks: BTreeMap<(NodeId, GroupId), MemoryDisk>,
    pub groups: BTreeMap<GroupId, Vec<NodeId>>,
    dir: Option<tempfile::TempDir>,
    config: Box<dyn Fn(NodeId) -> MultiConfig + Send + Sync>,
    engine_config: Box<dyn Fn(NodeId, PathBuf) -> EngineConfig + Send + Sync>,
    ticker: Option<Ticker>,
    /// Ticks given to every node so far.
    pub ticks: Arc<AtomicU64>,
}

/// Ticks every node at a fixed interval, as a node's timer does in production.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn default_config(id: NodeId) -> MultiConfig {
    MultiConfig::new(id)
        .workers(2)
        .ticks(1, 10)
        .hibernate_after_ticks(0)
}

impl Cluster {
    pub fn new(nodes: u64, engine: Engine) -> Cluster {
        Self::with_config(nodes, engine, default_config)
    }

    pub fn with_config(
        nodes: u64,
        engine: Engine,
        config: impl Fn(NodeId) -> MultiConfig + Send + Sync + 'static,
    ) -> Cluster {
        Self::with_engines(nodes, engine, config, |_, dir| {
            EngineConfig::new(dir).segment_size(1 << 20)
        })
    }

    /// Like [`Cluster::with_config`], with each node's write-ahead-log settings from
    /// `engine_config` (given the node and its log directory).
    pub fn with_engines(
        nodes: u64,
        engine: Engine,
        config: impl Fn(NodeId) -> MultiConfig + Send + Sync + 'static,
        engine_config: impl Fn(NodeId, PathBuf) -> EngineConfig + Send + Sync + 'static,
    ) -> Cluster {
        let net = LocalNetwork::builder()
            .seed(seed())
            .auto_deliver(true)
            .direct_delivery(true)
            .build();
        let dir = (engine == Engine::Wal).then(|| tempfile::tempdir().unwrap());
        let mut cluster = Cluster {
            net,
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            groups: BTreeMap::new(),
            dir,
            config: Box::new(config),
            engine_config: Box::new(engine_config),
            ticker: None,
            ticks: Arc::new(AtomicU64::new(0)),
        };
        for id in 1..=nodes {
            cluster.start_node(id);
        }
        cluster
    }

    fn node_dir(&self, id: NodeId) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.path().join(format!("node-{id}")))
    }

    /// Starts (or restarts) node `id`; the groups it hosted are reopened from the log
    /// and their state machines from their disks.
    pub fn start_node(&mut self, id: NodeId) {
        let engine = match self.node_dir(id) {
            Some(dir) => LogEngine::open((self.engine_config)(id, dir)).unwrap(),
            None => LogEngine::in_memory(),
        };
        let multi =
            MultiRaft::start((self.config)(id), engine.clone(), self.net.endpoint(id)).unwrap();
        self.nodes.insert(
            id,
            Node {
                id,
                multi,
                engine,
                views: BTreeMap::new(),
            },
        );
        let hosted: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, members)| members.contains(&id))
            .map(|(&g, _)| g)
            .collect();
        for group in hosted {
            let voters = self.groups[&group].clone();
            self.host(id, group, voters);
        }
        self.restart_ticker();
    }

    /// Stops node `id` (its engine and disks stay, as after a clean stop or a crash that
    /// kept only synced data).
    pub fn stop_node(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.remove(&id) {
            node.multi.shutdown();
        }
        self.restart_ticker();
    }

    fn restart_ticker(&mut self) {
        self.ticker = None;
        let multis: Vec<MultiRaft> = self.nodes.values().map(|n| n.multi.clone()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let ticks = Arc::clone(&self.ticks);
        let thread = std::thread::spawn(move || {
            // Bounded: at most ten minutes of ticks, and stops when the cluster drops.
            let until = Instant::now() + Duration::from_secs(600);
            while !flag.load(Ordering::SeqCst) && Instant::now() < until {
                for m in &multis {
                    m.tick();
                }
                ticks.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        self.ticker = Some(Ticker {
            stop,
            thread: Some(thread),
        });
    }

    fn host(&mut self, node: NodeId, group: GroupId, voters: Vec<NodeId>) {
        let disk = self.disks.entry((node, group)).or_default().clone();
        let fsm = MemoryStateMachine::open(&disk);
        let view = fsm.view();
        let n = self.nodes.get_mut(&node).unwrap();
        block(
            n.multi
                .create_group(GroupSpec::new(group, voters, Box::new(fsm))),
        )
        .unwrap();
        n.views.insert(group, view);
    }

    /// Creates `group` with replicas on `voters`.
    pub fn create_group(&mut self, group: GroupId, voters: &[NodeId]) {
        self.groups.insert(group, voters.to_vec());
        for &node in voters {
            if self.nodes.contains_key(&node) {
                self.host(node, group, voters.to_vec());
            }
        }
    }

    /// Hosts a replica that joins `group` later (no initial configuration).
    pub fn add_joining_replica(&mut self, node: NodeId, group: GroupId) {
        let disk = self.disks.entry((node, group)).or_default().clone();
        let fsm = MemoryStateMachine::open(&disk);
        let view = fsm.view();
        let n = self.nodes.get_mut(&node).unwrap();
        block(
            n.multi
                .create_group(GroupSpec::joining(group, Box::new(fsm))),
        )
        .unwrap();
        n.views.insert(group, view);
        if let Some(members) = self.groups.get_mut(&group) {
            members.push(node);
        }
    }

    pub fn multi(&self, node: NodeId) -> &MultiRaft {
        &self.nodes[&node].multi
    }

    /// The node every live replica of `group` agrees leads it, if any.
    pub fn leader(&self, group: GroupId) -> Option<NodeId> {
        let mut leaders = Vec::new();
        for node in self.nodes.values() {
            if let Ok(status) = block(node.multi.status(group)) {
                if status.role == Role::Leader {
                    leaders.push((status.term, node.id));
                }
            }
        }
        leaders.sort();
        leaders.last().map(|&(_, id)| id)
    }

    pub fn wait_leader(&self, group: GroupId) -> NodeId {
        wait_until("a leader", || self.leader(group)).unwrap()
    }

    /// Proposes on the group's current leader, retrying on `NotLeader`/`Busy` until the
    /// deadline. Returns the index the command was applied at.
    pub fn propose(&self, group: GroupId, data: &[u8]) -> u64 {
        wait_until("a successful proposal", || {
            let leader = self.leader(group)?;
            let result = block_timeout(
                self.multi(leader).propose(group, data.to_vec()),
                Duration::from_secs(5),
            )?;
            match result {
                Ok(response) => MemoryStateMachine::decode_response(&response),
                Err(e) if e.is_retriable() => None,
                Err(e) => panic!("proposal failed: {e}"),
            }
        })
        .unwrap()
    }

    /// Changes `group`'s membership on its current leader, retrying on retriable
    /// errors (a new leader, a change still in progress) until the deadline.
    pub fn change_membership(
        &self,
        group: GroupId,
        changes: Vec<raft_multi::MembershipChange>,
    ) -> raft::eraftpb::ConfState {
        wait_until("a membership change", || {
            let leader = self.leader(group)?;
            match block_timeout(
                self.multi(leader).change_membership(group, changes.clone()),
                Duration::from_secs(5),
            )? {
                Ok(cs) => Some(cs),
                Err(e) if e.is_retriable() => None,
                Err(e) => panic!("membership change failed: {e}"),
            }
        })
        .unwrap()
    }

    pub fn state(&self, node: NodeId, group: GroupId) -> MemoryState {
        self.nodes[&node].views[&group].state()
    }

    /// Waits until every live replica of `group` has applied exactly the same commands
    /// and at least `min_commands` of them.
    pub fn wait_converged(&self, group: GroupId, min_commands: usize) -> Vec<(u64, bytes::Bytes)> {
        wait_until("replicas to converge", || {
            let members = self.groups.get(&group)?;
            let states: Vec<MemoryState> = members
                .iter()
                .filter(|n| {
                    self.nodes
                        .get(n)
                        .is_some_and(|node| node.views.contains_key(&group))
                })
                .map(|&n| self.state(n, group))
                .collect();
            let first = states.first()?;
            (first.commands.len() >= min_commands
                && states.iter().all(|s| s.commands == first.commands))
            .then(|| first.commands.clone())
        })
        .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.ticker = None;
        for node in self.nodes.values() {
            node.multi.shutdown();
        }
    }
}

/// The seed of this run: `SEED=` replays one.
pub fn seed() -> u64 {
    let seed = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    eprintln!("network seed {seed} (replay with SEED={seed})");
    seed
}

/// Runs a future to completion on this thread.
pub fn block<F: Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

/// Runs a future, giving up after `timeout` (the scheduler answers every call, but a
/// partitioned leader answers only when the partition heals).
pub fn block_timeout<F: Future>(future: F, timeout: Duration) -> Option<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async { tokio::time::timeout(timeout, future).await.ok() })
}

/// Polls `probe` until it returns `Some`, failing after [`DEADLINE`].
pub fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> Result<T, String> {
    let start = Instant::now();
    // Bounded by the deadline; each probe is a few mailbox round trips.
    loop {
        if let Some(value) = probe() {
            return Ok(value);
        }
        if start.elapsed() > DEADLINE {
            panic!("timed out after {DEADLINE:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
