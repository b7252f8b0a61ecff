//! Cross-crate tests of chronik-cluster: simulation, history checking and
//! multi-process clusters. (Under construction: see the fault-testing issue.)
#![deny(missing_docs)]
