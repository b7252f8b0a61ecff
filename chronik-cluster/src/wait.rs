//! Waiting for the cluster to reach a state, with a deadline.

use std::time::Duration;

use crate::cluster::Cluster;
use crate::error::{ClusterError, Result};
use crate::NodeId;

impl Cluster {
    /// Waits until some node is known to lead the metadata group (the controller).
    ///
    /// # Errors
    /// `RequestTimedOut` after `timeout`.
    pub async fn wait_for_controller(&self, timeout: Duration) -> Result<NodeId> {
        self.wait(timeout, |c| c.controller()).await
    }

    /// Waits until every partition of `topic` has a known leader.
    ///
    /// # Errors
    /// `RequestTimedOut` after `timeout`.
    pub async fn wait_for_leaders(&self, topic: &str, timeout: Duration) -> Result<()> {
        self.wait(timeout, |c| {
            let t = c.describe_topic(topic).ok()?;
            t.partitions
                .iter()
                .all(|p| p.leader.is_some())
                .then_some(())
        })
        .await
    }

    /// Polls `probe` every 20 ms until it answers, or `timeout` passes.
    async fn wait<T>(&self, timeout: Duration, probe: impl Fn(&Cluster) -> Option<T>) -> Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(value) = probe(self) {
                return Ok(value);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::RequestTimedOut);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
