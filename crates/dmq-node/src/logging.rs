//! root.log through `tracing`: a file that SIGHUP reopens (for logrotate), and
//! stderr when `log.console` is on. Logging happens off the hot path (warnings,
//! errors, lifecycle), so one mutex around the file is fine.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

struct LogFile {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

static LOG_FILE: OnceLock<LogFile> = OnceLock::new();

fn open(path: &PathBuf) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// Reopens the log file at its path (after logrotate moved it away).
pub fn reopen() {
    if let Some(log) = LOG_FILE.get() {
        match open(&log.path) {
            Ok(file) => {
                if let Ok(mut slot) = log.file.lock() {
                    *slot = Some(file);
                }
                tracing::info!(path = %log.path.display(), "log file reopened");
            }
            Err(e) => eprintln!("dmqnode: cannot reopen {}: {e}", log.path.display()),
        }
    }
}

#[derive(Clone, Copy)]
struct FileWriter;

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(log) = LOG_FILE.get() {
            if let Ok(mut slot) = log.file.lock() {
                if let Some(file) = slot.as_mut() {
                    return file.write(buf);
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for FileWriter {
    type Writer = FileWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Counts log events by level for stats.log (`logged_*`).
struct CountEvents;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let index = crate::stats::level_index(event.metadata().level());
        crate::stats::LOGGED[index].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Sets up logging per the config. The level can be refined with `RUST_LOG`.
pub fn init(config: &LogConfig) -> io::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},glommio=warn", config.level)));
    let file_layer = if config.file.as_os_str().is_empty() {
        None
    } else {
        let file = open(&config.file)?;
        let _ = LOG_FILE.set(LogFile {
            path: config.file.clone(),
            file: Mutex::new(Some(file)),
        });
        Some(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(FileWriter),
        )
    };
    let console_layer = config.console.then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
            .with_writer(io::stderr)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(CountEvents)
        .with(file_layer)
        .with(console_layer)
        .try_init()
        .map_err(|e| io::Error::other(e.to_string()))
}
