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
use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::{LocalExecutorBuilder, Placement};

use crate::admin;
use crate::config::Config;
use crate::context::{NodeShared, ShardContext};
use crate::credentials::CredentialStore;
use crate::listener;
use crate::persist::{Layout, ShardLoad};
use crate::route::{self, Router, ShardId, ShardMsg};
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

/// What a start decided before any shard runs: the shard count, the CPUs
/// and the data directory's layout.
struct Plan {
    shards: usize,
    cpus: Vec<usize>,
    layout: Layout,
}

/// Works out the shard count and the layout, and checks the machine and the
/// config before anything is bound or loaded.
fn plan(config: &Config) -> anyhow::Result<Plan> {
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
    let layout = Layout {
        data_dir: config.server.data_dir.clone(),
        sizes,
        shards,
        disk: dmq_storage::disk::DiskConfig {
            segment_size: config.overflow.segment_size,
            limit: config.overflow.disk_limit / shards as u64,
        },
        budget: (config.server.memory_limit > 0).then(|| {
            usize::try_from(config.server.memory_limit / shards as u64).unwrap_or(usize::MAX)
        }),
    };
    Ok(Plan {
        shards,
        cpus,
        layout,
    })
}

/// The listening sockets, bound on the main thread: one per shard for each
/// protocol, one for the metrics endpoint (served by shard 0).
struct Listeners {
    bound: Bound,
    legacy: Vec<Option<OwnedFd>>,
    neo: Vec<Option<OwnedFd>>,
    metrics: Option<OwnedFd>,
}

fn bind_listeners(config: &Config, shards: usize) -> anyhow::Result<Listeners> {
    let backlog = config.server.backlog;
    let bind = |addr: std::net::SocketAddr, count: usize, key: &str| {
        listener::bind(addr, count, backlog).map_err(|e| listen_error(e, addr, key))
    };
    let legacy = config
        .legacy_addr()
        .map(|addr| bind(addr, shards, "server.port"))
        .transpose()?;
    let neo = config
        .neo_addr()
        .map(|addr| bind(addr, shards, "server.neoport"))
        .transpose()?;
    let metrics = match config.metrics.address.as_str() {
        "" => None,
        text => {
            let addr: std::net::SocketAddr = text
                .parse()
                .with_context(|| format!("metrics.address '{text}'"))?;
            Some(bind(addr, 1, "metrics.address")?)
        }
    };
    let bound = Bound {
        shards,
        legacy: legacy.as_ref().map(|l| l.addr),
        neo: neo.as_ref().map(|l| l.addr),
        metrics: metrics.as_ref().map(|l| l.addr),
    };
    let per_shard = |bound: Option<listener::BoundListener>| -> Vec<Option<OwnedFd>> {
        match bound {
            Some(l) => l.sockets.into_iter().map(Some).collect(),
            None => (0..shards).map(|_| None).collect(),
        }
    };
    Ok(Listeners {
        bound,
        legacy: per_shard(legacy),
        neo: per_shard(neo),
        metrics: metrics.and_then(|l| l.sockets.into_iter().next()),
    })
}

/// Everything one shard's executor starts with.
struct ShardStart {
    id: ShardId,
    shards: usize,
    config: Arc<Config>,
    node: Arc<NodeShared>,
    layout: Layout,
    restore: ShardLoad,
    legacy_fd: Option<OwnedFd>,
    neo_fd: Option<OwnedFd>,
    metrics_fd: Option<OwnedFd>,
    mesh: MeshBuilder<ShardMsg, Full>,
    /// Tells the main thread that the shard holds its channels (and, on
    /// shard 0, whether the admin socket is bound).
    ready: std::sync::mpsc::Sender<Result<(), String>>,
}

/// Runs the node until SIGINT, SIGTERM or SIGQUIT. `on_bound` is called once the
/// listeners are bound (the binary prints the addresses).
pub fn run(config: Config, on_bound: impl FnOnce(&Bound)) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let Plan {
        shards,
        cpus,
        layout,
    } = plan(&config)?;
    let loaded = crate::persist::load(&layout)?;
    anyhow::ensure!(
        loaded.per_shard.len() == shards,
        "the data directory was loaded for {} shards, not {shards}",
        loaded.per_shard.len()
    );
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
    let mut listeners = bind_listeners(&config, shards)?;
    // Every shard reports once it holds its loaded channels; shard 0 also binds
    // the admin socket (glommio's UNIX listener must be made on its executor).
    // The node announces itself, and deletes the loaded files, only then.
    let (ready, all_ready) = std::sync::mpsc::channel::<Result<(), String>>();
    let mesh = MeshBuilder::<ShardMsg, _>::full(shards, MESH_DEPTH);
    let pin = shards <= cpus.len();
    let spin = Duration::from_micros(config.performance.spin_before_park_us);
    let mut handles = Vec::with_capacity(shards);
    for (id, restore) in loaded.per_shard.into_iter().enumerate() {
        let placement = if pin {
            Placement::Fixed(cpus[id])
        } else {
            Placement::Unbound
        };
        let start = ShardStart {
            id,
            shards,
            config: config.clone(),
            node: node.clone(),
            layout: layout.clone(),
            restore,
            legacy_fd: listeners.legacy[id].take(),
            neo_fd: listeners.neo[id].take(),
            metrics_fd: if id == 0 {
                listeners.metrics.take()
            } else {
                None
            },
            mesh: mesh.clone(),
            ready: ready.clone(),
        };
        let mut builder = LocalExecutorBuilder::new(placement)
            .name(&format!("dmq-shard-{id}"))
            .spin_before_park(spin);
        if let Some(bytes) = crate::preflight::io_memory_per_shard(shards) {
            builder = builder.io_memory(bytes);
        }
        let handle = builder
            .spawn(move || run_shard(start))
            .map_err(|e| anyhow::anyhow!("cannot start the executor of shard {id}: {e}"))?;
        handles.push(handle);
    }
    drop(ready);
    let result = wait_ready(&all_ready, shards);
    if result.is_ok() {
        if loaded.storages > 0 {
            tracing::info!(
                storages = loaded.storages,
                records = loaded.records,
                "loaded the data directory"
            );
        }
        crate::persist::remove_loaded(&loaded.files);
        on_bound(&listeners.bound);
    } else {
        node.shutdown.trigger();
    }
    let result = join_shards(handles, result);
    tracing::info!("shut down");
    result
}

/// Waits until every shard reported ready; the first error otherwise.
fn wait_ready(
    ready: &std::sync::mpsc::Receiver<Result<(), String>>,
    shards: usize,
) -> anyhow::Result<()> {
    for _ in 0..shards {
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(anyhow::anyhow!(e)),
            // A shard ended before it was ready: its own error, read at
            // join, says why.
            Err(_) => return Err(anyhow::anyhow!("a shard stopped before it was ready")),
        }
    }
    Ok(())
}

/// Joins every shard's executor. A shard's own error wins over a start
/// that failed only because a shard stopped early; otherwise the start's.
fn join_shards(
    handles: Vec<glommio::ExecutorJoinHandle<anyhow::Result<()>>>,
    started: anyhow::Result<()>,
) -> anyhow::Result<()> {
    let early_stop = started.is_err();
    let mut shard_error = None;
    for (id, handle) in handles.into_iter().enumerate() {
        let error = match handle.join() {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(e) => anyhow::anyhow!("shard {id} failed: {e}"),
        };
        shard_error.get_or_insert(error);
    }
    match (started, shard_error) {
        (Ok(()), None) => Ok(()),
        (Ok(()), Some(e)) => Err(e),
        (Err(_), Some(e)) if early_stop => Err(e),
        (Err(first), _) => Err(first),
    }
}

/// One shard's life on its executor: restore its channels, start its
/// overflow tasks, join the mesh, serve until shutdown, drain, then write
/// its overflow and dump its memory.
async fn run_shard(start: ShardStart) -> anyhow::Result<()> {
    let ShardStart {
        id,
        shards,
        config,
        node,
        layout,
        restore,
        legacy_fd,
        neo_fd,
        metrics_fd,
        mesh,
        ready,
    } = start;
    let shard = restore_shard(&layout, restore);
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
    let reader = glommio::spawn_local(crate::overflow_io::read_loop(
        shard.clone(),
        segments.clone(),
    ));
    let senders = join_mesh(id, shards, mesh, &shard).await?;
    let router = Router::new(id, shards, shard.clone(), senders);
    let ctx = ShardContext::new(config.clone(), router, node.clone());
    let mut serving = serve_listeners(&ctx, legacy_fd, neo_fd, metrics_fd);
    if id == 0 {
        serving.extend(start_shard0_tasks(&ctx, &ready));
    } else {
        let _ = ready.send(Ok(()));
    }
    drop(ready);
    tracing::debug!(shard = id, "shard started");
    node.shutdown.wait().await;
    for task in serving {
        task.await;
    }
    drain(&node.shutdown, id).await;
    // The overflow: reads stop, everything pending is written and synced.
    let io = shard.borrow().overflow.io.clone();
    io.stop_reader();
    reader.await;
    io.stop_writer();
    writer.await;
    persist_shard(id, &shard.borrow(), &segments, &config)?;
    tracing::debug!(shard = id, "shard stopped");
    Ok(())
}

/// The shard's state with the channels loaded for it at start.
fn restore_shard(layout: &Layout, restore: ShardLoad) -> Rc<RefCell<Shard>> {
    let ShardLoad {
        channels: restore,
        disk,
        mut disk_parts,
    } = restore;
    let channels = dmq_storage::Channels::with_budget(layout.sizes.clone(), layout.budget);
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
    shard
}

/// Joins the mesh and starts a pump per peer; `None` with one shard.
async fn join_mesh(
    id: ShardId,
    shards: usize,
    mesh: MeshBuilder<ShardMsg, Full>,
    shard: &Rc<RefCell<Shard>>,
) -> anyhow::Result<Option<Senders<ShardMsg>>> {
    if shards <= 1 {
        return Ok(None);
    }
    let (senders, mut receivers) = mesh
        .join()
        .await
        .map_err(|e| anyhow::anyhow!("shard {id}: cannot join the mesh: {e}"))?;
    for (_, from) in receivers.streams() {
        glommio::spawn_local(route::pump(shard.clone(), from)).detach();
    }
    Ok(Some(senders))
}

/// Starts the accept loops of this shard's listeners (and the metrics
/// endpoint on shard 0); each ends at shutdown.
fn serve_listeners(
    ctx: &Rc<ShardContext>,
    legacy_fd: Option<OwnedFd>,
    neo_fd: Option<OwnedFd>,
    metrics_fd: Option<OwnedFd>,
) -> Vec<glommio::Task<()>> {
    let config = &ctx.config;
    let node = &ctx.node;
    let limit = config.server.connection_limit as usize;
    let mut tasks = Vec::new();
    if let Some(fd) = legacy_fd {
        tasks.push(glommio::spawn_local(listener::accept_loop(
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
        tasks.push(glommio::spawn_local(listener::accept_loop(
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
        tasks.push(glommio::spawn_local(crate::metrics::http::serve(
            fd,
            ctx.clone(),
        )));
    }
    tasks
}

/// Shard 0's own tasks: stats.log, the console view and the admin socket.
/// Reports ready once the admin socket is bound (or failed to bind).
fn start_shard0_tasks(
    ctx: &Rc<ShardContext>,
    ready: &std::sync::mpsc::Sender<Result<(), String>>,
) -> Vec<glommio::Task<()>> {
    let config = &ctx.config;
    let mut tasks = Vec::new();
    if !config.stats.file_name.as_os_str().is_empty() {
        tasks.push(glommio::spawn_local(crate::stats::run(ctx.clone())));
    }
    if crate::stats::console::enabled(config.stats.console) {
        tasks.push(glommio::spawn_local(crate::stats::console::run(
            ctx.clone(),
        )));
    }
    let path = config.server.unix_socket_path.clone();
    if path.as_os_str().is_empty() {
        let _ = ready.send(Ok(()));
        return tasks;
    }
    match admin::bind(&path) {
        Ok(socket) => {
            let _ = ready.send(Ok(()));
            tasks.push(glommio::spawn_local(admin::serve(
                socket,
                path,
                ctx.clone(),
            )));
        }
        Err(e) => {
            let _ = ready.send(Err(format!(
                "cannot listen on {} (server.unix_socket_path): {e}",
                path.display()
            )));
        }
    }
    tasks
}

/// At a clean stop, after the overflow is written: its index beside the
/// segments, and the memory rings dumped.
fn persist_shard(
    id: ShardId,
    shard: &Shard,
    segments: &crate::overflow_io::SegmentDir,
    config: &Config,
) -> anyhow::Result<()> {
    match crate::persist::write_overflow_index(shard, segments) {
        Ok(0) => {}
        Ok(files) => tracing::info!(shard = id, files, "overflow index written"),
        Err(e) => tracing::warn!(shard = id, "overflow index not written: {e}"),
    }
    let dumped = crate::persist::dump_shard(shard, &config.server.data_dir).map_err(|e| {
        anyhow::anyhow!("shard {id}: dump failed, records of this shard may be lost: {e}")
    })?;
    if dumped > 0 {
        tracing::info!(shard = id, storages = dumped, "memory dumped");
    }
    Ok(())
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
