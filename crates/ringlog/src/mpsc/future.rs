//! Futures for async producers and the async consumer. They need no
//! runtime: a pending future stores its waker, and the other side wakes it
//! after the same publication that notifies the futex event.
//!
//! Cancellation is safe: a [`SendFuture`] owns its item until the poll that
//! pushes it (dropping the future drops the item, which never entered the
//! ring), and a [`RecvFuture`] takes an item only in the poll that returns it.

use super::consumer::Consumer;
use super::error::{PushError, TryPopError};
use super::policy::PolicyKind;
use super::producer::{Attempt, Producer};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

impl<T> Producer<T> {
    /// Pushes `item` under the channel's policy; under `Block` the future is
    /// pending (not blocking the thread) while the ring is full. The
    /// policy's timeout does not apply: wrap the future in your executor's
    /// timeout instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlog::mpsc::{self, Policy};
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } }
    /// # }
    /// let (mut tx, mut rx) = mpsc::channel::<u32>(4, Policy::BLOCK).unwrap();
    /// block_on(tx.send(7)).unwrap();
    /// assert_eq!(block_on(rx.recv()), Some(7));
    /// ```
    pub fn send(&mut self, item: T) -> SendFuture<'_, T> {
        SendFuture {
            producer: self,
            item: Some(item),
            key: None,
            stall_key: None,
        }
    }

    /// Alias of [`send`](Self::send), the name used by the original design.
    pub fn push_async(&mut self, item: T) -> SendFuture<'_, T> {
        self.send(item)
    }
}

impl<T> Consumer<T> {
    /// Takes the next item; `None` once every producer is gone and
    /// everything has been read.
    pub fn recv(&mut self) -> RecvFuture<'_, T> {
        RecvFuture {
            consumer: self,
            key: None,
        }
    }

    /// Moves up to `max_items` items into `out` once at least one is there;
    /// resolves to how many (0 once every producer is gone and everything
    /// has been read).
    pub fn take_batch_async<'a>(
        &'a mut self,
        max_items: usize,
        out: &'a mut Vec<T>,
    ) -> TakeBatchFuture<'a, T> {
        TakeBatchFuture {
            consumer: self,
            max_items,
            out,
            key: None,
        }
    }
}

/// Future of [`Producer::send`].
#[must_use = "futures do nothing unless polled"]
pub struct SendFuture<'a, T> {
    producer: &'a mut Producer<T>,
    /// The item until it is pushed.
    item: Option<T>,
    /// Our waker's id in `send_wakers` (waiting for room under `Block`).
    key: Option<u64>,
    /// Our waker's id in `recv_wakers` (waiting out a `DropOldest` stall,
    /// which is resolved by a publication or a freed slot, both notified
    /// there).
    stall_key: Option<u64>,
}

impl<T> SendFuture<'_, T> {
    fn unregister(&mut self) {
        let shared = self.producer.shared();
        shared.send_wakers.unregister(self.key.take());
        shared.recv_wakers.unregister(self.stall_key.take());
    }
}

// The item is never pinned: it is moved out by value to be pushed.
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> std::fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendFuture")
            .field("pending_item", &self.item.is_some())
            .finish()
    }
}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), PushError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(mut item) = this.item.take() else {
            return Poll::Ready(Ok(())); // polled after completion
        };
        let mut registered = false;
        loop {
            match this.producer.attempt(item) {
                Attempt::Pushed => break,
                Attempt::Err(e) => {
                    this.unregister();
                    return Poll::Ready(Err(e.into()));
                }
                Attempt::Stalled(back, stall) => {
                    // `DropOldest`: another thread is mid-way through the
                    // slot operation we need. Never spin in `poll`: register,
                    // then re-check (the SeqCst fence in `register` pairs
                    // with the one in the notifier's `Event::notify`).
                    item = back;
                    let shared = this.producer.shared();
                    shared.recv_wakers.register(&mut this.stall_key, cx.waker());
                    if !(shared.queue.stall_resolved(stall) || shared.is_closed()) {
                        this.item = Some(item);
                        return Poll::Pending;
                    }
                }
                Attempt::Full(back) => {
                    if this.producer.shared().policy == PolicyKind::DropNewest {
                        return Poll::Ready(this.producer.try_push(back).map_err(Into::into));
                    }
                    item = back;
                    if registered {
                        if !this.producer.shared().space_or_closed() {
                            this.item = Some(item);
                            return Poll::Pending;
                        }
                    } else {
                        let shared = this.producer.shared();
                        shared.send_wakers.register(&mut this.key, cx.waker());
                        // Closes the registration against the consumer's
                        // fence-free notify after freeing slots (`Block`
                        // only reaches here).
                        shared.queue.close_space_wait();
                        registered = true;
                    }
                }
            }
        }
        this.unregister();
        Poll::Ready(Ok(()))
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// Future of [`Consumer::recv`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct RecvFuture<'a, T> {
    consumer: &'a mut Consumer<T>,
    key: Option<u64>,
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let mut registered = false;
        let mut in_flight = false;
        loop {
            match this.consumer.try_pop() {
                Ok(item) => {
                    this.consumer
                        .shared()
                        .recv_wakers
                        .unregister(this.key.take());
                    return Poll::Ready(Some(item));
                }
                Err(TryPopError::Disconnected) => {
                    this.consumer
                        .shared()
                        .recv_wakers
                        .unregister(this.key.take());
                    return Poll::Ready(None);
                }
                Err(TryPopError::Empty) if registered => {
                    if in_flight {
                        // A producer reserved the next slot and may have
                        // missed our registration: poll again soon (the
                        // hint lets a loom model schedule that producer).
                        crate::sync::spin_hint();
                        cx.waker().wake_by_ref();
                    }
                    return Poll::Pending;
                }
                Err(TryPopError::Empty) => {
                    // Register, then look once more: a publication after
                    // the first look either shows here or wakes us.
                    in_flight = this
                        .consumer
                        .shared()
                        .register_recv(&mut this.key, cx.waker());
                    registered = true;
                }
            }
        }
    }
}

impl<T> Drop for RecvFuture<'_, T> {
    fn drop(&mut self) {
        self.consumer
            .shared()
            .recv_wakers
            .unregister(self.key.take());
    }
}

/// Future of [`Consumer::take_batch_async`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct TakeBatchFuture<'a, T> {
    consumer: &'a mut Consumer<T>,
    max_items: usize,
    out: &'a mut Vec<T>,
    key: Option<u64>,
}

impl<T> Future for TakeBatchFuture<'_, T> {
    type Output = usize;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let this = self.get_mut();
        let mut registered = false;
        let mut in_flight = false;
        loop {
            match this.consumer.take_batch(this.max_items, this.out) {
                Ok(n) => {
                    this.consumer
                        .shared()
                        .recv_wakers
                        .unregister(this.key.take());
                    return Poll::Ready(n);
                }
                Err(TryPopError::Disconnected) => {
                    this.consumer
                        .shared()
                        .recv_wakers
                        .unregister(this.key.take());
                    return Poll::Ready(0);
                }
                Err(TryPopError::Empty) if registered => {
                    if in_flight {
                        // As in `RecvFuture::poll`.
                        crate::sync::spin_hint();
                        cx.waker().wake_by_ref();
                    }
                    return Poll::Pending;
                }
                Err(TryPopError::Empty) => {
                    in_flight = this
                        .consumer
                        .shared()
                        .register_recv(&mut this.key, cx.waker());
                    registered = true;
                }
            }
        }
    }
}

impl<T> Drop for TakeBatchFuture<'_, T> {
    fn drop(&mut self) {
        self.consumer
            .shared()
            .recv_wakers
            .unregister(self.key.take());
    }
}
