//! `dmq-bench`: see `lib.rs` for the layout and docs/benchmarks.md for usage.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use dmq_bench::cli::{Cli, Command, Target, DEFAULT_DMQ_ADDR, DEFAULT_REDIS_ADDR};
use dmq_bench::report::{field, median, Report};
use dmq_bench::{echo, plot, run, stream, Error};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dmq-bench: {e:#}");
            match e.downcast_ref::<Error>() {
                Some(Error::Usage(_)) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some((workload, args)) = cli.command.workload() {
        let env_credentials = std::env::var("DMQ_CREDENTIALS").ok();
        let plan = args.plan(workload, env_credentials.as_deref())?;
        let report = run::run(&plan)?;
        print!("{}", report.summary());
        if let Some(path) = &plan.json {
            report.write_json(path)?;
        }
        if let Some(dir) = &plan.plot_dir {
            for path in plot::write_plots(&report, dir, "")? {
                println!("  plot         {}", path.display());
            }
        }
        // A run in which some connections failed still reports, but says so.
        return Ok(if report.failures.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    match cli.command {
        Command::EchoServer(args) => {
            let (listener, addr) = echo::bind(&args.listen)?;
            // Scripts read the port from this line.
            println!("dmq-bench echo-server: listening on {addr}");
            std::io::stdout().flush().context("flush stdout")?;
            echo::serve(listener);
            Ok(ExitCode::SUCCESS)
        }
        Command::Clear(args) => {
            let channels = dmq_bench::codec::channel_names(&args.channel_prefix, args.channels);
            let timeout = std::time::Duration::from_secs(10);
            let addrs = if args.addrs.is_empty() {
                vec![match args.target {
                    Target::Redis => DEFAULT_REDIS_ADDR,
                    _ => DEFAULT_DMQ_ADDR,
                }
                .to_owned()]
            } else {
                args.addrs
            };
            for addr in &addrs {
                match args.target {
                    Target::Redis => stream::remove_redis(addr, &channels, timeout)?,
                    Target::Dmq => stream::remove_legacy(addr, &channels, timeout)?,
                    Target::Echo => {}
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Median(args) => {
            let mut values = Vec::new();
            for path in &args.files {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("read {}", path.display()))?;
                let json: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("parse {}", path.display()))?;
                if let Some(v) = field(&json, &args.field) {
                    values.push(v);
                }
            }
            match median(&values) {
                Some(m) => println!("{m}"),
                None => println!("-"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plot(args) => {
            let report = Report::read_json(&args.json)?;
            for path in plot::write_plots(&report, &args.plot_dir, &args.prefix)? {
                println!("{}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
