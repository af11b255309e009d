//! Work the control plane hands to a shard at run time (an RTP session opened by
//! the API), so its sockets, recorder and files live on one io_uring thread like
//! every other feed's.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tokio::sync::{mpsc, watch};

/// Runs on the shard thread, given the shard's stop signal; it spawns its task there.
pub type Job = Box<dyn FnOnce(watch::Receiver<bool>) + Send>;

pub struct ShardJobs {
    senders: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
}

impl ShardJobs {
    /// One queue per shard; the receivers go to the shards.
    pub fn new(n: usize) -> (ShardJobs, Vec<mpsc::UnboundedReceiver<Job>>) {
        let (senders, receivers) = (0..n).map(|_| mpsc::unbounded_channel()).unzip();
        (
            ShardJobs {
                senders,
                next: AtomicUsize::new(0),
            },
            receivers,
        )
    }

    /// Spawns the future `f` builds on the next shard in turn; `false` if the
    /// shards have stopped.
    pub fn spawn<F, Fut>(&self, f: F) -> bool
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        if self.senders.is_empty() {
            return false;
        }
        let i = self.next.fetch_add(1, Relaxed) % self.senders.len();
        self.senders[i]
            .send(Box::new(move |stop| {
                tokio_uring::spawn(f(stop));
            }))
            .is_ok()
    }
}
