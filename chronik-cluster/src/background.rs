//! The node's clock: the only place time enters the replication layer.

use std::sync::Arc;
use std::time::Duration;

use crate::node::NodeInner;

/// Ticks the scheduler every `raft.tick_ms` until the node stops.
pub(crate) async fn tick(inner: Arc<NodeInner>) {
    let mut interval = tokio::time::interval(Duration::from_millis(inner.config.raft.tick_ms));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = inner.stop.subscribe();
    loop {
        tokio::select! {
            _ = interval.tick() => inner.multi.tick(),
            _ = stop.changed() => return,
        }
    }
}
