//! Node configuration: a TOML file, then `CHRONIK_*` environment variables, then
//! command-line flags, each overriding the one before.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::NodeId;

/// Everything a node needs to start.
///
/// ```toml
/// node_id = 1
/// cluster_id = 7
/// data_dir = "/var/lib/chronik/node-1"
/// raft_addr = "127.0.0.1:7101"
/// client_addr = "127.0.0.1:7201"
///
/// [raft]
/// # Cap on the write-ahead log's bytes (0, the default: none). Near it, writes are
/// # refused with Kafka error 56 instead of filling the disk.
/// max_log_bytes = 8589934592
///
/// [[peers]]
/// id = 2
/// raft_addr = "127.0.0.1:7102"
/// client_addr = "127.0.0.1:7202"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NodeConfig {
    /// This node's id (1 or more, unique in the cluster).
    pub node_id: NodeId,
    /// The cluster's id: every raft frame carries it and a node refuses frames of
    /// another cluster.
    #[serde(default = "default_cluster_id")]
    pub cluster_id: u64,
    /// Where the write-ahead log, snapshots and partition data live.
    pub data_dir: PathBuf,
    /// Address the node-to-node raft transport listens on.
    pub raft_addr: SocketAddr,
    /// Address the client service listens on.
    pub client_addr: SocketAddr,
    /// Raft address other nodes use to reach this one (default: `raft_addr`).
    #[serde(default)]
    pub advertised_raft_addr: Option<String>,
    /// Client address other nodes hand to clients (default: `client_addr`).
    #[serde(default)]
    pub advertised_client_addr: Option<String>,
    /// Address of the Prometheus `/metrics` endpoint (off when absent).
    #[serde(default)]
    pub metrics_addr: Option<SocketAddr>,
    /// The rack this node is in, for rack-aware replica placement.
    #[serde(default)]
    pub rack: Option<String>,
    /// The other initial voters of the metadata group (this node is one too). A node
    /// that joins an existing cluster lists any nodes it can reach and sets `join`.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Join an existing cluster through `peers` instead of bootstrapping with them.
    #[serde(default)]
    pub join: bool,
    /// Raft timing and limits.
    #[serde(default)]
    pub raft: RaftSettings,
    /// Mutual TLS between nodes (off when absent).
    #[serde(default)]
    pub tls: Option<TlsSettings>,
}

fn default_cluster_id() -> u64 {
    1
}

/// One other node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Its id.
    pub id: NodeId,
    /// Its raft transport address (`host:port`).
    pub raft_addr: String,
    /// Its client service address (`host:port`).
    pub client_addr: String,
}

/// Raft timing: `tick_ms` is the only clock; the rest counts ticks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSettings {
    /// Milliseconds between ticks.
    pub tick_ms: u64,
    /// Ticks between leader heartbeats.
    pub heartbeat_ticks: usize,
    /// Ticks of silence before an election (10x heartbeat by default).
    pub election_ticks: usize,
    /// Idle ticks before a group hibernates (0: never).
    pub hibernate_after_ticks: usize,
    /// Scheduler worker threads (0: one per core).
    pub workers: usize,
    /// Write-ahead-log segment size in bytes.
    pub segment_bytes: u64,
    /// Most bytes the write-ahead log's segments may hold (0: no limit; otherwise at
    /// least two segments). Near the limit (the last eighth is kept for raft's own
    /// records) the node refuses writes with `StorageFull` (Kafka error 56) instead of
    /// taking them; reads go on, and writes resume once the log is compacted and purged.
    pub max_log_bytes: u64,
    /// Purged write-ahead-log segment files kept for reuse (0: purge deletes them).
    /// Syncs over a reused file's blocks skip the journal commit an append needs; each
    /// kept file takes a segment of disk beside the log.
    pub recycle_segments: usize,
    /// Fill the kept files up to `recycle_segments` with zero-written files at start,
    /// so that a new log's first segments get the cheaper syncs too (costs writing that
    /// many segments of zeros at each start that finds fewer kept).
    pub prefill_segments: bool,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            tick_ms: 100,
            heartbeat_ticks: 1,
            election_ticks: 10,
            hibernate_after_ticks: 10,
            workers: 0,
            segment_bytes: 128 * 1024 * 1024,
            max_log_bytes: 0,
            recycle_segments: raft_storage::DEFAULT_RECYCLE_SEGMENTS,
            prefill_segments: false,
        }
    }
}

/// PEM files for mutual TLS between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// CA certificate that signs every node's certificate.
    pub ca: PathBuf,
    /// This node's certificate.
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
    /// The name every node certificate carries (checked by connecting nodes).
    #[serde(default = "default_server_name")]
    pub server_name: String,
}

fn default_server_name() -> String {
    "chronik-node".to_owned()
}

impl NodeConfig {
    /// A configuration for a node with the defaults for everything optional.
    pub fn new(
        node_id: NodeId,
        data_dir: impl Into<PathBuf>,
        raft_addr: SocketAddr,
        client_addr: SocketAddr,
    ) -> Self {
        NodeConfig {
            node_id,
            cluster_id: default_cluster_id(),
            data_dir: data_dir.into(),
            raft_addr,
            client_addr,
            advertised_raft_addr: None,
            advertised_client_addr: None,
            metrics_addr: None,
            rack: None,
            peers: Vec::new(),
            join: false,
            raft: RaftSettings::default(),
            tls: None,
        }
    }

    /// Reads a TOML file, then applies `CHRONIK_*` environment overrides.
    ///
    /// # Errors
    /// The file cannot be read, does not parse, or the result is invalid.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: Some(path.to_path_buf()),
                message,
            },
            other => other,
        })?;
        config.apply_env(std::env::vars())?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text (no environment, no validation).
    ///
    /// # Errors
    /// `ConfigError::Parse` with the parser's message.
    pub fn from_toml(text: &str) -> Result<NodeConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: None,
            message: e.to_string(),
        })
    }

    /// Renders the configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Applies overrides from environment variables: `CHRONIK_NODE_ID`,
    /// `CHRONIK_CLUSTER_ID`, `CHRONIK_DATA_DIR`, `CHRONIK_RAFT_ADDR`,
    /// `CHRONIK_CLIENT_ADDR`, `CHRONIK_METRICS_ADDR`, `CHRONIK_RACK`, `CHRONIK_TICK_MS`,
    /// `CHRONIK_MAX_LOG_BYTES`.
    ///
    /// # Errors
    /// A variable whose value does not parse.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("CHRONIK_"))
            .collect();
        fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
            value.parse().map_err(|_| ConfigError::Env {
                name: name.to_owned(),
                value: value.to_owned(),
            })
        }
        for (name, value) in &vars {
            match name.as_str() {
                "CHRONIK_NODE_ID" => self.node_id = parse(name, value)?,
                "CHRONIK_CLUSTER_ID" => self.cluster_id = parse(name, value)?,
                "CHRONIK_DATA_DIR" => self.data_dir = PathBuf::from(value),
                "CHRONIK_RAFT_ADDR" => self.raft_addr = parse(name, value)?,
                "CHRONIK_CLIENT_ADDR" => self.client_addr = parse(name, value)?,
                "CHRONIK_METRICS_ADDR" => self.metrics_addr = Some(parse(name, value)?),
                "CHRONIK_RACK" => self.rack = Some(value.clone()),
                "CHRONIK_TICK_MS" => self.raft.tick_ms = parse(name, value)?,
                "CHRONIK_MAX_LOG_BYTES" => self.raft.max_log_bytes = parse(name, value)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// `ConfigError::Invalid` naming the first bad setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |what: &str| Err(ConfigError::Invalid(what.to_owned()));
        if self.node_id == 0 {
            return invalid("node_id must be 1 or more");
        }
        if self.raft.tick_ms == 0 {
            return invalid("raft.tick_ms must be 1 or more");
        }
        if self.raft.heartbeat_ticks == 0 || self.raft.election_ticks <= self.raft.heartbeat_ticks {
            return invalid(
                "raft.election_ticks must be greater than raft.heartbeat_ticks (at least 1)",
            );
        }
        let quota = self.raft.max_log_bytes;
        if quota != 0 && quota < self.raft.segment_bytes.saturating_mul(2) {
            return invalid("raft.max_log_bytes must be 0 (no limit) or at least two segments (2 x raft.segment_bytes)");
        }
        let mut seen = std::collections::BTreeSet::from([self.node_id]);
        for peer in &self.peers {
            if peer.id == 0 || !seen.insert(peer.id) {
                return Err(ConfigError::Invalid(format!(
                    "peer id {} is 0 or listed twice",
                    peer.id
                )));
            }
        }
        if self.join && self.peers.is_empty() {
            return invalid("join needs at least one peer to join through");
        }
        Ok(())
    }

    /// The raft address peers should use for this node.
    pub fn advertised_raft(&self) -> String {
        self.advertised_raft_addr
            .clone()
            .unwrap_or_else(|| self.raft_addr.to_string())
    }

    /// The client address handed out for this node.
    pub fn advertised_client(&self) -> String {
        self.advertised_client_addr
            .clone()
            .unwrap_or_else(|| self.client_addr.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
node_id = 1
cluster_id = 7
data_dir = "/tmp/chronik-1"
raft_addr = "127.0.0.1:7101"
client_addr = "127.0.0.1:7201"

[raft]
tick_ms = 50

[[peers]]
id = 2
raft_addr = "127.0.0.1:7102"
client_addr = "127.0.0.1:7202"
"#;

    #[test]
    fn parses_a_file_and_keeps_defaults() {
        let c = NodeConfig::from_toml(SAMPLE).unwrap();
        assert_eq!(
            (
                c.node_id,
                c.cluster_id,
                c.raft.tick_ms,
                c.raft.election_ticks
            ),
            (1, 7, 50, 10)
        );
        assert_eq!(c.peers.len(), 1);
        assert_eq!(c.raft.recycle_segments, 2, "the log engine's default");
        c.validate().unwrap();
        assert_eq!(NodeConfig::from_toml(&c.to_toml()).unwrap(), c);
        let none = SAMPLE.replace("tick_ms = 50", "tick_ms = 50\nrecycle_segments = 0");
        assert_eq!(
            NodeConfig::from_toml(&none).unwrap().raft.recycle_segments,
            0
        );
        assert!(!c.raft.prefill_segments, "off unless asked");
        let prefill = SAMPLE.replace("tick_ms = 50", "tick_ms = 50\nprefill_segments = true");
        assert!(
            NodeConfig::from_toml(&prefill)
                .unwrap()
                .raft
                .prefill_segments
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut c = NodeConfig::from_toml(SAMPLE).unwrap();
        c.apply_env([
            ("CHRONIK_NODE_ID".into(), "3".into()),
            ("CHRONIK_TICK_MS".into(), "20".into()),
            ("CHRONIK_MAX_LOG_BYTES".into(), "1073741824".into()),
        ])
        .unwrap();
        assert_eq!((c.node_id, c.raft.tick_ms), (3, 20));
        assert_eq!(c.raft.max_log_bytes, 1 << 30);
        c.validate().unwrap();
        let err = c
            .apply_env([("CHRONIK_NODE_ID".into(), "three".into())])
            .unwrap_err();
        assert!(matches!(err, ConfigError::Env { .. }), "{err}");
    }

    #[test]
    fn bad_files_give_clear_errors() {
        assert!(matches!(
            NodeConfig::from_toml("node_id = \"x\""),
            Err(ConfigError::Parse { .. })
        ));
        let unknown = SAMPLE.replace("cluster_id", "clustre_id");
        assert!(matches!(
            NodeConfig::from_toml(&unknown),
            Err(ConfigError::Parse { .. })
        ));
        let mut c = NodeConfig::from_toml(SAMPLE).unwrap();
        c.raft.election_ticks = 1;
        assert!(matches!(c.validate(), Err(ConfigError::Invalid(_))));
        let mut c = NodeConfig::from_toml(SAMPLE).unwrap();
        c.peers[0].id = 1;
        assert!(matches!(c.validate(), Err(ConfigError::Invalid(_))));
        let mut c = NodeConfig::from_toml(SAMPLE).unwrap();
        c.raft.max_log_bytes = c.raft.segment_bytes;
        assert!(matches!(c.validate(), Err(ConfigError::Invalid(_))));
        let missing = NodeConfig::load(Path::new("/nonexistent/chronik.toml")).unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }));
    }
}
