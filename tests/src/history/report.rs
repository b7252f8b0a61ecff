//! [`Report`]: what a check found, with counts of what it looked at.

use std::fmt;

use super::Violation;

/// What [`History::check`](crate::history::History::check) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every broken guarantee; empty when the history is correct.
    pub violations: Vec<Violation>,
    /// Produce attempts acknowledged.
    pub acknowledged: usize,
    /// Produce attempts that failed definitely.
    pub failed: usize,
    /// Produce attempts whose outcome is unknown (or was never recorded).
    pub unknown: usize,
    /// Fetches checked.
    pub fetches: usize,
    /// Replica logs checked.
    pub replicas: usize,
    /// Records in the replica logs checked, over all replicas.
    pub records: usize,
}

impl Report {
    /// True when no guarantee was broken.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violations; {} acknowledged, {} failed, {} unknown attempts; {} fetches; \
             {} replica logs, {} records",
            self.violations.len(),
            self.acknowledged,
            self.failed,
            self.unknown,
            self.fetches,
            self.replicas,
            self.records
        )?;
        for v in self.violations.iter().take(20) {
            write!(f, "\n  {v}")?;
        }
        if self.violations.len() > 20 {
            write!(f, "\n  ... and {} more", self.violations.len() - 20)?;
        }
        Ok(())
    }
}
