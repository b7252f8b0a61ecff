//! Physical limits measured in the same run, to read the figures against: the disk's
//! synced sequential write rate, and one round trip through the in-process network.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use raft_transport::{
    GroupMessage, IncomingSnapshot, MessageHandler, NodeId, PeerState, Transport,
};

/// The physical limit for `produce`: sequential writes of `block` bytes, each followed
/// by `fdatasync`, for `duration`, in bytes per second.
pub fn disk_limit(block: usize, duration: Duration) -> Option<f64> {
    use std::io::Write as _;
    let base = std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(base).ok()?;
    let mut file = std::fs::File::create(dir.path().join("disk-limit")).ok()?;
    let data = vec![0x5a_u8; block];
    let start = Instant::now();
    let mut written = 0u64;
    // Bounded by `duration`.
    while start.elapsed() < duration {
        file.write_all(&data).ok()?;
        file.sync_data().ok()?;
        written += block as u64;
    }
    Some(written as f64 / start.elapsed().as_secs_f64())
}

/// Echoes every batch back to its sender (node 2's side).
struct Echo(Arc<dyn Transport>);

/// Signals each batch that comes back (node 1's side).
struct Back(crossbeam_channel::Sender<()>);

#[async_trait::async_trait]
impl MessageHandler for Echo {
    fn on_messages(&self, from: NodeId, batch: Vec<GroupMessage>) {
        let _ = self.0.send(from, batch);
    }
    fn on_peer_state(&self, _peer: NodeId, _state: PeerState) {}
    async fn on_snapshot(&self, _snapshot: IncomingSnapshot) -> Result<(), String> {
        Err("no snapshots".to_owned())
    }
}

#[async_trait::async_trait]
impl MessageHandler for Back {
    fn on_messages(&self, _from: NodeId, _batch: Vec<GroupMessage>) {
        let _ = self.0.send(());
    }
    fn on_peer_state(&self, _peer: NodeId, _state: PeerState) {}
    async fn on_snapshot(&self, _snapshot: IncomingSnapshot) -> Result<(), String> {
        Err("no snapshots".to_owned())
    }
}

/// Round trips of one small frame between two nodes of the in-process network, from
/// a plain thread: (p50, p99) in microseconds. A commit needs at least one.
pub fn network_round_trip(samples: usize) -> Option<(u64, u64)> {
    let net = crate::network();
    let (a, b) = (net.endpoint(1), net.endpoint(2));
    let (tx, rx) = crossbeam_channel::bounded(1);
    a.set_handler(Arc::new(Back(tx)));
    let b_transport: Arc<dyn Transport> = b.clone();
    b.set_handler(Arc::new(Echo(b_transport)));
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).ok()?;
    for i in 0..samples {
        let start = Instant::now();
        let frame = vec![GroupMessage::new(1, (i as u64).to_le_bytes().to_vec())];
        a.send(2, frame).ok()?;
        rx.recv_timeout(Duration::from_secs(5)).ok()?;
        latency
            .record(start.elapsed().as_micros().max(1) as u64)
            .ok()?;
    }
    Some((
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
    ))
}
