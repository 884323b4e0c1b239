//! The admin UNIX socket (`server.unix_socket_path`): newline-terminated text
//! commands, one reply each; multi-line replies end with an empty line.
//!
//! | command | reply |
//! |---|---|
//! | `update-credentials` | `Credentials updated.` or `Error: ...` |
//! | `list-credentials` | `Registered credentials:`, one name per line, empty line |
//! | `channels` | one line per storage: `name records_memory bytes_memory records_overflow bytes_overflow`, empty line |
//! | `remove-channel NAME` | `Channel NAME removed.` or `Error: ...` |
//! | `stats` | `key: value` lines, empty line |
//! | anything else | `Command not found` |
//!
//! Served by shard 0; it asks every shard for its figures over the mesh.

use std::path::Path;
use std::rc::Rc;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{UnixListener, UnixStream};

use crate::context::ShardContext;
use crate::request::channel_name;

use crate::shard::{OpBatch, ShardSnapshot};

/// Longest command line accepted.
const MAX_LINE_BYTES: usize = 4096;

/// Binds the socket (mode 0660), replacing a stale socket file left by a crash
/// (but never a file that is not a socket).
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let listener = UnixListener::bind(path).map_err(std::io::Error::from)?;
    // The admin commands can remove channels: only the node's user and group
    // may connect, whatever the umask.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Accepts admin connections until shutdown; removes the socket file at the end.
pub async fn serve(listener: UnixListener, path: std::path::PathBuf, ctx: Rc<ShardContext>) {
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            ctx.shutdown().wait().await;
            None
        })
        .await;
        match accepted {
            None => break,
            Some(Ok(stream)) => {
                glommio::spawn_local(connection(stream, ctx.clone())).detach();
            }
            Some(Err(e)) => {
                tracing::warn!("admin socket: accept failed: {e}");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

async fn connection(mut stream: UnixStream, ctx: Rc<ShardContext>) {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        // Answer every complete line already buffered.
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            let reply = execute(line.trim(), &ctx).await;
            if stream.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
        if buf.len() > MAX_LINE_BYTES {
            let _ = stream.write_all(b"Error: command line too long\n").await;
            return;
        }
        let read = futures_lite::future::or(async { Some(stream.read(&mut chunk).await) }, async {
            ctx.shutdown().wait().await;
            None
        })
        .await;
        match read {
            Some(Ok(0)) | None => return,
            Some(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Some(Err(e)) => {
                tracing::debug!("admin connection: {e}");
                return;
            }
        }
    }
}

/// Runs one command and returns its whole reply.
pub async fn execute(line: &str, ctx: &ShardContext) -> String {
    let mut words = line.split_whitespace();
    let command = words.next().unwrap_or_default();
    let args: Vec<&str> = words.collect();
    match (command, args.as_slice()) {
        ("update-credentials", []) => match ctx.node.credentials.reload() {
            Ok(_) => "Credentials updated.\n".to_owned(),
            Err(e) => {
                tracing::warn!("update-credentials: {e}");
                format!("Error: {e}\n")
            }
        },
        ("list-credentials", []) => {
            let mut reply = String::from("Registered credentials:\n");
            for name in ctx.node.credentials.get().names() {
                reply.push_str(name);
                reply.push('\n');
            }
            reply.push('\n');
            reply
        }
        ("channels", []) => match crate::metrics::gather(ctx, false).await {
            Ok(shards) => {
                let mut reply = String::new();
                let mut storages: Vec<_> = shards.iter().flat_map(|s| s.storages.iter()).collect();
                storages.sort_by(|a, b| a.name.cmp(&b.name));
                for s in storages {
                    reply.push_str(&format!(
                        "{} {} {} {} {}\n",
                        s.name,
                        s.records_memory,
                        s.bytes_memory,
                        s.records_overflow,
                        s.bytes_overflow
                    ));
                }
                reply.push('\n');
                reply
            }
            Err(e) => format!("Error: {e}\n"),
        },
        ("remove-channel", [name]) => {
            let Some(channel) = channel_name(name.as_bytes()) else {
                return format!("Error: invalid channel name '{name}'\n");
            };
            let owner = ctx.router.owner(channel.as_bytes());
            let mut remove = OpBatch::default();
            remove.remove(channel.to_owned());
            match ctx.router.run(owner, remove).await {
                Ok(_) => {
                    tracing::info!(channel, "channel removed by admin command");
                    format!("Channel {channel} removed.\n")
                }
                Err(e) => format!("Error: {e}\n"),
            }
        }
        ("stats", []) => match crate::metrics::gather(ctx, false).await {
            Ok(shards) => stats_reply(ctx, &shards),
            Err(e) => format!("Error: {e}\n"),
        },
        ("update-credentials" | "list-credentials" | "channels" | "stats", _) => {
            format!("Error: {command} takes no arguments\n")
        }
        ("remove-channel", _) => "Error: usage: remove-channel NAME\n".to_owned(),
        _ => "Command not found\n".to_owned(),
    }
}

fn stats_reply(ctx: &ShardContext, shards: &[ShardSnapshot]) -> String {
    let sum = |f: &dyn Fn(&ShardSnapshot) -> u64| shards.iter().map(f).sum::<u64>();
    let lines = [
        ("shards", shards.len() as u64),
        ("channels", sum(&|s| s.channels as u64)),
        ("storages", sum(&|s| s.storages.len() as u64)),
        ("consumers", sum(&|s| s.consumers as u64)),
        (
            "records_memory",
            sum(&|s| s.storages.iter().map(|i| i.records_memory as u64).sum()),
        ),
        (
            "bytes_memory",
            sum(&|s| s.storages.iter().map(|i| i.bytes_memory as u64).sum()),
        ),
        (
            "capacity_bytes",
            sum(&|s| s.storages.iter().map(|i| i.capacity_bytes as u64).sum()),
        ),
        (
            "legacy_connections",
            ctx.node.legacy_connections.get() as u64,
        ),
        ("neo_connections", ctx.node.neo_connections.get() as u64),
        ("pushed_records", sum(&|s| s.counters.pushed_records)),
        ("pushed_bytes", sum(&|s| s.counters.pushed_bytes)),
        ("popped_records", sum(&|s| s.counters.popped_records)),
        ("popped_bytes", sum(&|s| s.counters.popped_bytes)),
        ("overflow_refused", sum(&|s| s.counters.refused_disk)),
        (
            "overflow_written_records",
            sum(&|s| s.overflow.written_records),
        ),
        (
            "overflow_read_records",
            sum(&|s| s.counters.refilled_records),
        ),
        ("overflow_errors", sum(&|s| s.counters.disk_errors)),
        (
            "overflow_lost_records",
            sum(&|s| s.counters.disk_lost_records),
        ),
        ("overflow_segments", sum(&|s| s.overflow.segments as u64)),
        ("overflow_file_bytes", sum(&|s| s.overflow.file_bytes)),
    ];
    let mut reply = String::new();
    for (key, value) in lines {
        reply.push_str(&format!("{key}: {value}\n"));
    }
    reply.push('\n');
    reply
}
