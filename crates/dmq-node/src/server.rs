//! Starting and stopping the node: bind the listeners on the main thread (so a
//! bad address fails the start with a clear message), start one glommio executor
//! per shard, join them into a mesh, serve until a signal, then shut down in two
//! phases: first every connection on every shard ends, then the shards stop
//! (no shard stops while another shard's connection may still need it).

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};

use crate::admin;
use crate::config::Config;
use crate::context::{NodeShared, ShardContext};
use crate::credentials::CredentialStore;
use crate::listener;
use crate::route::{self, Router, ShardMsg};
use crate::shard::Shard;
use crate::shutdown::Shutdown;
use crate::{legacy, neo};

/// Depth of each shard-to-shard queue, in messages (each a batch of ops).
pub const MESH_DEPTH: usize = 1024;
/// How long shutdown waits for connections to finish their current request.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What `run` reports once the listeners are bound.
#[derive(Debug, Clone)]
pub struct Bound {
    pub shards: usize,
    pub legacy: Option<std::net::SocketAddr>,
    pub neo: Option<std::net::SocketAddr>,
    pub metrics: Option<std::net::SocketAddr>,
}

/// The CPUs this process may run on, in order.
pub fn usable_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bitmask that sched_getaffinity fills in; we pass
    // its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Runs the node until SIGINT, SIGTERM or SIGQUIT. `on_bound` is called once the
/// listeners are bound (the binary prints the addresses).
pub fn run(config: Config, on_bound: impl FnOnce(&Bound)) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let cpus = usable_cpus();
    let shards = match config.server.shards {
        0 => cpus.len().max(1),
        n => n as usize,
    };
    let sizes = config.channel_sizes()?;
    crate::preflight::check(&config.server.data_dir)?;
    let disk_limit = config.overflow.disk_limit;
    if disk_limit != 0 && disk_limit / (shards as u64) < config.overflow.segment_size {
        anyhow::bail!(
            "overflow.disk_limit {disk_limit} is split between {shards} shards, {} bytes each, less than one segment (overflow.segment_size {}): raise it to at least {}",
            disk_limit / shards as u64,
            config.overflow.segment_size,
            config.overflow.segment_size * shards as u64
        );
    }
    let layout = crate::persist::Layout {
        data_dir: config.server.data_dir.clone(),
        sizes: sizes.clone(),
        shards,
        disk: dmq_storage::disk::DiskConfig {
            segment_size: config.overflow.segment_size,
            limit: config.overflow.disk_limit / shards as u64,
        },
        budget: (config.server.memory_limit > 0).then(|| {
            usize::try_from(config.server.memory_limit / shards as u64).unwrap_or(usize::MAX)
        }),
    };
    let mut loaded: Vec<Option<crate::persist::ShardLoad>> = Vec::new();
    let loaded_files;
    let (loaded_storages, loaded_records);
    {
        let all = crate::persist::load(&layout)?;
        loaded_files = all.files;
        loaded_storages = all.storages;
        loaded_records = all.records;
        loaded.extend(all.per_shard.into_iter().map(Some));
    }

    let credentials = CredentialStore::load(&config.server.credentials)?;
    let node = Arc::new(NodeShared {
        shutdown: Shutdown::default(),
        legacy_connections: Arc::default(),
        neo_connections: Arc::default(),
        credentials,
        nr_shards: shards,
    });
    // Signals first: once the addresses are printed, a SIGTERM must already mean
    // a clean shutdown.
    spawn_signal_thread(node.clone())?;

    let legacy = match config.legacy_addr() {
        Some(addr) => Some(
            listener::bind(addr, shards, config.server.backlog)
                .map_err(|e| listen_error(e, addr, "server.port"))?,
        ),
        None => None,
    };
    let neo = match config.neo_addr() {
        Some(addr) => Some(
            listener::bind(addr, shards, config.server.backlog)
                .map_err(|e| listen_error(e, addr, "server.neoport"))?,
        ),
        None => None,
    };
    let metrics = match config.metrics.address.as_str() {
        "" => None,
        text => {
            let addr: std::net::SocketAddr = text
                .parse()
                .with_context(|| format!("metrics.address '{text}'"))?;
            Some(
                listener::bind(addr, 1, config.server.backlog)
                    .map_err(|e| listen_error(e, addr, "metrics.address"))?,
            )
        }
    };
    let bound = Bound {
        shards,
        legacy: legacy.as_ref().map(|l| l.addr),
        neo: neo.as_ref().map(|l| l.addr),
        metrics: metrics.as_ref().map(|l| l.addr),
    };
    // Every shard reports once it holds its loaded channels; shard 0 also binds
    // the admin socket (glommio's UNIX listener must be made on its executor).
    // The node announces itself, and deletes the loaded files, only then.
    let (admin_ready, admin_bound) = std::sync::mpsc::channel::<Result<(), String>>();

    let per_shard = |bound: Option<listener::BoundListener>| -> Vec<Option<OwnedFd>> {
        match bound {
            Some(l) => l.sockets.into_iter().map(Some).collect(),
            None => (0..shards).map(|_| None).collect(),
        }
    };
    let mut legacy_fds = per_shard(legacy);
    let mut neo_fds = per_shard(neo);
    let mut metrics_fd = metrics.and_then(|l| l.sockets.into_iter().next());
    let mesh = MeshBuilder::<ShardMsg, _>::full(shards, MESH_DEPTH);
    let pin = shards <= cpus.len();
    let spin = Duration::from_micros(config.performance.spin_before_park_us);

    let mut handles = Vec::with_capacity(shards);
    for id in 0..shards {
        let placement = if pin {
            Placement::Fixed(cpus[id])
        } else {
            Placement::Unbound
        };
        let config = config.clone();
        let node = node.clone();
        let layout = layout.clone();
        let legacy_fd = legacy_fds[id].take();
        let neo_fd = neo_fds[id].take();
        let metrics_fd = if id == 0 { metrics_fd.take() } else { None };
        let mesh = mesh.clone();
        let admin_ready = admin_ready.clone();
        let restore = loaded[id]
            .take()
            .ok_or_else(|| anyhow::anyhow!("shard {id}: nothing loaded"))?;
        let mut builder = LocalExecutorBuilder::new(placement)
            .name(&format!("dmq-shard-{id}"))
            .spin_before_park(spin);
        if let Some(bytes) = crate::preflight::io_memory_per_shard(shards) {
            builder = builder.io_memory(bytes);
        }
        let handle = builder
            .spawn(move || async move {
                let crate::persist::ShardLoad {
                    channels: restore,
                    disk,
                    mut disk_parts,
                } = restore;
                let channels =
                    dmq_storage::Channels::with_budget(layout.sizes.clone(), layout.budget);
                let shard = Rc::new(RefCell::new(Shard::with_storage(channels, disk)));
                {
                    let mut state = shard.borrow_mut();
                    for (channel, content) in restore {
                        state.restore(&channel, content, &mut disk_parts);
                    }
                    for name in disk_parts.keys() {
                        tracing::error!(storage = %name, "overflow records of a storage that was not restored");
                    }
                }
                let segments = crate::overflow_io::SegmentDir {
                    dir: layout.data_dir.clone(),
                    shard: id,
                    shards,
                    segment_size: layout.disk.segment_size,
                    unreserved_logged: Default::default(),
                };
                let writer = glommio::spawn_local(crate::overflow_io::write_loop(
                    shard.clone(),
                    segments.clone(),
                    Duration::from_millis(u64::from(config.overflow.write_index_ms)),
                ));
                let segments_dir = segments.clone();
                let reader =
                    glommio::spawn_local(crate::overflow_io::read_loop(shard.clone(), segments));
                let senders = if shards > 1 {
                    let (senders, mut receivers) = mesh
                        .join()
                        .await
                        .map_err(|e| anyhow::anyhow!("shard {id}: cannot join the mesh: {e}"))?;
                    for (_, from) in receivers.streams() {
                        glommio::spawn_local(route::pump(shard.clone(), from)).detach();
                    }
                    Some(senders)
                } else {
                    None
                };
                let router = Router::new(id, shards, shard.clone(), senders);
                let ctx = ShardContext::new(config.clone(), router, node.clone());
                let limit = config.server.connection_limit as usize;
                let mut accepting = Vec::new();
                if let Some(fd) = legacy_fd {
                    accepting.push(glommio::spawn_local(listener::accept_loop(
                        fd,
                        "legacy",
                        config.performance.no_delay,
                        limit,
                        node.legacy_connections.clone(),
                        ctx.clone(),
                        |stream, ctx| legacy::Connection::new(stream, ctx).run(),
                    )));
                }
                if let Some(fd) = neo_fd {
                    accepting.push(glommio::spawn_local(listener::accept_loop(
                        fd,
                        "neo",
                        // Always, as in the original (Q2): neo batches explicitly.
                        true,
                        limit,
                        node.neo_connections.clone(),
                        ctx.clone(),
                        |stream, ctx| neo::Connection::new(stream, ctx).run(),
                    )));
                }
                if let Some(fd) = metrics_fd {
                    accepting.push(glommio::spawn_local(crate::metrics::http::serve(
                        fd,
                        ctx.clone(),
                    )));
                }
                if id == 0 {
                    if !config.stats.file_name.as_os_str().is_empty() {
                        accepting.push(glommio::spawn_local(crate::stats::run(ctx.clone())));
                    }
                    if crate::stats::console::enabled(config.stats.console) {
                        accepting.push(glommio::spawn_local(crate::stats::console::run(
                            ctx.clone(),
                        )));
                    }
                }
                if id == 0 {
                    let path = config.server.unix_socket_path.clone();
                    if path.as_os_str().is_empty() {
                        let _ = admin_ready.send(Ok(()));
                    } else {
                        match admin::bind(&path) {
                            Ok(socket) => {
                                let _ = admin_ready.send(Ok(()));
                                accepting.push(glommio::spawn_local(admin::serve(
                                    socket,
                                    path,
                                    ctx.clone(),
                                )));
                            }
                            Err(e) => {
                                let _ = admin_ready.send(Err(format!(
                                    "cannot listen on {} (server.unix_socket_path): {e}",
                                    path.display()
                                )));
                            }
                        }
                    }
                }
                if id != 0 {
                    let _ = admin_ready.send(Ok(()));
                }
                drop(admin_ready);
                tracing::debug!(shard = id, "shard started");
                node.shutdown.wait().await;
                for task in accepting {
                    task.await;
                }
                drain(&node.shutdown, id).await;
                // The overflow: reads stop, everything pending is written and synced.
                let io = shard.borrow().overflow.io.clone();
                io.stop_reader();
                reader.await;
                io.stop_writer();
                writer.await;
                match crate::persist::write_overflow_index(&shard.borrow(), &segments_dir) {
                    Ok(0) => {}
                    Ok(files) => tracing::info!(shard = id, files, "overflow index written"),
                    Err(e) => tracing::warn!(shard = id, "overflow index not written: {e}"),
                }
                let dumped = crate::persist::dump_shard(&shard.borrow(), &config.server.data_dir)
                    .map_err(|e| {
                    anyhow::anyhow!(
                        "shard {id}: dump failed, records of this shard may be lost: {e}"
                    )
                })?;
                if dumped > 0 {
                    tracing::info!(shard = id, storages = dumped, "memory dumped");
                }
                tracing::debug!(shard = id, "shard stopped");
                anyhow::Ok(())
            })
            .map_err(|e| anyhow::anyhow!("cannot start the executor of shard {id}: {e}"))?;
        handles.push(handle);
    }
    drop(admin_ready);
    let mut result = Ok(());
    for _ in 0..shards {
        match admin_bound.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                result = Err(anyhow::anyhow!(e));
                break;
            }
            // A shard ended before it was ready: its own error, read at
            // join, says why.
            Err(_) => {
                result = Err(anyhow::anyhow!("a shard stopped before it was ready"));
                break;
            }
        }
    }
    if result.is_ok() {
        if loaded_storages > 0 {
            tracing::info!(
                storages = loaded_storages,
                records = loaded_records,
                "loaded the data directory"
            );
        }
        crate::persist::remove_loaded(&loaded_files);
        on_bound(&bound);
    }
    let early_stop = result.is_err();
    if early_stop {
        node.shutdown.trigger();
    }
    let mut shard_error = None;
    for (id, handle) in handles.into_iter().enumerate() {
        let error = match handle.join() {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(e) => anyhow::anyhow!("shard {id} failed: {e}"),
        };
        shard_error.get_or_insert(error);
    }
    if let Some(e) = shard_error {
        result = match result {
            Ok(()) => Err(e),
            Err(_) if early_stop => Err(e),
            Err(first) => Err(first),
        };
    }
    tracing::info!("shut down");
    result
}

/// One line for a listener that cannot be opened, with the key to change.
fn listen_error(e: std::io::Error, addr: std::net::SocketAddr, key: &str) -> anyhow::Error {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "; another process holds the port: stop it or choose another port"
        }
        std::io::ErrorKind::AddrNotAvailable => "; the address is not on this machine",
        std::io::ErrorKind::PermissionDenied => "; ports below 1024 need privileges",
        _ => "",
    };
    anyhow::anyhow!("cannot listen on {addr} ({key}): {e}{hint}")
}

/// Waits until no connection of any shard is open (each ends after its current
/// request), or the drain timeout passes.
async fn drain(shutdown: &Shutdown, id: usize) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while shutdown.live_connections() > 0 {
        if Instant::now() >= deadline {
            tracing::warn!(
                shard = id,
                open = shutdown.live_connections(),
                "shutdown: connections still open after {DRAIN_TIMEOUT:?}, dropping them"
            );
            return;
        }
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
}

/// SIGINT, SIGTERM and SIGQUIT trigger the shutdown (once); SIGHUP is accepted
/// (log files are reopened by the logging layer).
fn spawn_signal_thread(node: Arc<NodeShared>) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGQUIT, SIGHUP])
        .context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("dmq-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    crate::logging::reopen();
                    continue;
                }
                if node.shutdown.is_triggered() {
                    tracing::info!(signal, "already shutting down");
                } else {
                    tracing::info!(signal, "shutting down on signal");
                    node.shutdown.trigger();
                }
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}
