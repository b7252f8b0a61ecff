//! Scheduler tests on the in-process network: 3 and 5 nodes, 1 to 1000 groups, the
//! in-memory engine and the real write-ahead log.

mod harness;
mod t10_basic;
mod t20_lifecycle;
mod t30_faults;
mod t40_structure;
