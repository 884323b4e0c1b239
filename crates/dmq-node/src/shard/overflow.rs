//! A shard's disk overflow as the shard sees it: the bookkeeping
//! ([`DiskWriter`], no I/O), the requests waiting on it (pushes until their
//! records are written, pops until records come back), the storages queued
//! for reading back, and the signals that wake the I/O tasks.
//!
//! Synchronous and owned by its [`Shard`](super::Shard), on the shard's
//! thread. The writer and reader tasks (`crate::overflow_io`) depend on this
//! module, never the reverse: they take work from here and report back.

use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use dmq_storage::disk::{DiskError, DiskWriter, Loc, ReadPlan};
use dmq_storage::Storage;
use futures_channel::oneshot;

/// Read-ahead from disk: at most this much per read.
const REFILL_READ_MAX: usize = 1 << 20;
/// Read-ahead from disk: at least this much per read (a small ring still
/// reads a useful amount; what it cannot take stays on disk).
const REFILL_READ_MIN: usize = 64 << 10;

/// A write of the overflow failed before the awaited records were on disk;
/// their pushes are answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an overflow write failed before the records were on disk")]
pub struct WriteFailed;

/// The next step of reading a storage's disk records back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefillStep {
    /// Nothing (more) to read now.
    Done,
    /// The records are not written yet: wait for the writes in flight.
    NotYet,
    /// Read `len` bytes at `at`.
    Read { at: Loc, len: usize },
}

/// A wake-up flag with one waiting task.
#[derive(Default)]
pub struct Notify {
    set: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Notify {
    pub fn notify(&self) {
        self.set.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Waits until [`notify`](Notify::notify) was called since the last wait.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.replace(false) {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

/// How a shard wakes its overflow tasks.
#[derive(Default)]
pub struct IoSignals {
    pub writer: Notify,
    pub reader: Notify,
    /// Set at shutdown: the reader ends after the read in flight.
    pub reader_stopping: Cell<bool>,
    /// Set at shutdown, after the reader ended: the writer writes what is
    /// pending (the reader's progress records included), syncs and ends.
    pub writer_stopping: Cell<bool>,
}

impl IoSignals {
    pub fn stop_reader(&self) {
        self.reader_stopping.set(true);
        self.reader.notify();
    }

    pub fn stop_writer(&self) {
        self.writer_stopping.set(true);
        self.writer.notify();
    }
}

/// The shard's overflow state (see the module documentation).
pub struct Overflow {
    /// Segments, pending bytes and tickets (bookkeeping; the tasks do the I/O).
    pub disk: DiskWriter,
    /// Wakes the overflow I/O tasks.
    pub io: Rc<IoSignals>,
    /// Pushes waiting for their records to be on disk, by ticket.
    flush_waiters: VecDeque<(u64, oneshot::Sender<Result<(), WriteFailed>>)>,
    /// Pops waiting for records to come back from disk, by channel.
    pop_waiters: HashMap<String, Vec<oneshot::Sender<()>>>,
    /// Storages to read back from disk: channel and overflow id.
    refills: VecDeque<(Rc<str>, u32)>,
    refill_queued: HashSet<u32>,
    /// A refused push was logged; reset by the maintenance tick so that a
    /// full disk logs once per tick, not once per push.
    refusal_logged: bool,
}

impl Overflow {
    pub fn new(disk: DiskWriter) -> Overflow {
        Overflow {
            disk,
            io: Rc::new(IoSignals::default()),
            flush_waiters: VecDeque::new(),
            pop_waiters: HashMap::new(),
            refills: VecDeque::new(),
            refill_queued: HashSet::new(),
            refusal_logged: false,
        }
    }

    /// Wakes the writer when records wait to be written.
    pub fn kick_writer(&self) {
        if self.disk.has_pending() {
            self.io.writer.notify();
        }
    }

    /// A push that needed the disk was refused; logged once per maintenance
    /// tick.
    pub fn log_refusal(&mut self, channel: &str, len: usize, cause: DiskError) {
        if !self.refusal_logged {
            self.refusal_logged = true;
            tracing::warn!(
                channel,
                bytes = len,
                "push refused: the record does not fit in memory and {cause} (logged once per overflow.write_index_ms)"
            );
        }
    }

    /// Queues a storage for reading back from disk.
    pub fn schedule_refill(&mut self, channel: &str, id: u32) {
        if id != 0 && self.refill_queued.insert(id) {
            self.refills.push_back((channel.into(), id));
            self.io.reader.notify();
        }
    }

    /// Queues `storage` for reading back if it wants records from disk.
    pub fn refill_if_wanted(&mut self, channel: &str, storage: &Storage) {
        if storage.wants_refill() {
            self.schedule_refill(channel, storage.disk().id());
        }
    }

    /// The next storage to read back (for the reader task).
    pub fn next_refill(&mut self) -> Option<(Rc<str>, u32)> {
        let next = self.refills.pop_front()?;
        self.refill_queued.remove(&next.1);
        Some(next)
    }

    /// What to read next for `storage` (`None`: it is gone).
    pub fn refill_step(&self, storage: Option<&Storage>) -> RefillStep {
        let Some(storage) = storage else {
            return RefillStep::Done;
        };
        if !storage.wants_refill() {
            return RefillStep::Done;
        }
        let max = storage
            .refill_room()
            .clamp(REFILL_READ_MIN, REFILL_READ_MAX);
        match self.disk.segments().read_plan(storage.disk(), max) {
            ReadPlan::Nothing => RefillStep::Done,
            ReadPlan::NotYet => RefillStep::NotYet,
            ReadPlan::Read { at, len } => RefillStep::Read { at, len },
        }
    }

    /// A receiver fired when records of `channel` came back from disk (or
    /// were given up, or the channel went): the pop looks again then.
    pub fn wait_for_read(&mut self, channel: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        match self.pop_waiters.get_mut(channel) {
            Some(waiters) => waiters.push(tx),
            None => {
                self.pop_waiters.insert(channel.to_owned(), vec![tx]);
            }
        }
        rx
    }

    /// The pops waiting on `channel` look again.
    pub fn wake_pops(&mut self, channel: &str) {
        for waiter in self.pop_waiters.remove(channel).unwrap_or_default() {
            let _ = waiter.send(());
        }
    }

    /// Every waiting pop looks again (records they waited for may be gone).
    pub fn wake_all_pops(&mut self) {
        for (_, waiters) in self.pop_waiters.drain() {
            for waiter in waiters {
                let _ = waiter.send(());
            }
        }
    }

    /// A receiver answered once every push up to `ticket` is on disk
    /// (`Err` if a write failed first); `None` if it is already.
    pub fn durable_waiter(
        &mut self,
        ticket: u64,
    ) -> Option<oneshot::Receiver<Result<(), WriteFailed>>> {
        if self.disk.durable_ticket() >= ticket {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.flush_waiters.push_back((ticket, tx));
        self.io.writer.notify();
        Some(rx)
    }

    /// Answers the pushes whose records are now on disk; after a failed
    /// write (`ok == false`) also those whose records it gave up.
    pub fn answer_flush_waiters(&mut self, ok: bool) {
        let durable = self.disk.durable_ticket();
        while let Some((ticket, _)) = self.flush_waiters.front() {
            if *ticket > durable && ok {
                break;
            }
            let Some((ticket, waiter)) = self.flush_waiters.pop_front() else {
                break;
            };
            let _ = waiter.send(if ticket <= durable {
                Ok(())
            } else {
                Err(WriteFailed)
            });
        }
    }

    /// The maintenance tick: the overflow accepts records again after a
    /// failure, and refusals may be logged again.
    pub fn maintenance(&mut self) {
        self.disk.retry();
        self.refusal_logged = false;
    }
}
