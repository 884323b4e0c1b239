//! The data directory across restarts.
//!
//! At shutdown each shard writes out its overflow (the writer task syncs it)
//! and dumps its non-empty memory to `<data_dir>/<storage>.rq` (the
//! original's format). At start, before any shard serves, [`load`] brings
//! everything back:
//! - this node's overflow segments (`overflow-<shard>of<shards>-<seq>.dat`)
//!   are recovered by scanning them ([`dmq_storage::disk::recover`]): torn
//!   tails are cut, missing links rewritten, drained segments deleted; with
//!   the same number of shards each shard keeps its segments where they are;
//! - dumps are loaded into memory as far as each ring holds them; the excess
//!   goes to the disk overflow *in front of* the storage's disk records (which
//!   are then copied behind it), so the order stays FIFO;
//! - the original node's `overflow.dat` + `ofchannels.csv`, and segments
//!   written with another number of shards, are copied into the owner
//!   shards' overflow behind the memory records.
//!
//! The files that were copied (dumps, the original's files, other-layout
//! segments) are deleted once every shard holds its channels. A crash before
//! that can deliver their records twice (never lose them).
//!
//! All of this runs on the main thread before the shards serve, or on a
//! shard after its connections are gone, so the blocking file I/O here never
//! delays a request.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use dmq_storage::disk::{self, DiskConfig, DiskQueue, DiskWriter, ReadPlan, Recovered, WriteJob};
use dmq_storage::files::{self, ChannelContent, FileError};
use dmq_storage::{channels::MIN_RING_BYTES, ChannelSizes};

use crate::overflow_io::SegmentDir;
use crate::route::shard_for;
use crate::shard::Shard;

/// Why the data directory could not be loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot read the data directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the disk overflow cannot take the records loaded at start ({0}); free disk space or raise overflow.disk_limit")]
    Overflow(dmq_storage::disk::DiskError),
}

/// How a start sizes rings and the overflow.
#[derive(Debug, Clone)]
pub struct Layout {
    pub data_dir: PathBuf,
    pub sizes: ChannelSizes,
    pub shards: usize,
    pub disk: DiskConfig,
    /// Ring bytes per shard; `None` = no budget.
    pub budget: Option<usize>,
}

impl Layout {
    fn segment_dir(&self, shard: usize, shards: usize) -> SegmentDir {
        SegmentDir {
            dir: self.data_dir.clone(),
            shard,
            shards,
            segment_size: self.disk.segment_size,
            unreserved_logged: Default::default(),
        }
    }
}

/// What one shard starts with.
#[derive(Debug)]
pub struct ShardLoad {
    /// The channels it owns and each storage's records for memory.
    pub channels: Vec<(String, ChannelContent)>,
    /// Its overflow.
    pub disk: DiskWriter,
    /// Storage name -> its records on disk.
    pub disk_parts: HashMap<String, DiskQueue>,
}

/// What a start found in the data directory.
#[derive(Debug)]
pub struct Loaded {
    pub per_shard: Vec<ShardLoad>,
    /// The files read, deleted once every shard has taken its channels.
    pub files: Vec<PathBuf>,
    pub storages: usize,
    pub records: u64,
}

/// What the data directory holds, by kind.
#[derive(Default)]
struct Found {
    dumps: Vec<(String, PathBuf)>,
    /// `(shards, shard)` -> segment numbers.
    segments: BTreeMap<(usize, usize), Vec<u32>>,
    original: bool,
    /// Segment index files of the last clean shutdown: deleted after the start.
    stale: Vec<PathBuf>,
}

fn dir_error(path: &Path) -> impl Fn(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Dir {
        path: path.to_owned(),
        source,
    }
}

fn write_error(path: &Path) -> impl Fn(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Write {
        path: path.to_owned(),
        source,
    }
}

fn scan_dir(data_dir: &Path) -> Result<Found, PersistError> {
    let mut found = Found::default();
    let entries = match std::fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(dir_error(data_dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(dir_error(data_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = files::parse_dump_file_name(&name) {
            found.dumps.push((stem.to_owned(), entry.path()));
        } else if name.ends_with(".rq") {
            tracing::warn!(file = %name, "ignoring dump file with an invalid name");
        } else if let Some((shard, shards, seq)) = disk::parse_segment_file_name(&name) {
            found.segments.entry((shards, shard)).or_default().push(seq);
        } else if name == files::DATA_FILE_NAME || name == files::INDEX_FILE_NAME {
            found.original = true;
        } else if name.starts_with('.') && name.ends_with(".tmp") {
            // A dump or index this node was writing when it stopped short;
            // the real file was never renamed over, so this one is useless.
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::warn!(file = %name, "unfinished temporary file deleted"),
                Err(e) => {
                    tracing::warn!(file = %name, "cannot delete unfinished temporary file: {e}")
                }
            }
        } else if disk::is_segment_index_file_name(&name) {
            // Written at the last clean shutdown for operators and tools;
            // the segments themselves are what a start reads.
            found.stale.push(entry.path());
        }
    }
    // Dumps first: memory is older than disk.
    found.dumps.sort();
    Ok(found)
}

/// Executes a writer's pending jobs with plain file I/O.
fn write_pending(dir: &SegmentDir, writer: &mut DiskWriter) -> Result<(), PersistError> {
    while let Some(job) = writer.take_write() {
        let result = execute_blocking(dir, &job);
        let seg = job.segments().next().unwrap_or_default();
        writer.write_done(job, result.is_ok());
        result.map_err(write_error(&dir.path(seg)))?;
    }
    Ok(())
}

/// Writes what is pending and syncs every segment of the writer.
fn sync_all(dir: &SegmentDir, writer: &mut DiskWriter) -> Result<(), PersistError> {
    write_pending(dir, writer)?;
    for seg in writer.segments().seqs() {
        let path = dir.path(seg);
        if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) {
            file.sync_data().map_err(write_error(&path))?;
        }
    }
    Ok(())
}

fn execute_blocking(dir: &SegmentDir, job: &WriteJob) -> std::io::Result<()> {
    if let Some(data) = &job.data {
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if job.creates() {
            options.create(true).truncate(true);
        }
        let file = options.open(dir.path(data.seg))?;
        file.write_all_at(&data.bytes, data.pos)?;
    }
    for patch in &job.patches {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path(patch.seg))?;
        file.write_all_at(&patch.header, patch.pos)?;
    }
    Ok(())
}

/// Reads the next records of `q` back (in order, about a megabyte at a
/// time); `None` once it is empty.
fn read_some(
    dir: &SegmentDir,
    writer: &mut DiskWriter,
    q: &mut DiskQueue,
) -> Result<Option<Vec<Vec<u8>>>, PersistError> {
    let mut len = 1 << 20;
    loop {
        let at = match writer.segments().read_plan(q, len) {
            ReadPlan::Nothing => return Ok(None),
            ReadPlan::NotYet => {
                write_pending(dir, writer)?;
                match writer.segments().read_plan(q, len) {
                    ReadPlan::Read { at, .. } => at,
                    _ => {
                        tracing::error!("overflow record chain broken at start; the rest of the storage is lost");
                        writer.drop_queue(q);
                        return Ok(None);
                    }
                }
            }
            ReadPlan::Read { at, len: planned } => {
                len = planned;
                at
            }
        };
        let path = dir.path(at.seg);
        let file = std::fs::File::open(&path).map_err(dir_error(&path))?;
        let mut buf = vec![0u8; len];
        let n = read_up_to(&file, &mut buf, at.offset).map_err(dir_error(&path))?;
        buf.truncate(n);
        let mut records = Vec::new();
        let done = writer
            .consume(q, at, &buf, |payload| {
                records.push(payload.to_vec());
                true
            })
            .map_err(|corrupt| PersistError::Dir {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, corrupt),
            })?;
        match done.need {
            // A record longer than the first read: read it whole, if the
            // segment really holds that much (never allocate what a header
            // merely claims).
            Some(need)
                if done.records == 0
                    && need > n
                    && n == len
                    && at.offset.saturating_add(need as u64)
                        <= writer.segments().written(at.seg) =>
            {
                len = need
            }
            _ if done.records == 0 => {
                tracing::error!(file = %path.display(), "overflow record unreadable at start; the rest of the storage is lost");
                writer.drop_queue(q);
                return Ok(None);
            }
            _ => return Ok(Some(records)),
        }
    }
}

/// Appends a record at start, writing what is pending first whenever the
/// writer is behind (nothing else drains it before the shards run).
fn append(
    dir: &SegmentDir,
    writer: &mut DiskWriter,
    q: &mut DiskQueue,
    name: &str,
    record: &[u8],
) -> Result<(), PersistError> {
    match writer.append(q, &|| name.to_owned(), record) {
        Err(disk::DiskError::Behind) => {
            write_pending(dir, writer)?;
            writer.append(q, &|| name.to_owned(), record)
        }
        other => other,
    }
    .map(|_| ())
    .map_err(PersistError::Overflow)
}

/// Moves every record of `from` (in `from_writer`) behind the records of
/// `to` in `to_writer`, writing as it goes. Returns the records moved.
fn move_records(
    from_dir: &SegmentDir,
    from_writer: &mut DiskWriter,
    from: &mut DiskQueue,
    to_dir: &SegmentDir,
    to_writer: Option<&mut DiskWriter>,
    to: &mut DiskQueue,
    name: &str,
) -> Result<u64, PersistError> {
    let mut moved = 0u64;
    let mut to_writer = to_writer;
    while let Some(records) = read_some(from_dir, from_writer, from)? {
        let writer: &mut DiskWriter = match to_writer.as_deref_mut() {
            Some(w) => w,
            None => &mut *from_writer,
        };
        for record in &records {
            append(to_dir, writer, to, name, record)?;
        }
        moved += records.len() as u64;
        write_pending(to_dir, writer)?;
    }
    from_writer.drop_queue(from);
    Ok(moved)
}

fn read_up_to(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// Recovers the segments of one shard of some layout, repairing the files
/// (torn tails cut, links rewritten, drained segments deleted).
fn recover_segments(
    dir: &SegmentDir,
    config: DiskConfig,
    seqs: &[u32],
) -> Result<Recovered, PersistError> {
    // Two passes over every segment: log progress on large overflows.
    let total: u64 = seqs
        .iter()
        .filter_map(|&seq| std::fs::metadata(dir.path(seq)).ok())
        .map(|m| m.len())
        .sum();
    let started = std::time::Instant::now();
    let mut read = 0u64;
    let mut reported = started;
    let recovered = disk::recover(config, seqs, |seq| {
        let bytes = std::fs::read(dir.path(seq))?;
        read += bytes.len() as u64;
        if reported.elapsed() >= std::time::Duration::from_secs(5) {
            reported = std::time::Instant::now();
            tracing::info!(
                shard = dir.shard,
                done_mib = read >> 20,
                of_mib = (2 * total) >> 20,
                "recovering the overflow (two passes over the segments)"
            );
        }
        Ok(bytes)
    })
    .map_err(dir_error(&dir.dir))?;
    if started.elapsed() >= std::time::Duration::from_secs(1) {
        tracing::info!(
            shard = dir.shard,
            mib = total >> 20,
            seconds = started.elapsed().as_secs_f64(),
            "overflow segments scanned"
        );
    }
    for &(seq, len) in &recovered.truncate {
        let path = dir.path(seq);
        tracing::warn!(file = %path.display(), valid_bytes = len, "overflow segment has a torn tail (crash): cut");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(len))
            .map_err(write_error(&path))?;
    }
    for patch in &recovered.patches {
        let path = dir.path(patch.seg);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.write_all_at(&patch.header, patch.pos))
            .map_err(write_error(&path))?;
    }
    if !recovered.patches.is_empty() {
        tracing::warn!(
            links = recovered.patches.len(),
            "overflow links the crash did not write: rewritten"
        );
    }
    for &seq in &recovered.empty {
        let path = dir.path(seq);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(file = %path.display(), "cannot delete drained overflow segment: {e}");
        }
    }
    if recovered.orphans > 0 {
        tracing::error!(
            records = recovered.orphans,
            "overflow records without a storage name cannot be restored"
        );
    }
    Ok(recovered)
}

/// Ring capacity each restored storage will get, in the order the shard
/// makes them (channels by name; subscribers by name), with the same budget
/// rule as [`dmq_storage::Channels`].
fn ring_for(sizes: &ChannelSizes, budget: &mut Option<usize>, channel: &str) -> usize {
    let wanted = sizes.size_for(channel);
    let mut size = budget.map_or(wanted, |left| wanted.min(left));
    if size < wanted.min(MIN_RING_BYTES) {
        size = 0;
    }
    if let Some(left) = budget {
        *left -= size;
    }
    size
}

/// Segments written with another number of shards: their directory, their
/// writer and their queues by storage name. Copied to the owner shards.
type Foreign = Vec<(SegmentDir, DiskWriter, HashMap<String, DiskQueue>)>;

/// Everything found that is not already where it belongs: memory records by
/// storage name, other-layout segments, and which sources each storage to
/// restore takes its records from.
struct Sources {
    memory: BTreeMap<String, Vec<Vec<u8>>>,
    foreign: Foreign,
    /// Storage to restore -> the names whose records it takes.
    targets: BTreeMap<String, Vec<String>>,
}

/// Reads the data directory (see the module documentation) and assigns
/// every channel to its owner shard.
pub fn load(layout: &Layout) -> Result<Loaded, PersistError> {
    let shards = layout.shards.max(1);
    // What was stored is restored even past overflow.disk_limit (a smaller
    // ring can send more to disk than before); the limit applies to new
    // records.
    let unlimited = DiskConfig {
        limit: 0,
        ..layout.disk
    };
    let found = scan_dir(&layout.data_dir)?;
    let mut loaded = Loaded {
        per_shard: (0..shards)
            .map(|_| ShardLoad {
                channels: Vec::new(),
                disk: DiskWriter::new(unlimited),
                disk_parts: HashMap::new(),
            })
            .collect(),
        files: Vec::new(),
        storages: 0,
        records: 0,
    };
    let (foreign, extra_sources) = recover_all(layout, unlimited, &found, &mut loaded)?;
    loaded.files.extend(found.stale.iter().cloned());
    let memory = read_memory(&layout.data_dir, &found, &mut loaded.files)?;
    let targets = restore_targets(&memory, &loaded, &foreign, extra_sources);
    let contents = files::reconstruct(targets.keys().map(|name| (name.as_str(), Vec::new())))?;
    let mut sources = Sources {
        memory,
        foreign,
        targets,
    };
    let mut budgets: Vec<Option<usize>> = vec![layout.budget; shards];
    for (channel, content) in contents {
        let shard = shard_for(channel.as_bytes(), shards);
        let content = place_channel(
            layout,
            &channel,
            content,
            &mut budgets[shard],
            &mut sources,
            &mut loaded,
        )?;
        loaded.per_shard[shard].channels.push((channel, content));
    }
    for (shard, target) in loaded.per_shard.iter_mut().enumerate() {
        sync_all(&layout.segment_dir(shard, shards), &mut target.disk)?;
        target.disk.set_config(layout.disk);
    }
    Ok(loaded)
}

/// Recovers every segment found: this layout's stay with their shard in
/// `loaded` (their files untouched); other layouts' are returned to be
/// copied, their files listed for deletion. Also returns the extra parts of
/// a storage found under two channel ids: `(storage name, key in
/// disk_parts)`.
fn recover_all(
    layout: &Layout,
    unlimited: DiskConfig,
    found: &Found,
    loaded: &mut Loaded,
) -> Result<(Foreign, Vec<(String, String)>), PersistError> {
    let shards = loaded.per_shard.len();
    let mut extra_sources: Vec<(String, String)> = Vec::new();
    let mut foreign: Foreign = Vec::new();
    for (&(n, shard), seqs) in &found.segments {
        let dir = layout.segment_dir(shard, n);
        let mut recovered = recover_segments(&dir, unlimited, seqs)?;
        tracing::info!(
            shard,
            shards = n,
            segments = seqs.len(),
            storages = recovered.queues.len(),
            "overflow recovered"
        );
        if n != shards {
            loaded.files.extend(seqs.iter().map(|&seq| dir.path(seq)));
            let queues = recovered.queues.into_iter().collect();
            foreign.push((dir, recovered.writer, queues));
            continue;
        }
        let target = &mut loaded.per_shard[shard];
        for (name, q) in recovered.queues.drain(..) {
            if target.disk_parts.contains_key(&name) {
                // Two channel ids under one name cannot come from this
                // node's writes (a drop is always written before the next
                // id's records); keep the records reachable anyway, the
                // newer id behind the older.
                tracing::error!(storage = %name, "two overflow queues with one storage name; the newer one goes behind");
                let key = format!("{name}\u{0}{}", extra_sources.len());
                target.disk_parts.insert(key.clone(), q);
                extra_sources.push((name, key));
            } else {
                target.disk_parts.insert(name, q);
            }
        }
        target.disk = recovered.writer;
    }
    Ok((foreign, extra_sources))
}

/// Memory records per storage: the dumps, then the original's overflow.
fn read_memory(
    data_dir: &Path,
    found: &Found,
    loaded_files: &mut Vec<PathBuf>,
) -> Result<BTreeMap<String, Vec<Vec<u8>>>, PersistError> {
    let mut memory: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (stem, path) in &found.dumps {
        let records = files::load_dump_file(path, usize::MAX)?;
        tracing::info!(file = %path.display(), records = records.len(), "loading dump");
        memory.entry(stem.clone()).or_default().extend(records);
        loaded_files.push(path.clone());
    }
    if found.original {
        load_original(data_dir, &mut memory, loaded_files)?;
    }
    Ok(memory)
}

/// Every storage to restore, with the source names whose records it takes:
/// every storage name from every source (not the keys of extra parts),
/// settled into channel modes, extra parts behind their storage.
fn restore_targets(
    memory: &BTreeMap<String, Vec<Vec<u8>>>,
    loaded: &Loaded,
    foreign: &Foreign,
    extra_sources: Vec<(String, String)>,
) -> BTreeMap<String, Vec<String>> {
    let mut names: Vec<String> = memory.keys().cloned().collect();
    for load in &loaded.per_shard {
        names.extend(
            load.disk_parts
                .keys()
                .filter(|k| !k.contains('\0'))
                .cloned(),
        );
    }
    for (_, _, queues) in foreign {
        names.extend(queues.keys().cloned());
    }
    names.sort();
    names.dedup();
    let mut targets = settle_modes(names, memory);
    for (of, key) in extra_sources {
        if let Some(sources) = targets.values_mut().find(|s| s.contains(&of)) {
            sources.push(key);
        }
    }
    targets
}

/// Gathers each storage of `channel` on its owner shard (see
/// [`place_storage`]) and returns the channel's content for memory.
fn place_channel(
    layout: &Layout,
    channel: &str,
    content: ChannelContent,
    budget: &mut Option<usize>,
    sources: &mut Sources,
    loaded: &mut Loaded,
) -> Result<ChannelContent, PersistError> {
    let storage_names: Vec<Option<String>> = match &content {
        ChannelContent::Unsubscribed(_) => vec![None],
        ChannelContent::Subscribed(subs) => subs.keys().cloned().map(Some).collect(),
    };
    let mut per_storage: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for subscriber in storage_names {
        let name = dmq_storage::storage_name(channel, subscriber.as_deref());
        let capacity = ring_for(&layout.sizes, budget, channel);
        let records = place_storage(layout, channel, &name, capacity, sources, loaded)?;
        per_storage.insert(name, records);
    }
    Ok(match content {
        ChannelContent::Unsubscribed(_) => {
            ChannelContent::Unsubscribed(per_storage.into_values().next().unwrap_or_default())
        }
        ChannelContent::Subscribed(subs) => ChannelContent::Subscribed(
            subs.into_keys()
                .map(|sub| {
                    let name = dmq_storage::storage_name(channel, Some(&sub));
                    let records = per_storage.remove(&name).unwrap_or_default();
                    (sub, records)
                })
                .collect(),
        ),
    })
}

/// Puts one storage's records in order on its owner shard: as many of the
/// oldest memory records as its ring of `capacity` holds (returned), the
/// excess to the disk overflow in front of its disk part, then any other
/// disk part of it, then its records from other-layout segments.
fn place_storage(
    layout: &Layout,
    channel: &str,
    name: &str,
    capacity: usize,
    sources: &mut Sources,
    loaded: &mut Loaded,
) -> Result<Vec<Vec<u8>>, PersistError> {
    let shards = loaded.per_shard.len();
    let shard = shard_for(channel.as_bytes(), shards);
    let dir = layout.segment_dir(shard, shards);
    let from = sources.targets.remove(name).unwrap_or_default();
    let mut records: Vec<Vec<u8>> = Vec::new();
    for source in &from {
        records.extend(sources.memory.remove(source).unwrap_or_default());
    }
    let mut used = 0usize;
    let fit = records
        .iter()
        .take_while(|r| {
            used = used.saturating_add(r.len() + dmq_storage::RECORD_HEADER_LEN);
            used <= capacity
        })
        .count();
    let excess = records.split_off(fit);
    let target = &mut loaded.per_shard[shard];
    let mut mine = from
        .iter()
        .filter_map(|source| target.disk_parts.remove(source))
        .collect::<Vec<DiskQueue>>()
        .into_iter();
    let mut part = DiskQueue::default();
    if excess.is_empty() {
        // The usual case: the disk part stays where it is.
        if let Some(first) = mine.next() {
            part = first;
        }
    } else {
        for record in &excess {
            append(&dir, &mut target.disk, &mut part, name, record)?;
        }
        write_pending(&dir, &mut target.disk)?;
        tracing::info!(storage = %name, records = excess.len(), "ring smaller than the stored records: the excess goes to the disk overflow");
    }
    // Any other disk part of this storage goes behind (copied).
    for mut old in mine {
        move_records(
            &dir,
            &mut target.disk,
            &mut old,
            &dir,
            None,
            &mut part,
            name,
        )?;
    }
    // Segments of another layout: behind everything.
    for (old_dir, old_writer, queues) in sources.foreign.iter_mut() {
        for source in &from {
            if let Some(mut old) = queues.remove(source) {
                move_records(
                    old_dir,
                    old_writer,
                    &mut old,
                    &dir,
                    Some(&mut target.disk),
                    &mut part,
                    name,
                )?;
            }
        }
    }
    loaded.records += (records.len() as u64) + part.records();
    loaded.storages += 1;
    if !part.is_empty() {
        target.disk_parts.insert(name.to_owned(), part);
    }
    Ok(records)
}

/// Storage names as they will be restored, each with the source names whose
/// records it takes. A plain `ch` found only on disk next to `sub@ch`
/// storages (a crash between a subscribe and the record of its rename)
/// becomes `@ch`; for dumps the mix stays an error, as in the original.
fn settle_modes(
    names: Vec<String>,
    memory: &BTreeMap<String, Vec<Vec<u8>>>,
) -> BTreeMap<String, Vec<String>> {
    let subscribed: std::collections::BTreeSet<String> = names
        .iter()
        .filter_map(|n| match dmq_storage::split_storage_name(n) {
            (Some(_), channel) => Some(channel.to_owned()),
            (None, _) => None,
        })
        .collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in names {
        let (sub, channel) = dmq_storage::split_storage_name(&name);
        let target = if sub.is_none() && subscribed.contains(channel) && !memory.contains_key(&name)
        {
            tracing::warn!(storage = %name, "disk records of a plain storage next to subscribers: restored as the default subscriber's");
            dmq_storage::storage_name(channel, Some(""))
        } else {
            name.clone()
        };
        out.entry(target).or_default().push(name);
    }
    out
}

/// Loads the original node's `overflow.dat` + `ofchannels.csv` into the
/// memory lists (behind the dumps), or leaves them in place if no index
/// names their channels.
fn load_original(
    data_dir: &Path,
    memory: &mut BTreeMap<String, Vec<Vec<u8>>>,
    loaded_files: &mut Vec<PathBuf>,
) -> Result<(), PersistError> {
    let data = data_dir.join(files::DATA_FILE_NAME);
    let index = data_dir.join(files::INDEX_FILE_NAME);
    let entries = files::read_index_file(&index)?;
    let bytes = match std::fs::read(&data) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(dir_error(&data)(e)),
    };
    if !entries.is_empty() {
        let channels = files::read_indexed(&bytes, &entries)?;
        tracing::info!(
            file = %data.display(),
            storages = channels.len(),
            "loading the original node's disk overflow"
        );
        for (storage, records) in channels {
            memory.entry(storage).or_default().extend(records);
        }
        loaded_files.extend([data, index].into_iter().filter(|p| p.exists()));
    } else if bytes.len() > files::MAGIC.len() {
        // Records without an index naming their channels (the original
        // crashed): they cannot be put back, and must not be deleted.
        tracing::warn!(
            file = %data.display(),
            bytes = bytes.len(),
            "the overflow file holds records but no index names their channels; left in place, not loaded"
        );
    } else {
        loaded_files.extend([data, index].into_iter().filter(|p| p.exists()));
    }
    Ok(())
}

/// Writes the index of each of the shard's segments in the original's
/// `ofchannels.csv` format, as `ofchannels-<shard>of<shards>-<seq>.csv` next
/// to the segment (at a clean shutdown, after the overflow is written): each
/// segment with its index reads like the original's `overflow.dat` and
/// `ofchannels.csv`. The next start rebuilds the state from the segments
/// themselves and deletes these files. Returns the files written.
pub fn write_overflow_index(shard: &Shard, dir: &SegmentDir) -> Result<usize, PersistError> {
    let queues = shard
        .channels()
        .iter()
        .flat_map(|channel| channel.storages().map(|(name, s)| (name, s.disk())));
    let index = shard.overflow.disk.segments().index(queues);
    for (&seq, entries) in &index {
        let name = disk::segment_index_file_name(dir.shard, dir.shards, seq);
        let path = dir.dir.join(&name);
        let temporary = dir.dir.join(format!(".{name}.tmp"));
        let fail = write_error(&path);
        let mut file = std::fs::File::create(&temporary).map_err(&fail)?;
        file.write_all(files::format_index(entries).as_bytes())
            .map_err(&fail)?;
        file.sync_all().map_err(&fail)?;
        drop(file);
        std::fs::rename(&temporary, &path).map_err(&fail)?;
    }
    Ok(index.len())
}

/// Deletes the files a start loaded (every shard holds their records now).
pub fn remove_loaded(files: &[PathBuf]) {
    for path in files {
        match std::fs::remove_file(path) {
            Ok(()) => tracing::info!(file = %path.display(), "loaded file deleted"),
            Err(e) => tracing::warn!(file = %path.display(), "cannot delete loaded file: {e}"),
        }
    }
}

/// Writes every non-empty storage of the shard to `<data_dir>/<storage>.rq`
/// (through a temporary file and a rename, so a crash mid-write leaves no
/// half file under the real name). Returns the number of files written.
pub fn dump_shard(shard: &Shard, data_dir: &Path) -> Result<usize, PersistError> {
    let mut written = 0;
    for channel in shard.channels().iter() {
        for (storage_name, storage) in channel.storages() {
            if storage.memory_len() == 0 {
                continue;
            }
            if written == 0 {
                std::fs::create_dir_all(data_dir).map_err(|source| PersistError::Write {
                    path: data_dir.to_owned(),
                    source,
                })?;
            }
            let path = data_dir.join(files::dump_file_name(&storage_name));
            let temporary = data_dir.join(format!(".{}.tmp", files::dump_file_name(&storage_name)));
            let fail = |source| PersistError::Write {
                path: path.clone(),
                source,
            };
            let mut file = std::fs::File::create(&temporary).map_err(fail)?;
            let dump = files::encode_dump(storage.memory_records())
                .map_err(|e| fail(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
            file.write_all(&dump).map_err(fail)?;
            file.flush().map_err(fail)?;
            file.sync_all().map_err(fail)?;
            drop(file);
            if path.exists() {
                tracing::warn!(file = %path.display(), "dump file exists already: replacing it");
            }
            std::fs::rename(&temporary, &path).map_err(fail)?;
            tracing::info!(
                file = %path.display(),
                records = storage.memory_len(),
                "storage dumped"
            );
            written += 1;
        }
    }
    Ok(written)
}
