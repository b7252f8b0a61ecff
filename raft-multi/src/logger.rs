//! raft-rs logs through `slog`; this bridges it into `tracing` (target `raft`).

use std::fmt::Write as _;

use slog::{Drain, Key, OwnedKVList, Record, Serializer, KV};

/// A slog logger whose records become `tracing` events with target `raft`, so one
/// subscriber (and one `RUST_LOG` filter) governs the whole node.
pub fn raft_logger() -> slog::Logger {
    slog::Logger::root(TracingDrain.fuse(), slog::o!())
}

struct TracingDrain;

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let level = match record.level() {
            slog::Level::Critical | slog::Level::Error => tracing::Level::ERROR,
            slog::Level::Warning => tracing::Level::WARN,
            slog::Level::Info => tracing::Level::INFO,
            slog::Level::Debug => tracing::Level::DEBUG,
            slog::Level::Trace => tracing::Level::TRACE,
        };
        // Formatting costs: only pay it when someone listens at this level.
        let enabled = match level {
            tracing::Level::ERROR => tracing::enabled!(target: "raft", tracing::Level::ERROR),
            tracing::Level::WARN => tracing::enabled!(target: "raft", tracing::Level::WARN),
            tracing::Level::INFO => tracing::enabled!(target: "raft", tracing::Level::INFO),
            tracing::Level::DEBUG => tracing::enabled!(target: "raft", tracing::Level::DEBUG),
            _ => tracing::enabled!(target: "raft", tracing::Level::TRACE),
        };
        if !enabled {
            return Ok(());
        }
        let mut text = KvText(format!("{}", record.msg()));
        // Serializing into a String cannot fail; a failure would only lose key-values.
        let _ = record.kv().serialize(record, &mut text);
        let _ = values.serialize(record, &mut text);
        let text = text.0;
        match level {
            tracing::Level::ERROR => tracing::error!(target: "raft", "{text}"),
            tracing::Level::WARN => tracing::warn!(target: "raft", "{text}"),
            tracing::Level::INFO => tracing::info!(target: "raft", "{text}"),
            tracing::Level::DEBUG => tracing::debug!(target: "raft", "{text}"),
            _ => tracing::trace!(target: "raft", "{text}"),
        }
        Ok(())
    }
}

struct KvText(String);

impl Serializer for KvText {
    fn emit_arguments(&mut self, key: Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}
