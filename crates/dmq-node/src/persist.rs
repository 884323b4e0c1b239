//! Memory rings across a clean restart: at shutdown each shard dumps its
//! non-empty storages to `<data_dir>/<storage>.rq` (the original's format); at
//! start the node loads every dump, and the original's `overflow.dat` +
//! `ofchannels.csv` if a data directory of the original node is given, puts
//! each channel back on its owner shard, then deletes the files it loaded.
//!
//! Loading runs on the main thread before any shard serves, and dumping runs
//! on each shard after its connections are gone, so the blocking file I/O here
//! never delays a request.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use dmq_storage::files::{self, ChannelContent, FileError};
use dmq_storage::ChannelSizes;

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
    #[error("channel '{channel}': storage '{storage}' holds {bytes} bytes of records, more than its ring of {capacity} bytes; raise server.channel_size_limit (or its channel_size_by_id entry) to at least {bytes}")]
    TooLarge {
        channel: String,
        storage: String,
        bytes: usize,
        capacity: usize,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a start found in the data directory.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Per shard: the channels it owns and their records.
    pub per_shard: Vec<Vec<(String, ChannelContent)>>,
    /// The files read, deleted once every shard has taken its channels.
    pub files: Vec<PathBuf>,
    pub storages: usize,
    pub records: usize,
}

/// Reads every dump (and the original's overflow) in `data_dir`, checks that
/// each storage fits its ring, and assigns the channels to shards.
pub fn load(
    data_dir: &Path,
    sizes: &ChannelSizes,
    nr_shards: usize,
) -> Result<Loaded, PersistError> {
    let mut loaded = Loaded {
        per_shard: (0..nr_shards.max(1)).map(|_| Vec::new()).collect(),
        ..Loaded::default()
    };
    let entries = match std::fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(loaded),
        Err(source) => {
            return Err(PersistError::Dir {
                path: data_dir.to_owned(),
                source,
            })
        }
    };
    let mut dumps: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| PersistError::Dir {
            path: data_dir.to_owned(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = files::parse_dump_file_name(&name) {
            dumps.push((stem.to_owned(), entry.path()));
        } else if name.ends_with(".rq") {
            tracing::warn!(file = %name, "ignoring dump file with an invalid name");
        }
    }
    // Dumps first: the original pops memory before the overflow.
    dumps.sort();
    let mut storages: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    for (stem, path) in &dumps {
        let (_, channel) = dmq_storage::split_storage_name(stem);
        let records = files::load_dump_file(path, sizes.size_for(channel))?;
        tracing::info!(file = %path.display(), records = records.len(), "loading dump");
        storages.push((stem.clone(), records));
        loaded.files.push(path.clone());
    }
    let data = data_dir.join(files::DATA_FILE_NAME);
    let index = data_dir.join(files::INDEX_FILE_NAME);
    if data.exists() || index.exists() {
        let entries = files::read_index_file(&index)?;
        let bytes = match std::fs::read(&data) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(PersistError::Dir {
                    path: data.clone(),
                    source,
                })
            }
        };
        if !entries.is_empty() {
            let channels = files::read_indexed(&bytes, &entries)?;
            tracing::info!(
                file = %data.display(),
                storages = channels.len(),
                "loading the original node's disk overflow into memory"
            );
            storages.extend(channels);
            loaded
                .files
                .extend([data, index].into_iter().filter(|p| p.exists()));
        } else if bytes.len() > files::MAGIC.len() {
            // Records without an index naming their channels (the original
            // crashed): they cannot be put back, and must not be deleted.
            tracing::warn!(
                file = %data.display(),
                bytes = bytes.len(),
                "the overflow file holds records but no index names their channels; left in place, not loaded"
            );
        } else {
            loaded
                .files
                .extend([data, index].into_iter().filter(|p| p.exists()));
        }
    }
    for (storage, records) in &storages {
        let (_, channel) = dmq_storage::split_storage_name(storage);
        let capacity = sizes.size_for(channel);
        let bytes: usize = records.iter().map(|r| r.len() + 8).sum();
        if bytes > capacity {
            return Err(PersistError::TooLarge {
                channel: channel.to_owned(),
                storage: storage.clone(),
                bytes,
                capacity,
            });
        }
        loaded.storages += 1;
        loaded.records += records.len();
    }
    let channels: BTreeMap<String, ChannelContent> = files::reconstruct(storages)?;
    for (channel, content) in channels {
        let shard = shard_for(channel.as_bytes(), nr_shards);
        loaded.per_shard[shard].push((channel, content));
    }
    Ok(loaded)
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
            if storage.is_empty() {
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
            files::write_dump(&mut file, storage.ring()).map_err(fail)?;
            file.flush().map_err(fail)?;
            file.sync_all().map_err(fail)?;
            drop(file);
            if path.exists() {
                tracing::warn!(file = %path.display(), "dump file exists already: replacing it");
            }
            std::fs::rename(&temporary, &path).map_err(fail)?;
            tracing::info!(
                file = %path.display(),
                records = storage.len(),
                "storage dumped"
            );
            written += 1;
        }
    }
    Ok(written)
}
