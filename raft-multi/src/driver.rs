//! Manual driving: a node's workers run on the caller's thread, one poll at a time.

use crate::worker::Worker;

/// The workers of a scheduler started with [`crate::MultiRaft::start_manual`]. Nothing
/// happens on that node until [`Driver::poll`] is called: a test can drive many nodes
/// from one thread, decide the order of every step, and replay it from a seed.
///
/// Dropping the driver stops the node like a crash of its process: callers still
/// waiting get `Stopped`, and nothing more is written.
pub struct Driver {
    workers: Vec<Worker>,
    stopped: bool,
}

impl Driver {
    pub(crate) fn new(workers: Vec<Worker>) -> Driver {
        Driver {
            workers,
            stopped: false,
        }
    }

    /// Gives every worker one turn: finished snapshot restores, the commands in its
    /// mailbox, one round (write, send, apply). Returns true if anything was done.
    pub fn poll(&mut self) -> bool {
        if self.stopped {
            return false;
        }
        let mut worked = false;
        for worker in &mut self.workers {
            let turn = worker.poll();
            worked |= turn.worked;
            self.stopped |= turn.shutdown;
        }
        if self.stopped {
            for worker in &mut self.workers {
                worker.close();
            }
            // Dropping the mailboxes makes later calls fail with `Stopped` at once.
            self.workers.clear();
        }
        worked
    }

    /// Polls until a poll does nothing or `max_polls` were made; returns the polls
    /// that did something.
    pub fn run_until_idle(&mut self, max_polls: usize) -> usize {
        let mut busy = 0;
        for _ in 0..max_polls {
            if !self.poll() {
                break;
            }
            busy += 1;
        }
        busy
    }

    /// True once the scheduler was shut down (`MultiRaft::shutdown` then a poll).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.stopped {
            for worker in &mut self.workers {
                worker.close();
            }
        }
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("workers", &self.workers.len())
            .field("stopped", &self.stopped)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use raft_storage::LogEngine;
    use raft_transport::local::LocalNetwork;

    use crate::testing::MemoryStateMachine;
    use crate::{Error, GroupSpec, MultiConfig, MultiRaft};

    /// Polls `future` between driver polls until it answers (bounded).
    fn drive<T>(driver: &mut super::Driver, future: impl Future<Output = T>) -> T {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1_000 {
            if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                return value;
            }
            driver.poll();
        }
        panic!("no answer after 1000 polls");
    }

    #[test]
    fn nothing_happens_until_polled_and_shutdown_stops_the_driver() {
        let network = LocalNetwork::new(1);
        let (multi, mut driver) = MultiRaft::start_manual(
            MultiConfig::new(1).workers(2),
            LogEngine::in_memory(),
            network.endpoint(1),
        )
        .unwrap();
        let spec = GroupSpec::new(5, vec![1], Box::new(MemoryStateMachine::new()));
        let mut create = pin!(multi.create_group(spec));
        let mut cx = Context::from_waker(Waker::noop());
        // Queued, not done: no thread runs the worker.
        assert!(create.as_mut().poll(&mut cx).is_pending());
        assert!(create.as_mut().poll(&mut cx).is_pending());
        assert!(driver.poll());
        assert!(matches!(create.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
        drive(&mut driver, multi.campaign(5)).unwrap();
        let response = drive(&mut driver, multi.propose(5, b"x".to_vec())).unwrap();
        assert!(MemoryStateMachine::decode_response(&response).is_some());
        assert!(driver.run_until_idle(100) < 100);
        assert!(!driver.poll(), "idle: a poll does nothing");
        multi.shutdown();
        driver.poll();
        assert!(driver.is_stopped());
        let after = drive(&mut driver, multi.propose(5, b"y".to_vec()));
        assert!(matches!(after, Err(Error::Stopped)), "{after:?}");
    }
}
