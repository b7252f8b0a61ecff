//! Joining a running cluster, and learning the addresses of nodes that joined.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::node::NodeInner;

/// Teaches the gRPC transport the raft address of every node in the catalogue (nodes
/// that joined after this one started are not in its config).
pub(crate) fn learn_peers(inner: &NodeInner) {
    #[cfg(feature = "grpc")]
    if let Some(grpc) = &inner.grpc {
        let known = grpc.peers();
        for node in inner.metadata.catalog().nodes.values() {
            if node.node_id != inner.node_id() && !known.contains(&node.node_id) {
                match grpc.add_peer(node.node_id, format!("http://{}", node.raft_address)) {
                    Ok(()) => {
                        tracing::info!(peer = node.node_id, address = %node.raft_address, "learned a peer")
                    }
                    Err(error) => tracing::warn!(peer = node.node_id, %error, "cannot add peer"),
                }
            }
        }
    }
    #[cfg(not(feature = "grpc"))]
    let _ = inner;
}

/// For a node configured with `join = true`: registers it through any configured peer
/// until its own copy of the catalogue lists it.
pub(crate) fn start(inner: &Arc<NodeInner>) -> Option<JoinHandle<()>> {
    if !inner.config.join {
        return None;
    }
    #[cfg(feature = "grpc")]
    {
        Some(tokio::spawn(register_through_peers(Arc::clone(inner))))
    }
    #[cfg(not(feature = "grpc"))]
    {
        tracing::error!("join needs the grpc feature: this node stays outside the cluster");
        None
    }
}

#[cfg(feature = "grpc")]
async fn register_through_peers(inner: Arc<NodeInner>) {
    use std::time::Duration;

    use crate::api::NodeDescription;
    use crate::client::ChronikClient;

    let me = NodeDescription {
        id: inner.node_id(),
        raft_address: inner.config.advertised_raft(),
        client_address: inner.config.advertised_client(),
        rack: inner.config.rack.clone(),
    };
    let peers: Vec<String> = inner
        .config
        .peers
        .iter()
        .map(|p| p.client_addr.clone())
        .collect();
    let mut stop = inner.stop.subscribe();
    let mut backoff = Duration::from_millis(100);
    // Until the catalogue this node replicates lists it (or the node stops).
    while !inner.metadata.catalog().nodes.contains_key(&me.id) {
        let attempt = async {
            let client = ChronikClient::connect(&peers).await?;
            client.register_node(me.clone()).await?;
            // The metadata leader may be a node this one was not configured with: learn
            // every node's raft address now, before its own catalogue can tell it.
            let status = client.status(None).await?;
            if let Some(grpc) = &inner.grpc {
                let known = grpc.peers();
                for node in status
                    .nodes
                    .iter()
                    .filter(|n| n.id != me.id && !known.contains(&n.id))
                {
                    if let Err(error) =
                        grpc.add_peer(node.id, format!("http://{}", node.raft_address))
                    {
                        tracing::warn!(peer = node.id, %error, "cannot add peer");
                    }
                }
            }
            Ok::<(), crate::client::ClientError>(())
        };
        match attempt.await {
            Ok(()) => tracing::info!(node = me.id, "registered with the cluster"),
            Err(error) => {
                tracing::warn!(node = me.id, %error, "joining the cluster failed; retrying")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
