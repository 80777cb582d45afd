//! The process is stopping: what long-lived work listens for. A server's graceful
//! shutdown waits for calls in flight, and a watch stream is never done on its own, so
//! without this signal every open watch would hold a stopping replica until its grace
//! period ran out and then be cut. Told, a watch ends at once with UNAVAILABLE
//! (`SERVER_STOPPING`) and its client reconnects to a replica that stays.

use tokio_util::sync::CancellationToken;

/// One per process (every role of `pos up` shares it); clones observe the same signal.
#[derive(Debug, Clone, Default)]
pub struct Stopping(CancellationToken);

impl Stopping {
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells every listener; later calls do nothing.
    pub fn stop(&self) {
        self.0.cancel();
    }

    /// Resolves once [`Stopping::stop`] was called (at once if it already was).
    pub async fn stopped(&self) {
        self.0.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_hears_a_stop_even_a_late_listener() {
        let stopping = Stopping::new();
        let listener = stopping.clone();
        let waiting = tokio::spawn(async move { listener.stopped().await });
        stopping.stop();
        waiting.await.expect("heard");
        // A listener that arrives after the stop does not wait.
        stopping.clone().stopped().await;
    }
}
