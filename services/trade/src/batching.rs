//! Gathering calls that arrive together into batches: the orders of many tablets are
//! reserved in one call to the store and committed in one database transaction, so the
//! round trips and commits an order costs are shared by every order placed meanwhile.
//!
//! No call waits for a batch to fill: a batch goes out as soon as a slot is free,
//! holding whatever has queued up (at least one call). While the slots are busy, new
//! calls queue, so the busier the role, the bigger its batches — and an idle role answers
//! a lone call at once. Written here rather than taken from a crate: the crates found
//! either delay calls by a fixed window or batch a `tower::Service`, neither of which fits
//! a handler that awaits several different batched steps.

use std::{future::Future, sync::Arc};

use tokio::sync::{Semaphore, mpsc, oneshot};

/// The batcher's task is gone (the role is stopping), or a batch ended without answering
/// this call (it panicked, or ran past its deadline): the call's outcome is unknown — its
/// batch may have done the work, which a retry of the same request then finds.
#[derive(Debug, thiserror::Error)]
#[error("the {0} batch ended without answering this call")]
pub struct BatchLost(pub &'static str);

/// What a batch of calls runs: one answer per call, in order.
pub trait BatchRun<T, R>: Fn(Vec<T>) -> Self::Running + Send + Sync + 'static {
    type Running: Future<Output = Vec<R>> + Send + 'static;
}

impl<T, R, F, Fut> BatchRun<T, R> for F
where
    F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<R>> + Send + 'static,
{
    type Running = Fut;
}

/// How a [`Batcher`] batches.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// For logs and errors: what is batched.
    pub name: &'static str,
    /// The most calls in one batch.
    pub max_batch: usize,
    /// The most batches running at once.
    pub in_flight: usize,
    /// The most calls queued; past it callers wait for room.
    pub queue: usize,
    /// How long a batch may run before its calls are answered [`BatchLost`].
    pub deadline: std::time::Duration,
}

/// A handle for calls to be batched; cheap to clone. The batching task ends when every
/// handle is dropped, after answering what was queued.
pub struct Batcher<T, R> {
    name: &'static str,
    queue: mpsc::Sender<(T, oneshot::Sender<R>)>,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            queue: self.queue.clone(),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the batching task; must be called within the runtime.
    pub fn start(limits: BatchLimits, run: impl BatchRun<T, R>) -> Self {
        let (queue, pending) = mpsc::channel(limits.queue.max(1));
        tokio::spawn(gather(limits, pending, run));
        Self {
            name: limits.name,
            queue,
        }
    }

    /// Runs `item` in the next batch that has room and answers its outcome. The batch
    /// runs on its own task: dropping this future does not stop it.
    pub async fn call(&self, item: T) -> Result<R, BatchLost> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send((item, answer))
            .await
            .map_err(|_| BatchLost(self.name))?;
        answered.await.map_err(|_| BatchLost(self.name))
    }
}

async fn gather<T: Send + 'static, R: Send + 'static>(
    limits: BatchLimits,
    mut pending: mpsc::Receiver<(T, oneshot::Sender<R>)>,
    run: impl BatchRun<T, R>,
) {
    // Shared with each batch's task, where it is called: a batch that panics while being
    // built loses its own calls, not the batcher.
    let run = Arc::new(run);
    let slots = Arc::new(Semaphore::new(limits.in_flight.max(1)));
    let max_batch = limits.max_batch.max(1);
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        // A free slot first: calls arriving while every slot is busy join the next batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        if pending.recv_many(&mut batch, max_batch).await == 0 {
            return;
        }
        // A caller that went away while queued (its deadline passed, it was cancelled)
        // is not served: no stock taken, no order committed for an answer nobody reads.
        batch.retain(|(_, answer)| !answer.is_closed());
        if batch.is_empty() {
            continue;
        }
        let (items, answers): (Vec<T>, Vec<oneshot::Sender<R>>) = batch.drain(..).unzip();
        let name = limits.name;
        let deadline = limits.deadline;
        let run = run.clone();
        tokio::spawn(async move {
            let running = run(items);
            let started = std::time::Instant::now();
            let size = answers.len();
            // A batch that hangs (a peer or the database stuck) would hold its slot and
            // everyone queued behind it; past the deadline its callers are told the outcome
            // is unknown, as a call cut by its own deadline would be.
            let Ok(outcomes) = tokio::time::timeout(deadline, running).await else {
                tracing::warn!(
                    batch = name,
                    size,
                    "a batch ran past its deadline; its calls fail"
                );
                return;
            };
            tracing::debug!(
                batch = name,
                size,
                elapsed_us = started.elapsed().as_micros() as u64,
                "batch ran"
            );
            // A caller that went away meanwhile drops its answer; the batch's work stands.
            for (answer, outcome) in answers.into_iter().zip(outcomes) {
                let _ = answer.send(outcome);
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(max_batch: usize, in_flight: usize) -> BatchLimits {
        BatchLimits {
            name: "test",
            max_batch,
            in_flight,
            queue: 100,
            deadline: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn calls_arriving_while_a_batch_runs_go_out_together_and_get_their_own_answers() {
        let (sizes_tx, mut sizes) = mpsc::unbounded_channel();
        let batcher = Batcher::start(limits(10, 1), move |items: Vec<u32>| {
            let sizes_tx = sizes_tx.clone();
            async move {
                let _ = sizes_tx.send(items.len());
                tokio::time::sleep(Duration::from_millis(50)).await;
                items.into_iter().map(|i| i * 2).collect()
            }
        });
        let first = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.call(1).await }
        });
        // The lone first call goes out at once; the next 25 gather behind it.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let rest: Vec<_> = (2..=26)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { (i, batcher.call(i).await) })
            })
            .collect();
        assert_eq!(first.await.expect("joined").expect("answered"), 2);
        for call in rest {
            let (i, answer) = call.await.expect("joined");
            assert_eq!(answer.expect("answered"), i * 2);
        }
        let mut seen = Vec::new();
        while let Ok(size) = sizes.try_recv() {
            seen.push(size);
        }
        assert_eq!(seen.first(), Some(&1), "the first call waited for company");
        assert!(
            seen.iter().all(|&size| size <= 10),
            "over max_batch: {seen:?}"
        );
        assert_eq!(seen.iter().sum::<usize>(), 26);
        assert!(
            seen.len() <= 4,
            "the queued calls were not batched: {seen:?}"
        );
    }

    #[tokio::test]
    async fn a_batch_that_panics_while_being_built_loses_its_calls_not_the_batcher() {
        let batcher = Batcher::start(limits(10, 1), |items: Vec<u32>| {
            assert!(!items.contains(&7), "seven cannot be batched");
            async move { items }
        });
        assert!(batcher.call(7).await.is_err(), "its call is lost");
        assert_eq!(batcher.call(3).await.expect("still batching"), 3);
    }

    #[tokio::test]
    async fn a_batch_that_answers_too_few_loses_the_rest_not_the_batcher() {
        let batcher = Batcher::start(limits(10, 2), |items: Vec<u32>| async move {
            items.into_iter().filter(|i| *i != 7).collect()
        });
        assert!(batcher.call(7).await.is_err());
        assert_eq!(batcher.call(3).await.expect("still batching"), 3);
    }
}
