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
}

fn main() -> ExitCode {
    let args = Args::parse();
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
