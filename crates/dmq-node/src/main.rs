//! `dmqnode`: the node binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use dmq_node::config::Config;
use dmq_node::{logging, server};

/// The dmq node: an in-memory message queue server (DMQ legacy protocol).
#[derive(Debug, Parser)]
#[command(name = "dmqnode", version, about)]
struct Args {
    /// YAML config file; without it the embedded defaults are used.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override one config key, e.g. -O server.port=11000 (repeatable).
    #[arg(short = 'O', long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Validate the config, print the effective config as YAML, and exit.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Tool>,
}

#[derive(Debug, clap::Subcommand)]
enum Tool {
    /// Translate the original node's config.ini into this node's YAML (on
    /// stdout); keys without effect here are listed on stderr.
    MigrateConfig {
        /// The original's config.ini.
        file: PathBuf,
    },
    /// Print a new neo credentials line `NAME:<256 hex digits>` (a random
    /// 128-byte key) to append to the credentials file.
    GenKey {
        /// Client name: 1 to 100 printable ASCII characters, no spaces.
        name: String,
    },
}

/// `dmqnode migrate-config FILE`.
fn migrate_config(file: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("dmqnode: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    match dmq_node::migrate::migrate(&text) {
        Ok(migrated) => {
            for warning in &migrated.warnings {
                eprintln!("dmqnode migrate-config: warning: {warning}");
            }
            print!("{}", migrated.yaml);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dmqnode migrate-config: {}: {e}", file.display());
            ExitCode::from(2)
        }
    }
}

/// `dmqnode gen-key NAME`.
fn gen_key(name: &str) -> ExitCode {
    let mut key = [0u8; dmq_proto::neo::KEY_LEN];
    if let Err(e) = getrandom::getrandom(&mut key) {
        eprintln!("dmqnode: no random source: {e}");
        return ExitCode::from(1);
    }
    match dmq_proto::neo::format_credentials_line(name, &key) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dmqnode: invalid client name '{name}': {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match &args.command {
        Some(Tool::GenKey { name }) => return gen_key(name),
        Some(Tool::MigrateConfig { file }) => return migrate_config(file),
        None => {}
    }
    let config = match Config::load(args.config.as_deref(), &args.overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("dmqnode: config error: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        print!("{}", config.to_yaml());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = logging::init(&config.log) {
        eprintln!(
            "dmqnode: cannot open log file {}: {e}",
            config.log.file.display()
        );
        return ExitCode::from(1);
    }
    let result = server::run(config, |bound| {
        if let Some(addr) = bound.legacy {
            println!("dmqnode: legacy protocol on {addr}");
        }
        if let Some(addr) = bound.neo {
            println!("dmqnode: neo protocol on {addr}");
        }
        if let Some(addr) = bound.metrics {
            println!("dmqnode: metrics on http://{addr}/metrics");
        }
        println!("dmqnode: serving with {} shard(s)", bound.shards);
        tracing::info!(shards = bound.shards, legacy = ?bound.legacy, neo = ?bound.neo, "dmqnode started");
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("dmqnode: {e:#}");
            ExitCode::from(1)
        }
    }
}
