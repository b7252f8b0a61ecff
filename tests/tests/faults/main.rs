//! A 3-node in-process cluster under concurrent producers and fetchers while a
//! seeded schedule injects network faults; the history is then checked against the
//! final log of every replica (`chronik_cluster_tests::history`).
//!
//! Replay a run: `SEED=<seed> cargo test -p chronik-cluster-tests --test faults`.
//! The schedule of faults and every client's choices come from the seed; thread
//! timing does not, so a replay follows the same schedule, not the same interleaving.

mod clients;
mod harness;
mod read;
mod scenario;
mod schedule;
mod t10_basic_isolate_leaders;
mod t20_mixed_network_faults;
mod t30_reordered_messages;
