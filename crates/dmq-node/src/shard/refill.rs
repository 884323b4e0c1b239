//! What the overflow's I/O tasks ask of a [`Shard`] and report back to it:
//! which storage to read back next and what to read, the records a read
//! brought, the outcome of a write. Each call is synchronous; the tasks
//! (`crate::overflow_io`) do the I/O between calls.

use dmq_storage::disk::{DiskWriter, Loc, WriteJob};
use dmq_storage::Storage;

use super::overflow::RefillStep;
use super::state::Shard;

impl Shard {
    /// The next storage to read back: its channel and overflow id.
    pub fn next_refill(&mut self) -> Option<(std::rc::Rc<str>, u32)> {
        self.overflow.next_refill()
    }

    fn storage_by_disk_id(&self, channel: &str, id: u32) -> Option<&Storage> {
        self.channels
            .get(channel)
            .and_then(|ch| ch.storage_by_disk_id(id))
    }

    /// What to read next for the storage with overflow id `id` of `channel`.
    pub fn refill_step(&self, channel: &str, id: u32) -> RefillStep {
        self.overflow
            .refill_step(self.storage_by_disk_id(channel, id))
    }

    /// Takes records read at `at` into the storage's memory. Returns the
    /// next step: read again (with the length a large record needs), wait
    /// for writes, or done.
    pub fn refill_apply(&mut self, channel: &str, id: u32, at: Loc, buf: &[u8]) -> RefillStep {
        let Some(storage) = self
            .channels
            .get_mut(channel)
            .and_then(|ch| ch.storage_by_disk_id_mut(id))
        else {
            return RefillStep::Done;
        };
        if storage.disk().head() != Some(at) {
            // Changed while the read was in flight (cleared, or read by a
            // previous pass): plan again.
            return self.refill_step(channel, id);
        }
        let refilled = storage.refill(&mut self.overflow.disk, at, buf);
        let step = match refilled {
            Ok(done) => {
                self.counters.refilled_records += done.records;
                if done.records > 0 {
                    self.refilled(channel);
                }
                match done.need {
                    Some(len) if done.records == 0 => {
                        let end = at.offset.saturating_add(len as u64);
                        if end > self.overflow.disk.segments().written(at.seg) {
                            RefillStep::NotYet
                        } else {
                            RefillStep::Read { at, len }
                        }
                    }
                    _ if done.not_yet => RefillStep::NotYet,
                    // The ring has no room for the next record yet: the next
                    // pop that frees room asks again.
                    _ if done.records == 0 => RefillStep::Done,
                    _ => self.refill_step(channel, id),
                }
            }
            Err(corrupt) => {
                self.abandon_disk(channel, id, &corrupt.to_string());
                RefillStep::Done
            }
        };
        self.overflow.kick_writer();
        step
    }

    /// Gives up a storage's records on disk that cannot be read back.
    pub fn abandon_disk(&mut self, channel: &str, id: u32, reason: &str) {
        let Some(storage) = self
            .channels
            .get_mut(channel)
            .and_then(|ch| ch.storage_by_disk_id_mut(id))
        else {
            return;
        };
        let lost = storage.abandon_disk(&mut self.overflow.disk);
        self.counters.disk_errors += 1;
        self.counters.disk_lost_records += lost;
        tracing::error!(
            channel,
            lost,
            "overflow records cannot be read back ({reason}); they are given up"
        );
        self.refilled(channel);
    }

    /// Records came back from disk (or were given up): the channel's waiting
    /// pops look again, and its consumers are answered.
    fn refilled(&mut self, channel: &str) {
        self.overflow.wake_pops(channel);
        self.wake_consumers(channel);
    }

    /// The outcome of one overflow write (for the writer task): a failure
    /// gives up every record not yet written, whose pushes are answered with
    /// an error.
    pub fn write_done(&mut self, job: WriteJob, ok: bool) {
        let lost = self.overflow.disk.write_done(job, ok);
        if !ok {
            self.counters.disk_errors += 1;
        }
        if !lost.is_empty() {
            self.counters.disk_lost_records += lost.len() as u64;
            for ch in self.channels.iter_mut() {
                for storage in ch.storages_mut() {
                    DiskWriter::forget(storage.disk_mut(), &lost);
                }
            }
        }
        self.overflow.answer_flush_waiters(ok);
        if !ok {
            // Pops waiting on records that were given up must look again.
            self.overflow.wake_all_pops();
        }
    }

    /// The maintenance tick (see `Overflow::maintenance`).
    pub fn maintenance(&mut self) {
        self.overflow.maintenance();
    }
}
