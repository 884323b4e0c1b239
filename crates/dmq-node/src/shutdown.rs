//! Process-wide shutdown: set once by the signal thread, awaited by every shard's
//! accept loops and idle connections (a wake-up from another thread is fine here:
//! it happens once).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use event_listener::Event;

#[derive(Debug, Default)]
pub struct Shutdown {
    triggered: AtomicBool,
    event: Event,
    /// Open client connections over all shards and listeners.
    live_connections: AtomicUsize,
}

impl Shutdown {
    pub fn trigger(&self) {
        self.triggered.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::SeqCst)
    }

    /// Resolves once shutdown has been triggered.
    pub async fn wait(&self) {
        loop {
            if self.is_triggered() {
                return;
            }
            let listener = self.event.listen();
            if self.is_triggered() {
                return;
            }
            listener.await;
        }
    }

    pub fn connection_opened(&self) {
        self.live_connections.fetch_add(1, Ordering::SeqCst);
    }

    pub fn connection_closed(&self) {
        self.live_connections.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn live_connections(&self) -> usize {
        self.live_connections.load(Ordering::SeqCst)
    }
}
