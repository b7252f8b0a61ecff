//! A future polled by the simulation's loop, never by an executor: the loop decides
//! when anything runs, so a seed replays the same run.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// One operation in flight: polled once per step until it answers.
pub(crate) struct Pending<R> {
    future: Pin<Box<dyn Future<Output = R>>>,
    /// The step it started at (for client timeouts).
    pub started: u64,
}

impl<R> Pending<R> {
    /// Starts `future` and polls it once, so its command is queued at once.
    pub(crate) fn start(future: impl Future<Output = R> + 'static, now: u64) -> (Self, Option<R>) {
        let mut pending = Pending {
            future: Box::pin(future),
            started: now,
        };
        let first = pending.poll();
        (pending, first)
    }

    /// Polls once; `Some` when it has answered.
    pub(crate) fn poll(&mut self) -> Option<R> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.future.as_mut().poll(&mut cx) {
            Poll::Ready(value) => Some(value),
            Poll::Pending => None,
        }
    }
}
