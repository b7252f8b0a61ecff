//! `chronik-cluster node` processes on loopback: start, SIGKILL, restart on the same
//! data dir and ports. Every child is killed when the cluster is dropped (also on panic).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chronik_cluster::client::ChronikClient;
use chronik_cluster::{ClusterStatus, NodeConfig, PeerConfig};

/// How long a node may take to answer on its client port after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One node: its config file, log file and, while it runs, its process.
struct Proc {
    id: u64,
    config: NodeConfig,
    config_path: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
}

/// A cluster of node processes under one temporary directory.
pub struct Processes {
    procs: Vec<Proc>,
    /// Kills (single nodes and whole-cluster restarts count one per node).
    pub kills: usize,
    _dir: tempfile::TempDir,
}

/// Configs of one node per entry of `quotas` on free loopback ports, data under `dir`,
/// fast ticks, and the node's write-ahead-log size limit (0: none).
pub fn configs(dir: &Path, quotas: &[u64]) -> Vec<NodeConfig> {
    let n = quotas.len();
    let ports = crate::common::free_ports(2 * n);
    let raft = |i: usize| format!("127.0.0.1:{}", ports[i]);
    let client = |i: usize| format!("127.0.0.1:{}", ports[n + i]);
    (0..n)
        .map(|i| {
            let id = i as u64 + 1;
            let mut c = NodeConfig::new(
                id,
                dir.join(format!("node-{id}")),
                raft(i).parse().unwrap(),
                client(i).parse().unwrap(),
            );
            c.raft.tick_ms = 25;
            if quotas[i] > 0 {
                c.raft.segment_bytes = quotas[i] / 8;
                c.raft.max_log_bytes = quotas[i];
            }
            c.peers = (0..n)
                .filter(|&j| j != i)
                .map(|j| PeerConfig {
                    id: j as u64 + 1,
                    raft_addr: raft(j),
                    client_addr: client(j),
                })
                .collect();
            c
        })
        .collect()
}

impl Processes {
    /// Writes the config files of one node per entry of `quotas` (its log's size limit,
    /// 0 for none) and starts them all (without waiting).
    pub fn start(quotas: &[u64]) -> Processes {
        let dir = tempfile::tempdir().unwrap();
        let procs = configs(dir.path(), quotas)
            .into_iter()
            .map(|config| {
                let id = config.node_id;
                let config_path = dir.path().join(format!("node-{id}.toml"));
                std::fs::write(&config_path, config.to_toml()).unwrap();
                Proc {
                    id,
                    config,
                    config_path,
                    log_path: dir.path().join(format!("node-{id}.log")),
                    child: None,
                }
            })
            .collect();
        let mut cluster = Processes {
            procs,
            kills: 0,
            _dir: dir,
        };
        for id in cluster.ids() {
            cluster.spawn(id);
        }
        cluster
    }

    /// Node ids, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.procs.iter().map(|p| p.id).collect()
    }

    /// Client addresses of every node.
    pub fn client_addresses(&self) -> Vec<String> {
        self.procs
            .iter()
            .map(|p| p.config.client_addr.to_string())
            .collect()
    }

    /// The client address of node `id`.
    pub fn client_address(&self, id: u64) -> String {
        self.proc(id).config.client_addr.to_string()
    }

    fn proc(&self, id: u64) -> &Proc {
        &self.procs[id as usize - 1]
    }

    fn proc_mut(&mut self, id: u64) -> &mut Proc {
        &mut self.procs[id as usize - 1]
    }

    /// Starts node `id` on its data dir and ports (its output appends to its log file).
    pub fn spawn(&mut self, id: u64) {
        let p = self.proc_mut(id);
        assert!(p.child.is_none(), "node {id} runs already");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&p.log_path)
            .unwrap();
        let binary = std::env::var_os("CHRONIK_CLUSTER_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_chronik-cluster").into());
        let child = Command::new(binary)
            .args(["node", "--config"])
            .arg(&p.config_path)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        p.child = Some(child);
    }

    /// SIGKILLs node `id` and reaps it.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.proc_mut(id).child.take() {
            // `Child::kill` sends SIGKILL on Unix: no shutdown path runs.
            let _ = child.kill();
            let _ = child.wait();
            self.kills += 1;
        }
    }

    /// Waits until node `id` answers on its client port; restarts it (bounded) if its
    /// process exited on its own (a port not yet free, say).
    pub async fn wait_up(&mut self, id: u64) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut respawns = 0;
        while Instant::now() < deadline {
            if let Some(child) = self.proc_mut(id).child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.proc_mut(id).child = None;
                    if respawns >= 3 {
                        return Err(format!("node {id} exited: {status}; {}", self.log_tail(id)));
                    }
                    respawns += 1;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    self.spawn(id);
                    continue;
                }
            }
            if status_of(&self.client_address(id), id).await.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "node {id} did not answer within {START_TIMEOUT:?}; {}",
            self.log_tail(id)
        ))
    }

    /// Waits until every node answers.
    pub async fn wait_all_up(&mut self) -> Result<(), String> {
        for id in self.ids() {
            self.wait_up(id).await?;
        }
        Ok(())
    }

    /// The last lines of node `id`'s output.
    pub fn log_tail(&self, id: u64) -> String {
        let text = std::fs::read_to_string(&self.proc(id).log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("node {id} output (tail):\n{tail}")
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for p in &mut self.procs {
            if let Some(mut child) = p.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            // Keep the data dirs and the nodes' output for a look.
            self._dir.disable_cleanup(true);
            eprintln!("node data and logs kept in {}", self._dir.path().display());
        }
    }
}

/// Node `id`'s own status, asked on its client address (None if it does not answer
/// within a second).
pub async fn status_of(address: &str, id: u64) -> Option<ClusterStatus> {
    let ask = async {
        let client = ChronikClient::connect(&[address.to_owned()]).await.ok()?;
        client.status(Some(id)).await.ok()
    };
    tokio::time::timeout(Duration::from_secs(1), ask)
        .await
        .ok()
        .flatten()
        .filter(|s| s.node_id == id)
}
