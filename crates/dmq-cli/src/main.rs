//! `dmq`: the command-line client of the dmq node. Push, pop, produce and consume
//! records on one node or many (used as one queue, through `dmq-client`'s blocking
//! facade), remove a channel, and read a node's channels and statistics from its
//! admin socket or its Prometheus endpoint.
//!
//! Layout: `main.rs` parses the arguments and runs the record commands;
//! `admin.rs` talks to the admin UNIX socket and the metrics endpoint;
//! `progress.rs` draws the progress line of long runs.

mod admin;
mod progress;

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use dmq_client::{blocking, ClientConfig, ClientCredentials, NodeAddr, Protocol, RetryPolicy};
use dmq_proto::legacy::{parse_array, DecodeError, MAX_ARRAY_LEN};

use crate::progress::Progress;

/// Command-line client of the dmq node: many nodes used as one queue.
#[derive(Debug, Parser)]
#[command(name = "dmq", version, about)]
struct Cli {
    #[command(flatten)]
    nodes: NodeArgs,
    #[command(subcommand)]
    command: Command,
}

/// Which nodes, over which protocol.
#[derive(Debug, Args)]
struct NodeArgs {
    /// Nodes file: one `host:port` per line (the legacy port; neo = port + 1), or
    /// `host:port:neoport`; blank lines and `#` comments are skipped.
    #[arg(long, value_name = "FILE", global = true)]
    nodes: Option<PathBuf>,
    /// A node, `host:port` or `host:port:neoport` (repeatable). Without --nodes
    /// and --node: 127.0.0.1:10000.
    #[arg(long = "node", value_name = "HOST:PORT", global = true)]
    node: Vec<String>,
    /// Use the neo protocol for push, pop and consume (needs credentials).
    #[arg(long, global = true)]
    neo: bool,
    /// Neo credentials file: a `name:hexkey` line, the node's format. Default: the
    /// environment variable DMQ_CREDENTIALS (`name:hexkey`).
    #[arg(long, value_name = "FILE", global = true)]
    credentials: Option<PathBuf>,
    /// Longest wait for a connection, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000, global = true)]
    connect_timeout_ms: u64,
    /// Longest wait for an answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000, global = true)]
    timeout_ms: u64,
    /// When a push's connection breaks after sending, push again on the next
    /// node (the record may then be stored twice). Default: report "outcome
    /// unknown" and fail.
    #[arg(long, global = true)]
    at_least_once: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Push one record: VALUE, or standard input as one record with `-` or no VALUE.
    Push {
        /// Channel name ([A-Za-z0-9_-]).
        channel: String,
        /// The record; `-` or nothing reads standard input (bytes as they are).
        value: Option<std::ffi::OsString>,
    },
    /// Pop records (one per line on standard output); nothing when empty.
    Pop {
        /// Channel name.
        channel: String,
        /// Pop up to N records (stops early when every node is empty).
        #[arg(long, value_name = "N", default_value_t = 1)]
        count: u64,
    },
    /// Produce standard input into a channel: one record per line, spread over
    /// the nodes (legacy Produce, one stream per node).
    Produce {
        /// Channel name.
        channel: String,
        /// Read records as a little-endian u64 length then the bytes (what
        /// `consume --raw` writes) instead of lines.
        #[arg(long)]
        length_prefixed: bool,
    },
    /// Consume a channel from every node: records on standard output, one per line.
    Consume {
        /// Channel name.
        channel: String,
        /// Subscriber name (neo only; default: the default subscriber).
        #[arg(long, value_name = "NAME", default_value = "")]
        subscriber: String,
        /// Stop after N records. Records the nodes had already sent beyond N are
        /// lost, as with any consumer that stops (neo: at most one batch per node;
        /// legacy: everything in flight); a warning counts those received.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Write each record as a little-endian u64 length then the bytes.
        #[arg(long)]
        raw: bool,
    },
    /// Remove a channel on every node (its consumers end).
    Remove {
        /// Channel name.
        channel: String,
    },
    /// List a node's storages: `name records_memory bytes_memory records_overflow
    /// bytes_overflow`.
    Channels {
        #[command(flatten)]
        source: admin::Source,
    },
    /// Print a node's statistics (`key: value` lines).
    Stats {
        #[command(flatten)]
        source: admin::Source,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("dmq: {line}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Channels { source } => admin::channels(&source),
        Command::Stats { source } => admin::stats(&source),
        command => {
            let client = client(&cli.nodes, &command)?;
            match command {
                Command::Push { channel, value } => push(&client, &channel, value),
                Command::Pop { channel, count } => pop(&client, &channel, count),
                Command::Produce {
                    channel,
                    length_prefixed,
                } => produce(&client, &channel, length_prefixed),
                Command::Consume {
                    channel,
                    subscriber,
                    count,
                    raw,
                } => consume(&client, &channel, &subscriber, count, raw),
                Command::Remove { channel } => Ok(client.remove_channel(&channel)?),
                Command::Channels { .. } | Command::Stats { .. } => Ok(()),
            }
        }
    }
}

/// The client the node arguments describe.
fn client(args: &NodeArgs, command: &Command) -> Result<blocking::Client> {
    let mut nodes = Vec::new();
    if let Some(path) = &args.nodes {
        nodes.extend(dmq_client::read_nodes_file(path)?);
    }
    for node in &args.node {
        nodes.push(node.parse::<NodeAddr>()?);
    }
    if nodes.is_empty() {
        nodes.push(NodeAddr::new("127.0.0.1", 10000)?);
    }
    // Produce and Remove exist only in the legacy protocol.
    let neo = args.neo && !matches!(command, Command::Produce { .. } | Command::Remove { .. });
    let credentials = if neo {
        Some(match &args.credentials {
            Some(path) => ClientCredentials::from_file(path)?,
            None => match std::env::var("DMQ_CREDENTIALS") {
                Ok(line) => ClientCredentials::parse(&line).context("DMQ_CREDENTIALS")?,
                Err(_) => bail!(
                    "--neo needs credentials: --credentials FILE or DMQ_CREDENTIALS=name:hexkey"
                ),
            },
        })
    } else {
        None
    };
    let config = ClientConfig {
        protocol: if neo { Protocol::Neo } else { Protocol::Legacy },
        credentials,
        connect_timeout: Duration::from_millis(args.connect_timeout_ms),
        request_timeout: Duration::from_millis(args.timeout_ms),
        retry: if args.at_least_once {
            RetryPolicy::AtLeastOnce
        } else {
            RetryPolicy::AtMostOnce
        },
        ..ClientConfig::default()
    };
    Ok(blocking::Client::new(nodes, config)?)
}

fn push(client: &blocking::Client, channel: &str, value: Option<std::ffi::OsString>) -> Result<()> {
    let value = match value {
        Some(value) if value != "-" => {
            use std::os::unix::ffi::OsStrExt;
            value.as_bytes().to_vec()
        }
        _ => {
            let mut value = Vec::new();
            io::stdin()
                .lock()
                .take(MAX_ARRAY_LEN as u64 + 1)
                .read_to_end(&mut value)
                .context("reading standard input")?;
            value
        }
    };
    let pushed = client.push(channel, &value)?;
    if pushed.maybe_duplicated {
        eprintln!(
            "dmq: warning: an earlier node's outcome was unknown; the record may be stored twice"
        );
    }
    Ok(())
}

fn pop(client: &blocking::Client, channel: &str, count: u64) -> Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for _ in 0..count {
        match client.pop(channel)? {
            Some(record) => {
                out.write_all(&record)?;
                out.write_all(b"\n")?;
            }
            None => break,
        }
    }
    out.flush()?;
    Ok(())
}

/// Reads the next record of standard input; `None` at its end.
fn next_input_record(input: &mut impl BufRead, length_prefixed: bool) -> Result<Option<Vec<u8>>> {
    if !length_prefixed {
        let mut line = Vec::new();
        let n = input
            .take(MAX_ARRAY_LEN as u64 + 2)
            .read_until(b'\n', &mut line)
            .context("reading standard input")?;
        if n == 0 {
            return Ok(None);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        } else if line.len() > MAX_ARRAY_LEN {
            bail!("an input line is longer than {MAX_ARRAY_LEN} bytes");
        }
        return Ok(Some(line));
    }
    let mut prefix = [0u8; 8];
    let mut got = 0;
    while got < prefix.len() {
        let n = input
            .read(&mut prefix[got..])
            .context("reading standard input")?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            bail!("standard input ends inside a length prefix");
        }
        got += n;
    }
    // The codec checks the length against the protocol's limit before we allocate.
    let len = match parse_array(&prefix) {
        Ok((bytes, _)) => bytes.len(),
        Err(DecodeError::Incomplete { needed }) => needed - prefix.len(),
        Err(e) => bail!("standard input: {e}"),
    };
    let mut record = vec![0u8; len];
    input
        .read_exact(&mut record)
        .context("standard input ends inside a record")?;
    Ok(Some(record))
}

fn produce(client: &blocking::Client, channel: &str, length_prefixed: bool) -> Result<()> {
    let mut producer = client.produce(channel)?;
    let stdin = io::stdin();
    let mut input = BufReader::with_capacity(64 * 1024, stdin.lock());
    let mut progress = Progress::new("produced");
    let mut skipped = 0u64;
    while let Some(record) = next_input_record(&mut input, length_prefixed)? {
        if record.is_empty() {
            skipped += 1;
            continue;
        }
        producer.send(&record)?;
        progress.tick();
        // Before waiting for more input, hand what we have to the nodes.
        if input.buffer().is_empty() {
            producer.flush()?;
        }
    }
    let stored = producer.finish()?;
    progress.done();
    if skipped > 0 {
        eprintln!("dmq: skipped {skipped} empty record(s): the nodes store no empty record");
    }
    if progress.enabled() {
        eprintln!("dmq: {stored} record(s) stored");
    }
    Ok(())
}

fn write_record(out: &mut impl Write, record: &[u8], raw: bool) -> io::Result<()> {
    if raw {
        out.write_all(&(record.len() as u64).to_le_bytes())?;
        out.write_all(record)
    } else {
        out.write_all(record)?;
        out.write_all(b"\n")
    }
}

fn consume(
    client: &blocking::Client,
    channel: &str,
    subscriber: &str,
    count: Option<u64>,
    raw: bool,
) -> Result<()> {
    let mut consumer = client.consume(channel, subscriber)?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut progress = Progress::new("consumed");
    let mut received = 0u64;
    let limit = count.unwrap_or(u64::MAX);
    // Records taken from the nodes that could not be written out.
    let mut unwritten = 0usize;
    while received < limit {
        // Take what is already here without waiting; flush before waiting.
        let record = match consumer.recv_timeout(Duration::ZERO)? {
            Some(record) => Some(record),
            None if consumer.is_ended() => None,
            None => {
                if let Err(e) = out.flush() {
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        break;
                    }
                    return Err(e.into());
                }
                consumer.recv()?
            }
        };
        let Some(record) = record else {
            break;
        };
        if let Err(e) = write_record(&mut out, &record, raw) {
            // The reader went away (`dmq consume ... | head`): stop quietly.
            if e.kind() == io::ErrorKind::BrokenPipe {
                unwritten += 1;
                break;
            }
            return Err(e.into());
        }
        received += 1;
        progress.tick();
    }
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    progress.done();
    let left = consumer.stop().len() + unwritten;
    if left > 0 {
        eprintln!(
            "dmq: {left} more record(s) had already been taken from the nodes and are dropped"
        );
    }
    Ok(())
}
