//! The background thread that drives a [`LocalNetwork`](super::LocalNetwork) in automatic mode.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::network::{step, Shared};

/// How long a pump with frames in flight (delayed) or snapshots moving waits
/// for a new frame before taking the next step.
const IDLE_STEP: Duration = Duration::from_millis(1);

/// How long a pump with nothing in flight sleeps unless woken: it only checks
/// that its network still exists.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Delivers a network's frames on a background thread, one step per
/// iteration (about one per millisecond while frames are delayed or
/// snapshots move; asleep until woken when nothing is in flight). Dropping the handle
/// stops and joins the thread; the thread also ends once the network and
/// all its endpoints are gone.
#[derive(Debug)]
pub struct PumpHandle {
    stop: Arc<AtomicBool>,
    shared: Weak<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl PumpHandle {
    pub(crate) fn spawn(shared: &Arc<Shared>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = Arc::downgrade(shared);
        shared.pumps.fetch_add(1, Ordering::SeqCst);
        let thread = {
            let stop = Arc::clone(&stop);
            let weak = weak.clone();
            std::thread::Builder::new()
                .name("local-net-pump".into())
                .spawn(move || run(&weak, &stop))
                .ok()
        };
        if thread.is_none() {
            shared.pumps.fetch_sub(1, Ordering::SeqCst);
            tracing::error!("could not start the local network pump thread");
        }
        Self {
            stop,
            shared: weak,
            thread,
        }
    }

    /// Lets the pump run for the network's whole life.
    pub(crate) fn detach(mut self) {
        self.thread.take();
    }

    /// Stops the pump and waits for its thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        if let Some(shared) = self.shared.upgrade() {
            shared.pumps.fetch_sub(1, Ordering::SeqCst);
            // Under the lock, so a pump about to sleep sees `stop` or the wake-up.
            drop(shared.state.lock());
            shared.wakeup.notify_all();
        }
        // A handler that drops the pump runs on the pump thread: no self-join.
        if thread.thread().id() != std::thread::current().id() {
            let _ = thread.join();
        }
    }
}

impl Drop for PumpHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

fn run(weak: &Weak<Shared>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        if step(&shared) > 0 {
            continue;
        }
        let mut state = shared.state.lock();
        let next = state.clock + 1;
        // Checked under the state lock: whoever queues a frame or starts a
        // transfer takes that lock before waking the pump, so no wake-up is lost.
        let moving = state.pending() > 0 || !shared.transfers.lock().is_empty();
        if state.notices.is_empty() && !state.has_due_by(next) && !stop.load(Ordering::SeqCst) {
            // Frames in flight and snapshot transfers move a step about once a
            // millisecond; with nothing in flight the pump sleeps until woken
            // (and looks again now and then, to end once the network is gone).
            let wait = if moving { IDLE_STEP } else { IDLE_WAIT };
            shared.wakeup.wait_for(&mut state, wait);
        }
    }
}
