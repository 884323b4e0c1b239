//! The disk overflow's I/O on a shard: two tasks next to the shard's
//! connections, each with glommio's io_uring file I/O so that no disk access
//! blocks the executor.
//!
//! - The **writer** executes the shard's [`WriteJob`]s one at a time, in
//!   order (group commit: every push appended while a write runs goes in the
//!   next one), answers the pushes waiting for their records to be on disk,
//!   deletes segments as soon as they hold nothing live any more, and every
//!   `overflow.write_index_ms` syncs the files (`fdatasync`). After a failed
//!   write (disk full, I/O error) it refuses new records for a second, then
//!   tries again.
//! - The **reader** reads records back into the rings of the storages that
//!   asked ([`Shard::refill_step`]), ahead of need, and wakes the pops and
//!   consumers waiting for them.
//!
//! Both run for the life of the shard and stop at shutdown, after the last
//! connection: the writer then writes everything still pending and syncs.
//!
//! [`WriteJob`]: dmq_storage::disk::WriteJob

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use dmq_storage::disk::{segment_file_name, WriteJob};
use glommio::io::{BufferedFile, OpenOptions, ReadResult};

use crate::shard::{wait_durable, RefillStep, Shard};

/// Read attempts of a storage's records before they are given up.
const READ_ATTEMPTS: u32 = 3;
/// Recent reads kept by the reader (each up to a refill's size, 1 MiB).
const READ_CACHE_ENTRIES: usize = 8;
/// After a failed write, new records are refused for this long before the
/// disk is tried again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Where a shard's segment files are.
#[derive(Debug, Clone)]
pub struct SegmentDir {
    pub dir: PathBuf,
    pub shard: usize,
    pub shards: usize,
    pub segment_size: u64,
    /// The file system's lack of fallocate was logged.
    pub unreserved_logged: Rc<Cell<bool>>,
}

impl SegmentDir {
    pub fn path(&self, seq: u32) -> PathBuf {
        self.dir
            .join(segment_file_name(self.shard, self.shards, seq))
    }
}

/// The writer task (see the module documentation).
pub async fn write_loop(shard: Rc<RefCell<Shard>>, dir: SegmentDir, interval: Duration) {
    let io = shard.borrow().overflow.io.clone();
    let mut files: BTreeMap<u32, BufferedFile> = BTreeMap::new();
    let mut unsynced: BTreeSet<u32> = BTreeSet::new();
    let mut next_tick = Instant::now() + interval;
    let mut failing = false;
    let mut retry_at = Instant::now();
    let mut last: Option<LastWrite> = None;
    loop {
        loop {
            let job = shard.borrow_mut().overflow.disk.take_write();
            let Some(job) = job else {
                break;
            };
            let mut job = job;
            let seg = job.segments().next().unwrap_or_default();
            let ok = match execute(&dir, &mut files, &job, &mut last).await {
                Ok(()) => {
                    if failing {
                        failing = false;
                        tracing::info!(shard = dir.shard, "overflow writes succeed again");
                    }
                    true
                }
                Err(e) => {
                    retry_at = Instant::now() + RETRY_AFTER_FAILURE;
                    if !failing {
                        tracing::error!(
                            shard = dir.shard,
                            file = %dir.path(seg).display(),
                            "overflow write failed, records not yet written are refused: {e}"
                        );
                    }
                    failing = true;
                    false
                }
            };
            unsynced.extend(job.segments());
            if let Some(data) = job.data.as_mut() {
                if ok {
                    // Kept to take the next job's links to its records.
                    last = Some(LastWrite {
                        seg: data.seg,
                        pos: data.pos,
                        bytes: std::mem::take(&mut data.bytes),
                    });
                } else if let Some(file) = files.get(&data.seg) {
                    // Cut what a failed write may have left, so that a
                    // restart does not find records whose pushes were
                    // refused.
                    let _ = file.truncate(data.pos).await;
                }
            }
            if !ok {
                last = None;
            }
            shard.borrow_mut().write_done(job, ok);
            io.reader.notify();
        }
        if io.writer_stopping.get() {
            sync(&dir, &mut files, &mut unsynced, true).await;
            reclaim(&shard, &dir, &mut files).await;
            return;
        }
        // Drained segments go at once, so that space (and overflow.disk_limit)
        // comes back as soon as records are read.
        reclaim(&shard, &dir, &mut files).await;
        let now = Instant::now();
        if shard.borrow().overflow.disk.is_unavailable() && now >= retry_at {
            // Accept records again; the next write tries the disk.
            shard.borrow_mut().overflow.disk.retry();
        }
        if now >= next_tick {
            sync(&dir, &mut files, &mut unsynced, false).await;
            shard.borrow_mut().maintenance();
            next_tick = Instant::now() + interval;
            continue;
        }
        let wake = if shard.borrow().overflow.disk.is_unavailable() {
            next_tick.min(retry_at)
        } else {
            next_tick
        };
        futures_lite::future::or(io.writer.wait(), glommio::timer::sleep(wake - now)).await;
    }
}

/// The bytes of the last data write, kept to rewrite links into them.
struct LastWrite {
    seg: u32,
    pos: u64,
    bytes: Vec<u8>,
}

/// Writes one job: its bytes (creating and preallocating the segment file
/// when it starts one) and its link patches, all at once. A patch may land
/// before the record it links to: nothing reads past what a whole job made
/// durable, and a start after a crash checks every link. Patches into the
/// previous job's bytes (the usual case: each storage's newest record) are
/// applied to a copy of them and written back as one range.
async fn execute(
    dir: &SegmentDir,
    files: &mut BTreeMap<u32, BufferedFile>,
    job: &WriteJob,
    last: &mut Option<LastWrite>,
) -> std::io::Result<()> {
    if let Some(data) = job.data.as_ref().filter(|_| job.creates()) {
        let path = dir.path(data.seg);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .buffered_open(&path)
            .await
            .map_err(std::io::Error::from)?;
        let size = dir.segment_size.max(data.len);
        // Reserve the segment's blocks now, so that a full disk shows
        // here, when the segment starts, rather than in the middle of it.
        // A file system without fallocate works too, unreserved.
        if let Err(e) = file.pre_allocate(size, true).await {
            let e = std::io::Error::from(e);
            if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                let _ = file.remove().await;
                return Err(e);
            }
            if !dir.unreserved_logged.replace(true) {
                tracing::warn!(
                    file = %path.display(),
                    "the file system cannot reserve space (fallocate): overflow segments are written without a reservation"
                );
            }
        }
        files.insert(data.seg, file);
    }
    // Patches into the last write's bytes become one range; others go alone.
    let mut span: Option<(usize, usize)> = None;
    let mut alone = Vec::new();
    for patch in &job.patches {
        let start = last.as_ref().and_then(|l| {
            let start = usize::try_from(patch.pos.checked_sub(l.pos)?).ok()?;
            (l.seg == patch.seg && start + patch.header.len() <= l.bytes.len()).then_some(start)
        });
        match (start, last.as_mut()) {
            (Some(start), Some(l)) => {
                let end = start + patch.header.len();
                l.bytes[start..end].copy_from_slice(&patch.header);
                span = Some(span.map_or((start, end), |(lo, hi)| (lo.min(start), hi.max(end))));
            }
            _ => alone.push(patch),
        }
    }
    let range = match (span, last.as_ref()) {
        (Some((lo, hi)), Some(l)) => Some((l.seg, l.pos + lo as u64, l.bytes[lo..hi].to_vec())),
        _ => None,
    };
    // Every file the writes need is open before they start together.
    let mut segs: Vec<u32> = alone.iter().map(|p| p.seg).collect();
    segs.extend(range.iter().map(|r| r.0));
    segs.extend(job.data.iter().map(|d| d.seg));
    segs.sort_unstable();
    segs.dedup();
    for seg in segs {
        open_for_write(dir, files, seg).await?;
    }
    let files = &*files;
    let file = |seg: u32| {
        files
            .get(&seg)
            .ok_or_else(|| std::io::Error::other("segment file not open"))
    };
    let mut writes: Vec<Pin<Box<dyn Future<Output = std::io::Result<()>> + '_>>> = Vec::new();
    if let Some(data) = &job.data {
        let f = file(data.seg)?;
        writes.push(Box::pin(write_all_at(f, &data.bytes, data.pos)));
    }
    if let Some((seg, pos, bytes)) = &range {
        let f = file(*seg)?;
        writes.push(Box::pin(write_all_at(f, bytes, *pos)));
    }
    for patch in alone {
        let f = file(patch.seg)?;
        writes.push(Box::pin(write_all_at(f, &patch.header, patch.pos)));
    }
    all_ok(writes).await
}

/// Runs the writes together; the first error, once all have ended.
async fn all_ok(
    mut writes: Vec<Pin<Box<dyn Future<Output = std::io::Result<()>> + '_>>>,
) -> std::io::Result<()> {
    let mut first_error = None;
    poll_fn(|cx| {
        writes.retain_mut(|w| match w.as_mut().poll(cx) {
            Poll::Ready(result) => {
                if let Err(e) = result {
                    first_error.get_or_insert(e);
                }
                false
            }
            Poll::Pending => true,
        });
        if writes.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    first_error.map_or(Ok(()), Err)
}

async fn open_for_write<'f>(
    dir: &SegmentDir,
    files: &'f mut BTreeMap<u32, BufferedFile>,
    seg: u32,
) -> std::io::Result<&'f BufferedFile> {
    match files.entry(seg) {
        std::collections::btree_map::Entry::Occupied(e) => Ok(e.into_mut()),
        std::collections::btree_map::Entry::Vacant(v) => {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .buffered_open(dir.path(seg))
                .await
                .map_err(std::io::Error::from)?;
            Ok(v.insert(file))
        }
    }
}

async fn write_all_at(file: &BufferedFile, bytes: &[u8], pos: u64) -> std::io::Result<()> {
    let mut done = 0usize;
    while done < bytes.len() {
        let n = file
            .write_at(bytes[done..].to_vec(), pos + done as u64)
            .await
            .map_err(std::io::Error::from)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        done += n;
    }
    Ok(())
}

/// `fdatasync`s the files written since the last sync; closes files of
/// segments no longer appended to (all of them when `all`).
async fn sync(
    dir: &SegmentDir,
    files: &mut BTreeMap<u32, BufferedFile>,
    unsynced: &mut BTreeSet<u32>,
    all: bool,
) {
    for seg in std::mem::take(unsynced) {
        if let Some(file) = files.get(&seg) {
            if let Err(e) = file.fdatasync().await {
                tracing::error!(file = %dir.path(seg).display(), "overflow fdatasync failed: {e}");
            }
        }
    }
    let newest = files.keys().next_back().copied();
    let close: Vec<u32> = files
        .keys()
        .copied()
        .filter(|&seg| all || Some(seg) != newest)
        .collect();
    for seg in close {
        if let Some(file) = files.remove(&seg) {
            let _ = file.close().await;
        }
    }
}

/// Deletes the segments the shard no longer needs.
async fn reclaim(
    shard: &RefCell<Shard>,
    dir: &SegmentDir,
    files: &mut BTreeMap<u32, BufferedFile>,
) {
    let gone = shard.borrow_mut().overflow.disk.reclaim();
    for seg in gone {
        let path = dir.path(seg);
        // Through glommio, open or not (a segment found at start is not).
        let file = match files.remove(&seg) {
            Some(file) => Ok(file),
            None => BufferedFile::open(&path)
                .await
                .map_err(std::io::Error::from),
        };
        let removed = match file {
            Ok(file) => {
                let removed = file.remove().await.map_err(std::io::Error::from);
                let _ = file.close().await;
                removed
            }
            Err(e) => Err(e),
        };
        match removed {
            Ok(()) => tracing::debug!(file = %path.display(), "overflow segment deleted"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %path.display(), "cannot delete overflow segment: {e}"),
        }
    }
}

/// The reader task (see the module documentation).
pub async fn read_loop(shard: Rc<RefCell<Shard>>, dir: SegmentDir) {
    let io = shard.borrow().overflow.io.clone();
    let mut files: HashMap<u32, BufferedFile> = HashMap::new();
    // The last reads, by segment and offset: bounded, and only ever holding
    // bytes that were written (links may be added since; see `refill`).
    let mut cache: VecDeque<(u32, u64, ReadResult)> = VecDeque::new();
    loop {
        loop {
            if io.reader_stopping.get() {
                return;
            }
            let next = shard.borrow_mut().next_refill();
            let Some((channel, id)) = next else {
                break;
            };
            refill(&shard, &dir, &mut files, &mut cache, &channel, id).await;
            glommio::yield_if_needed().await;
        }
        {
            let state = shard.borrow();
            let live: BTreeSet<u32> = state.overflow.disk.segments().seqs().collect();
            files.retain(|seg, _| live.contains(seg));
            cache.retain(|(seg, _, _)| live.contains(seg));
        }
        io.reader.wait().await;
    }
}

/// Reads one storage's records back until its ring has no room or nothing
/// is left on disk.
async fn refill(
    shard: &RefCell<Shard>,
    dir: &SegmentDir,
    files: &mut HashMap<u32, BufferedFile>,
    cache: &mut VecDeque<(u32, u64, ReadResult)>,
    channel: &str,
    id: u32,
) {
    let mut step = shard.borrow().refill_step(channel, id);
    let mut failures = 0u32;
    loop {
        match step {
            RefillStep::Done => return,
            RefillStep::NotYet => {
                let (ticket, pending) = {
                    let state = shard.borrow();
                    (
                        state.overflow.disk.appended_ticket(),
                        state.overflow.disk.has_pending(),
                    )
                };
                if !pending && shard.borrow().overflow.disk.durable_ticket() >= ticket {
                    // Everything is written and the record is still not
                    // readable: its link is missing (a bug or a bad file).
                    shard.borrow_mut().abandon_disk(
                        channel,
                        id,
                        "a link between records is missing",
                    );
                    return;
                }
                if wait_durable(shard, ticket).await.is_err() {
                    // The write failed; the records it took are forgotten.
                }
                step = shard.borrow().refill_step(channel, id);
            }
            RefillStep::Read { at, len } => {
                // A recent read may hold it already: a storage without a
                // ring takes one record per step.
                if let Some(k) = cache.iter().position(|(seg, pos, buf)| {
                    *seg == at.seg && *pos <= at.offset && at.offset < pos + buf.len() as u64
                }) {
                    let (_, pos, buf) = &cache[k];
                    let from = &buf[(at.offset - pos) as usize..];
                    let next = shard.borrow_mut().refill_apply(channel, id, at, from);
                    let stuck = match next {
                        RefillStep::NotYet => true,
                        RefillStep::Read { at: again, .. } => again == at,
                        RefillStep::Done => false,
                    };
                    if !stuck {
                        step = next;
                        continue;
                    }
                    // Too short, or a link written since: read it afresh.
                    cache.remove(k);
                }
                let read = match read_file(dir, files, at.seg).await {
                    Ok(file) => file
                        .read_at(at.offset, len)
                        .await
                        .map_err(std::io::Error::from),
                    Err(e) => Err(e),
                };
                match read {
                    Ok(buf) => {
                        step = shard.borrow_mut().refill_apply(channel, id, at, &buf);
                        if !buf.is_empty() {
                            if cache.len() == READ_CACHE_ENTRIES {
                                cache.pop_front();
                            }
                            cache.push_back((at.seg, at.offset, buf));
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        shard.borrow_mut().counters.disk_errors += 1;
                        tracing::error!(
                            channel,
                            file = %dir.path(at.seg).display(),
                            attempt = failures,
                            "overflow read failed: {e}"
                        );
                        if failures >= READ_ATTEMPTS {
                            shard
                                .borrow_mut()
                                .abandon_disk(channel, id, "reads keep failing");
                            return;
                        }
                        glommio::timer::sleep(Duration::from_millis(100)).await;
                        step = shard.borrow().refill_step(channel, id);
                    }
                }
            }
        }
        glommio::yield_if_needed().await;
    }
}

async fn read_file<'f>(
    dir: &SegmentDir,
    files: &'f mut HashMap<u32, BufferedFile>,
    seg: u32,
) -> std::io::Result<&'f BufferedFile> {
    match files.entry(seg) {
        std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
        std::collections::hash_map::Entry::Vacant(v) => {
            let file = BufferedFile::open(dir.path(seg))
                .await
                .map_err(std::io::Error::from)?;
            Ok(v.insert(file))
        }
    }
}
