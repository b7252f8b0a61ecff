//! The baseline driver, the shape raftify has: every replica of every group is a tokio
//! task of its own with its own `RawNode`, its own timer and its own storage (its own
//! log engine: in memory, or a write-ahead log directory of its own with a sync per
//! write), and every raft message leaves as a frame of its own. It runs over any
//! [`Transport`]: the in-process network or gRPC on loopback.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Message};
use raft::{RawNode, StateRole};
use raft_storage::{EngineConfig, LogBatch, LogEngine};
use raft_transport::{
    GroupMessage, IncomingSnapshot, MessageHandler, NodeId, PeerState, Transport,
};
use tokio::sync::{mpsc, oneshot};

use super::machine::CountingMachine;
use super::replica::{Event, Refused, Replica};
use super::{BenchError, Timing};

/// Events queued per replica before inbound messages are dropped.
const MAILBOX: usize = 4096;

/// Counters of the naive driver, shared by every task.
#[derive(Debug, Default)]
pub struct NaiveStats {
    /// Replicas that lead.
    pub leaders: AtomicI64,
    /// Raft messages sent.
    pub messages: AtomicU64,
    /// Storage writes.
    pub writes: AtomicU64,
    /// Synced storage writes.
    pub syncs: AtomicU64,
    /// Replica tasks still running.
    pub live: AtomicU64,
}

type Mailboxes = Arc<RwLock<HashMap<u64, mpsc::Sender<Event>>>>;

/// Routes each inbound message to its replica's task.
struct Inbound {
    mailboxes: Mailboxes,
}

#[async_trait::async_trait]
impl MessageHandler for Inbound {
    fn on_messages(&self, _from: NodeId, batch: Vec<GroupMessage>) {
        let mailboxes = self.mailboxes.read();
        for message in batch {
            let (Some(mailbox), Ok(decoded)) = (
                mailboxes.get(&message.group_id),
                Message::parse_from_bytes(&message.payload),
            ) else {
                continue;
            };
            // A full mailbox drops the message, as a lossy network would.
            let _ = mailbox.try_send(Event::Raft(Box::new(decoded)));
        }
    }

    fn on_peer_state(&self, _peer: NodeId, _state: PeerState) {}

    async fn on_snapshot(&self, _snapshot: IncomingSnapshot) -> Result<(), String> {
        Err("the naive driver streams no snapshots".to_owned())
    }
}

struct NaiveNode {
    id: NodeId,
    /// Commands applied on this node.
    tally: Arc<AtomicU64>,
    transport: Arc<dyn Transport>,
    mailboxes: Mailboxes,
}

/// One naive node per transport endpoint, all in this process.
pub struct NaiveCluster {
    runtime: Option<tokio::runtime::Runtime>,
    nodes: Vec<NaiveNode>,
    /// Counters of every replica.
    pub stats: Arc<NaiveStats>,
    timing: Timing,
    sync: bool,
    dir: Option<PathBuf>,
}

impl NaiveCluster {
    /// Nodes `1..=endpoints.len()` on these endpoints (endpoint `i` is node `i + 1`).
    /// `dir`: where each replica gets its own write-ahead log (memory engines if
    /// `None`); `sync`: sync each write that holds entries or a hard state.
    pub fn start(
        endpoints: Vec<Arc<dyn Transport>>,
        timing: Timing,
        dir: Option<PathBuf>,
        sync: bool,
    ) -> Result<NaiveCluster, BenchError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(timing.workers.max(1))
            .thread_name("naive-raft")
            .enable_time()
            .build()?;
        let nodes = endpoints
            .into_iter()
            .map(|transport| {
                let mailboxes: Mailboxes = Arc::default();
                transport.set_handler(Arc::new(Inbound {
                    mailboxes: Arc::clone(&mailboxes),
                }));
                NaiveNode {
                    id: transport.local_id(),
                    tally: Arc::default(),
                    transport,
                    mailboxes,
                }
            })
            .collect();
        Ok(NaiveCluster {
            runtime: Some(runtime),
            nodes,
            stats: Arc::default(),
            timing,
            sync,
            dir,
        })
    }

    fn engine(&self, node: NodeId, group: u64) -> Result<LogEngine, BenchError> {
        Ok(match &self.dir {
            Some(dir) => LogEngine::open(EngineConfig::new(
                dir.join(format!("naive-node-{node}-group-{group}")),
            ))?,
            None => LogEngine::in_memory(),
        })
    }

    /// Creates a replica of each group on every node, voters = all nodes.
    pub fn create_groups(&self, groups: std::ops::RangeInclusive<u64>) -> Result<(), BenchError> {
        let voters: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        let Some(runtime) = self.runtime.as_ref() else {
            return Err(BenchError::Check("the naive cluster is stopped".to_owned()));
        };
        let logger = raft_multi::raft_logger();
        for group in groups {
            for node in &self.nodes {
                let engine = self.engine(node.id, group)?;
                let mut cs = ConfState::default();
                cs.set_voters(voters.clone());
                let mut batch = LogBatch::new();
                batch.set_conf_state(group, &cs);
                engine.write(&mut batch, self.sync)?;
                let config = raft::Config {
                    id: node.id,
                    election_tick: self.timing.election_ticks,
                    heartbeat_tick: self.timing.heartbeat_ticks,
                    max_size_per_msg: 1024 * 1024,
                    max_inflight_msgs: 256,
                    check_quorum: true,
                    pre_vote: true,
                    max_uncommitted_size: 32 * 1024 * 1024,
                    ..Default::default()
                };
                let raw = RawNode::new(&config, engine.group(group), &logger)?;
                let (tx, rx) = mpsc::channel(MAILBOX);
                node.mailboxes.write().insert(group, tx);
                let replica = Replica {
                    group,
                    node: raw,
                    engine,
                    transport: Arc::clone(&node.transport),
                    stats: Arc::clone(&self.stats),
                    sync: self.sync,
                    machine: CountingMachine::new(&node.tally),
                    waiters: HashMap::new(),
                    next_id: 0,
                    role: StateRole::Follower,
                };
                self.stats.live.fetch_add(1, Ordering::Relaxed);
                runtime.spawn(replica.run(rx, self.timing.tick));
            }
        }
        Ok(())
    }

    /// Asks node `(group % nodes) + 1` to campaign for each group, spreading leaders.
    pub fn campaign(&self, groups: std::ops::RangeInclusive<u64>) {
        for group in groups {
            let node = &self.nodes[(group % self.nodes.len() as u64) as usize];
            if let Some(mailbox) = node.mailboxes.read().get(&group) {
                let _ = mailbox.try_send(Event::Campaign);
            }
        }
    }

    /// Groups with a leader.
    pub fn leaders(&self) -> u64 {
        self.stats.leaders.load(Ordering::Relaxed).max(0) as u64
    }

    /// Commands applied on each node.
    pub fn applied(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| n.tally.load(Ordering::Relaxed))
            .collect()
    }

    /// A handle that proposes from any task.
    pub fn proposer(&self) -> NaiveProposer {
        NaiveProposer {
            mailboxes: self
                .nodes
                .iter()
                .map(|n| Arc::clone(&n.mailboxes))
                .collect(),
        }
    }

    /// Stops every task (closing the mailboxes ends their loops), then the runtime
    /// (after 30 s at most).
    pub fn shutdown(&mut self) {
        for node in &self.nodes {
            node.mailboxes.write().clear();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.stats.live.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl Drop for NaiveCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Proposes to the naive replicas.
#[derive(Clone)]
pub struct NaiveProposer {
    mailboxes: Vec<Mailboxes>,
}

impl NaiveProposer {
    /// Proposes on node index `*hint`; a refusal moves the hint to the leader (or the
    /// next node). True once the entry is applied on the leader.
    pub async fn propose(&self, group: u64, data: Vec<u8>, hint: &mut usize) -> bool {
        let node = *hint % self.mailboxes.len();
        let mailbox = self.mailboxes[node].read().get(&group).cloned();
        let Some(mailbox) = mailbox else {
            return false;
        };
        let (tx, rx) = oneshot::channel();
        if mailbox.send(Event::Propose(data, tx)).await.is_err() {
            return false;
        }
        match rx.await {
            Ok(Ok(_index)) => true,
            Ok(Err(Refused::NotLeader(Some(leader)))) => {
                *hint = (leader as usize).saturating_sub(1);
                false
            }
            Ok(Err(_)) | Err(_) => {
                *hint = node + 1;
                false
            }
        }
    }
}
