//! The Prometheus `/metrics` endpoint (text exposition format 0.0.4).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use axum::routing::get;
use tokio::task::JoinHandle;

use crate::error::{ClusterError, Result};
use crate::node::NodeInner;

/// Serves `/metrics` on `metrics_addr` until the node stops.
pub(crate) async fn serve(
    inner: Arc<NodeInner>,
    address: std::net::SocketAddr,
) -> Result<JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ClusterError::Io {
            path: PathBuf::from(address.to_string()),
            source,
        })?;
    let mut stop = inner.stop.subscribe();
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let inner = Arc::clone(&inner);
            async move { render(&inner) }
        }),
    );
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "metrics endpoint stopped");
        }
    }))
}

/// The node's metrics as Prometheus text.
pub(crate) fn render(inner: &NodeInner) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    let m = inner.multi.metrics();
    metric(
        "chronik_raft_groups",
        "gauge",
        "Raft groups hosted on this node.",
        m.groups,
    );
    metric(
        "chronik_raft_leaders",
        "gauge",
        "Raft groups this node leads.",
        m.leaders,
    );
    metric(
        "chronik_raft_hibernated",
        "gauge",
        "Raft groups asleep.",
        m.hibernated,
    );
    metric(
        "chronik_raft_rounds_total",
        "counter",
        "Scheduler rounds.",
        m.rounds,
    );
    metric(
        "chronik_raft_writes_total",
        "counter",
        "Log batches written by the scheduler.",
        m.writes,
    );
    metric(
        "chronik_raft_groups_written_total",
        "counter",
        "Sum over writes of the groups each held.",
        m.groups_written,
    );
    metric(
        "chronik_raft_proposals_total",
        "counter",
        "Proposals accepted by leaders.",
        m.proposals,
    );
    metric(
        "chronik_raft_proposals_rejected_total",
        "counter",
        "Proposals refused.",
        m.proposals_rejected,
    );
    metric(
        "chronik_raft_entries_applied_total",
        "counter",
        "Entries applied to state machines.",
        m.entries_applied,
    );
    metric(
        "chronik_raft_messages_sent_total",
        "counter",
        "Raft messages sent.",
        m.messages_sent,
    );
    metric(
        "chronik_raft_frames_sent_total",
        "counter",
        "Transport frames sent.",
        m.frames_sent,
    );
    metric(
        "chronik_raft_messages_dropped_total",
        "counter",
        "Messages the transport refused.",
        m.messages_dropped,
    );
    metric(
        "chronik_raft_inbound_dropped_total",
        "counter",
        "Inbound messages dropped (full mailbox, or an append a full log cannot take).",
        m.inbound_dropped,
    );
    metric(
        "chronik_raft_appends_trimmed_total",
        "counter",
        "Inbound appends cut to what a log near its size limit can take.",
        m.appends_trimmed,
    );
    metric(
        "chronik_raft_inbound_malformed_total",
        "counter",
        "Inbound messages that did not decode.",
        m.inbound_malformed,
    );
    metric(
        "chronik_raft_snapshots_sent_total",
        "counter",
        "Snapshots streamed to followers.",
        m.snapshots_sent,
    );
    metric(
        "chronik_raft_snapshots_received_total",
        "counter",
        "Snapshots installed.",
        m.snapshots_received,
    );
    metric(
        "chronik_raft_compactions_total",
        "counter",
        "Raft log compactions.",
        m.compactions,
    );
    metric(
        "chronik_raft_wakeups_total",
        "counter",
        "Hibernated groups woken.",
        m.wakeups,
    );
    let wal = inner.engine.stats();
    metric(
        "chronik_wal_bytes_written_total",
        "counter",
        "Write-ahead-log bytes written.",
        wal.bytes_written,
    );
    metric(
        "chronik_wal_syncs_total",
        "counter",
        "Write-ahead-log fdatasyncs.",
        wal.syncs,
    );
    metric(
        "chronik_wal_sync_nanoseconds_total",
        "counter",
        "Time spent in fdatasync.",
        wal.sync_nanos,
    );
    metric(
        "chronik_wal_sync_max_microseconds",
        "gauge",
        "Slowest fdatasync since the node started.",
        wal.max_sync_nanos / 1_000,
    );
    metric(
        "chronik_wal_slow_syncs_total",
        "counter",
        "fdatasyncs of 100 ms or more.",
        wal.slow_syncs,
    );
    metric(
        "chronik_wal_purged_segments_total",
        "counter",
        "Segments purged.",
        wal.purged_segments,
    );
    metric(
        "chronik_wal_recycled_segments_total",
        "counter",
        "Segments started on a kept file (a purged segment's or a prefilled one).",
        wal.recycled_segments,
    );
    metric(
        "chronik_wal_prefilled_segments_total",
        "counter",
        "Zero-written segment files made at start ([raft] prefill_segments).",
        wal.prefilled_segments,
    );
    let (count, sum, max) = inner.produce_latency.read();
    metric(
        "chronik_produce_committed_total",
        "counter",
        "Produce requests committed and applied.",
        count,
    );
    metric(
        "chronik_produce_latency_microseconds_total",
        "counter",
        "Sum of their commit latencies.",
        sum,
    );
    metric(
        "chronik_produce_latency_max_microseconds",
        "gauge",
        "Largest commit latency seen.",
        max,
    );
    let _ = writeln!(
        out,
        "# HELP chronik_wal_sync_duration_seconds Write-ahead-log fdatasync latency.\n\
         # TYPE chronik_wal_sync_duration_seconds histogram"
    );
    let mut below = 0;
    for (bound, count) in raft_storage::SYNC_LATENCY_BOUNDS_MICROS
        .iter()
        .zip(wal.sync_latency)
    {
        below += count;
        let le = *bound as f64 / 1e6;
        let _ = writeln!(
            out,
            "chronik_wal_sync_duration_seconds_bucket{{le=\"{le}\"}} {below}"
        );
    }
    let count: u64 = wal.sync_latency.iter().sum();
    let _ = writeln!(
        out,
        "chronik_wal_sync_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n\
         chronik_wal_sync_duration_seconds_sum {}\n\
         chronik_wal_sync_duration_seconds_count {count}",
        wal.sync_nanos as f64 / 1e9
    );
    let _ = writeln!(
        out,
        "# HELP chronik_partition_high_watermark High watermark of each local replica."
    );
    let _ = writeln!(out, "# TYPE chronik_partition_high_watermark gauge");
    let partitions: Vec<_> = inner
        .partitions
        .read()
        .iter()
        .map(|(&g, p)| (g, p.clone()))
        .collect();
    for (group, p) in &partitions {
        let _ = writeln!(
            out,
            "chronik_partition_high_watermark{{topic=\"{}\",partition=\"{}\",group=\"{group}\"}} {}",
            p.topic.replace('"', "\\\""),
            p.partition,
            p.reader.high_watermark()
        );
    }
    let _ = writeln!(
        out,
        "# HELP chronik_partition_leader 1 when this node leads the partition."
    );
    let _ = writeln!(out, "# TYPE chronik_partition_leader gauge");
    for (group, p) in &partitions {
        let _ = writeln!(
            out,
            "chronik_partition_leader{{topic=\"{}\",partition=\"{}\",group=\"{group}\"}} {}",
            p.topic.replace('"', "\\\""),
            p.partition,
            u8::from(inner.multi.is_leader(*group))
        );
    }
    out
}
