//! A connection's input buffer: starts small, grows only as far as a request
//! that passed the decoder's length checks needs, and shrinks back when idle.

use std::io;

use futures_lite::{AsyncRead, AsyncReadExt};

/// Initial size: most requests are small.
const INITIAL_BYTES: usize = 16 * 1024;
/// Size a busy connection grows to for plain throughput.
const STEADY_BYTES: usize = 64 * 1024;

pub struct Input {
    buf: Vec<u8>,
    head: usize,
    end: usize,
}

impl Default for Input {
    fn default() -> Self {
        Self::new()
    }
}

impl Input {
    pub fn new() -> Input {
        Input {
            buf: vec![0; INITIAL_BYTES],
            head: 0,
            end: 0,
        }
    }

    /// The unconsumed bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.head..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.head);
        self.head += n;
        if self.head == self.end {
            self.head = 0;
            self.end = 0;
        }
    }

    /// Whether another read could add bytes without growing past the steady size
    /// (used while a stream owns the connection and input is not expected).
    pub fn has_idle_room(&self) -> bool {
        self.end - self.head < STEADY_BYTES
    }

    /// Reads once, after making room for `needed` unconsumed bytes in total.
    /// `needed` was bounded by the decoder's limits, so growing to it is safe.
    /// Returns the bytes read; 0 means the peer closed the connection.
    pub async fn read_from<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        needed: usize,
    ) -> io::Result<usize> {
        let pending = self.end - self.head;
        let wanted = needed.max(pending + 1);
        if self.head + wanted > self.buf.len() || self.end == self.buf.len() {
            self.buf.copy_within(self.head..self.end, 0);
            self.head = 0;
            self.end = pending;
        }
        if wanted > self.buf.len() {
            self.buf.resize(wanted, 0);
        } else if self.end == self.buf.len()
            || (self.end > self.buf.len() / 2 && self.buf.len() < STEADY_BYTES)
        {
            // A busy connection: take the steady size at once.
            self.buf.resize(STEADY_BYTES.max(self.buf.len()), 0);
        }
        let n = reader.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// Gives back the memory of a large request once nothing is buffered.
    pub fn shrink_if_idle(&mut self) {
        if self.head == self.end && self.buf.len() > STEADY_BYTES {
            self.buf = vec![0; STEADY_BYTES];
            self.head = 0;
            self.end = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_a_large_request_and_shrinks_back() {
        let data = vec![7u8; 200_000];
        let mut reader = futures_lite::io::Cursor::new(data.clone());
        let mut input = Input::new();
        futures_lite::future::block_on(async {
            while input.data().len() < data.len() {
                let n = input
                    .read_from(&mut reader, data.len())
                    .await
                    .expect("read");
                assert!(n > 0);
            }
        });
        assert_eq!(input.data(), &data[..]);
        input.consume(data.len());
        input.shrink_if_idle();
        assert_eq!(input.buf.len(), STEADY_BYTES);
    }

    #[test]
    fn keeps_unconsumed_bytes_across_compaction() {
        let mut reader =
            futures_lite::io::Cursor::new((0..=255u8).cycle().take(50_000).collect::<Vec<_>>());
        let mut input = Input::new();
        let mut seen = Vec::new();
        futures_lite::future::block_on(async {
            loop {
                let n = input.read_from(&mut reader, 0).await.expect("read");
                if n == 0 {
                    break;
                }
                let take = input.data().len() / 2 + 1;
                seen.extend_from_slice(&input.data()[..take]);
                input.consume(take);
            }
        });
        seen.extend_from_slice(input.data());
        assert_eq!(seen, (0..=255u8).cycle().take(50_000).collect::<Vec<_>>());
    }
}
