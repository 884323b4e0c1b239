//! The write side of a neo connection: every request of the connection appends
//! whole messages here, one writer task sends them, coalescing everything that
//! piled up while the previous write was in progress into one write.
//!
//! Lives on the connection's shard; shared by `Rc` between the connection's
//! reader, its request tasks and its writer task.

use std::cell::{Cell, RefCell};

use event_listener::Event;
use futures_lite::{AsyncWrite, AsyncWriteExt};

/// Bytes of unsent output past which the reader stops taking new requests until
/// the client has read some (backpressure on a client that does not read).
pub const OUTBOX_HIGH_WATER_BYTES: usize = 4 * 1024 * 1024;

#[derive(Default)]
pub struct Outbox {
    buf: RefCell<Vec<u8>>,
    /// Bytes appended and not yet written.
    pending: Cell<usize>,
    closed: Cell<bool>,
    has_data: Event,
    drained: Event,
}

impl Outbox {
    /// Appends one or more whole messages.
    pub fn push(&self, encode: impl FnOnce(&mut Vec<u8>)) {
        if self.closed.get() {
            return;
        }
        let mut buf = self.buf.borrow_mut();
        let before = buf.len();
        encode(&mut buf);
        self.pending.set(self.pending.get() + buf.len() - before);
        drop(buf);
        self.has_data.notify(1);
    }

    pub fn pending_bytes(&self) -> usize {
        self.pending.get()
    }

    /// Waits until less than `limit` bytes are unsent (or the writer stopped).
    pub async fn wait_below(&self, limit: usize) {
        loop {
            if self.pending.get() < limit || self.closed.get() {
                return;
            }
            let listener = self.drained.listen();
            if self.pending.get() < limit || self.closed.get() {
                return;
            }
            listener.await;
        }
    }

    /// Waits until everything appended so far has been written.
    pub async fn wait_empty(&self) {
        self.wait_below(1).await;
    }

    /// Stops the writer after it has written what is pending.
    pub fn close(&self) {
        self.closed.set(true);
        self.has_data.notify(usize::MAX);
        self.drained.notify(usize::MAX);
    }

    /// The writer task: sends whatever is pending, until closed and drained or
    /// the socket fails.
    pub async fn write_to<W: AsyncWrite + Unpin>(
        &self,
        writer: &mut W,
        on_written: impl Fn(usize),
    ) -> std::io::Result<()> {
        let mut spare = Vec::new();
        loop {
            if self.buf.borrow().is_empty() {
                if self.closed.get() {
                    return Ok(());
                }
                let listener = self.has_data.listen();
                if self.buf.borrow().is_empty() && !self.closed.get() {
                    listener.await;
                }
                continue;
            }
            std::mem::swap(&mut *self.buf.borrow_mut(), &mut spare);
            let result = writer.write_all(&spare).await;
            on_written(spare.len());
            self.pending
                .set(self.pending.get().saturating_sub(spare.len()));
            spare.clear();
            // A huge batch once should not pin its memory for the connection's life.
            if spare.capacity() > OUTBOX_HIGH_WATER_BYTES {
                spare = Vec::new();
            }
            self.drained.notify(usize::MAX);
            if let Err(e) = result {
                self.closed.set(true);
                self.drained.notify(usize::MAX);
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_everything_pushed_before_close() {
        let outbox = Outbox::default();
        outbox.push(|out| out.extend_from_slice(b"abc"));
        outbox.push(|out| out.extend_from_slice(b"def"));
        assert_eq!(outbox.pending_bytes(), 6);
        outbox.close();
        let mut sink = futures_lite::io::Cursor::new(Vec::new());
        futures_lite::future::block_on(outbox.write_to(&mut sink, |_| ())).expect("write");
        assert_eq!(sink.into_inner(), b"abcdef");
        assert_eq!(outbox.pending_bytes(), 0);
    }
}
