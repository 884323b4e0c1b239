//! The command line: one subcommand per workload (all sharing [`RunArgs`]), the
//! echo server, and the helpers `benches/compare` uses (`clear`, `median`,
//! `plot`). [`RunArgs::plan`] checks the arguments against each other and the
//! target and resolves every default into a [`Plan`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::codec::neo::NeoCredentials;
use crate::size::SizeDist;
use crate::Error;

/// Default legacy address of the node.
pub const DEFAULT_DMQ_ADDR: &str = "127.0.0.1:10000";
/// Default Redis address.
pub const DEFAULT_REDIS_ADDR: &str = "127.0.0.1:6379";
/// Default address of `dmq-bench echo-server`.
pub const DEFAULT_ECHO_ADDR: &str = "127.0.0.1:10600";

#[derive(Debug, Parser)]
#[command(
    name = "dmq-bench",
    version,
    about = "Load-testing harness of the dmq node, with Redis and a raw loopback target side by side",
    after_help = "Run `dmq-bench <WORKLOAD> --help` for the options of a workload. \
                  docs/benchmarks.md has examples."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Push records: legacy Push, Redis LPUSH, or the echo target.
    Push(RunArgs),
    /// Pop records: legacy Pop, Redis RPOP.
    Pop(RunArgs),
    /// Push and pop alternately on the same channels.
    PushPop(RunArgs),
    /// Stream records with legacy Produce (Redis: pipelined LPUSH).
    Produce(RunArgs),
    /// Prefill --count records, then take them with legacy Consume (Redis: RPOP).
    Consume(RunArgs),
    /// --subscribers neo consumers per channel, each with its own subscriber name,
    /// while legacy Push connections feed the channels; end-to-end latency.
    Fanout(RunArgs),
    /// Push records with neo Push v3.
    NeoPush(RunArgs),
    /// Pop records with neo Pop v1.
    NeoPop(RunArgs),
    /// Prefill --count records, then take them with neo Consume v4.
    NeoConsume(RunArgs),
    /// Round trips that do no queue work: legacy GetNumConnections, Redis PING.
    Ping(RunArgs),
    /// Serve the raw loopback target: answers legacy requests with the node's
    /// reply bytes and stores nothing.
    EchoServer(EchoArgs),
    /// Remove channels (legacy RemoveChannel; Redis DEL).
    Clear(ClearArgs),
    /// Print the median of a numeric field over JSON reports ("-" if none has it).
    Median(MedianArgs),
    /// Write the SVG plots of a JSON report.
    Plot(PlotArgs),
}

/// What runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Push,
    Pop,
    PushPop,
    Produce,
    Consume,
    Fanout,
    NeoPush,
    NeoPop,
    NeoConsume,
    Ping,
}

impl Workload {
    /// The subcommand's name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Push => "push",
            Workload::Pop => "pop",
            Workload::PushPop => "push-pop",
            Workload::Produce => "produce",
            Workload::Consume => "consume",
            Workload::Fanout => "fanout",
            Workload::NeoPush => "neo-push",
            Workload::NeoPop => "neo-pop",
            Workload::NeoConsume => "neo-consume",
            Workload::Ping => "ping",
        }
    }

    /// Whether the workload talks neo (and so needs credentials).
    pub fn uses_neo(self) -> bool {
        matches!(
            self,
            Workload::NeoPush | Workload::NeoPop | Workload::NeoConsume | Workload::Fanout
        )
    }

    /// Whether it prefills `--count` records and takes them.
    pub fn prefills(self) -> bool {
        matches!(self, Workload::Consume | Workload::NeoConsume)
    }

    /// Whether it subscribes to its channels (which then refuse Pop until
    /// removed): such workloads remove their channels before and after.
    pub fn subscribes(self) -> bool {
        matches!(
            self,
            Workload::Consume | Workload::NeoConsume | Workload::Fanout
        )
    }
}

/// Where the load goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// A dmq node (legacy at --addr, neo at --neo-addr).
    Dmq,
    /// A Redis server.
    Redis,
    /// `dmq-bench echo-server`.
    Echo,
}

impl Target {
    /// The `--target` value.
    pub fn name(self) -> &'static str {
        match self {
            Target::Dmq => "dmq",
            Target::Redis => "redis",
            Target::Echo => "echo",
        }
    }
}

/// Parses seconds: `3`, `2.5`, `3s` or `500ms`.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds (e.g. 3, 2.5s, 500ms)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("'{text}': seconds must be 0 or more"));
    }
    Ok(value * scale)
}

/// The options every workload shares.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// What to load.
    #[arg(long, value_enum, default_value_t = Target::Dmq)]
    pub target: Target,
    /// Legacy (or Redis, or echo) address; repeat for several nodes, which
    /// connections use round-robin. Default: 127.0.0.1:10000 (dmq), :6379
    /// (redis), :10600 (echo).
    #[arg(long = "addr", value_name = "HOST:PORT")]
    pub addrs: Vec<String>,
    /// Neo address, one per --addr; default: each --addr's port + 1.
    #[arg(long = "neo-addr", value_name = "HOST:PORT")]
    pub neo_addrs: Vec<String>,
    /// Neo credentials: a file with a `name:hexkey` line (the node's credentials
    /// format). Default: the environment variable DMQ_CREDENTIALS (`name:hexkey`).
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Connections (one thread each; two in open loop).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Requests outstanding per connection: written in one burst in closed loop,
    /// the cap in open loop.
    #[arg(long, default_value_t = 1)]
    pub in_flight: usize,
    /// Record size in bytes [default: 100].
    #[arg(long, value_name = "BYTES", conflicts_with = "size_dist")]
    pub size: Option<usize>,
    /// Record size distribution: N, fixed:N or uniform:MIN:MAX (bytes).
    #[arg(long, value_name = "DIST")]
    pub size_dist: Option<SizeDist>,
    /// Channels (Redis keys), named PREFIX0..PREFIX{N-1}. Default: one per
    /// connection (fanout: 1).
    #[arg(long)]
    pub channels: Option<usize>,
    /// Channel name prefix. Default: `bench` (push, pop, push-pop, produce, ping,
    /// neo-push, neo-pop), `bench_consume`, `bench_neo_consume`, `bench_fanout`.
    #[arg(long, value_name = "PREFIX")]
    pub channel_prefix: Option<String>,
    /// Length of the measurement window, after the warm-up [default: 5].
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS", conflicts_with = "count")]
    pub duration: Option<f64>,
    /// Run until this many records are done instead (no warm-up); consume and
    /// neo-consume prefill this many.
    #[arg(long)]
    pub count: Option<u64>,
    /// Warm-up before the measurement window (not counted).
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS", default_value = "1")]
    pub warmup: f64,
    /// Open loop: requests per second in total, spread over the connections;
    /// latency is measured from each request's intended send time.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Fanout: subscribers per channel.
    #[arg(long, default_value_t = 4)]
    pub subscribers: usize,
    /// Produce with more channels than connections: records per stream before a
    /// connection moves on to its next channel.
    #[arg(long, default_value_t = 1000)]
    pub produce_run: usize,
    /// Server process to measure (CPU time per record, memory); repeatable.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,
    /// Extra connections opened before the run and left idle until its end.
    #[arg(long, default_value_t = 0)]
    pub idle_connections: usize,
    /// Redis pops with BRPOP (blocking, 1 s timeout) instead of RPOP.
    #[arg(long)]
    pub redis_blocking_pop: bool,
    /// Write the report as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write throughput.svg and latency.svg into this directory.
    #[arg(long, value_name = "DIR")]
    pub plot_dir: Option<PathBuf>,
    /// No progress line on stderr (it is drawn only on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    /// A label stored in the report (e.g. the round of a comparison).
    #[arg(long)]
    pub label: Option<String>,
    /// Connect timeout.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub connect_timeout_ms: u64,
    /// A connection waiting this long for a reply is given up.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub reply_timeout_ms: u64,
}

#[derive(Debug, Clone, Args)]
pub struct EchoArgs {
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = DEFAULT_ECHO_ADDR)]
    pub listen: String,
}

#[derive(Debug, Clone, Args)]
pub struct ClearArgs {
    #[arg(long, value_enum, default_value_t = Target::Dmq)]
    pub target: Target,
    /// Legacy or Redis address; repeatable.
    #[arg(long = "addr", value_name = "HOST:PORT")]
    pub addrs: Vec<String>,
    /// Channels PREFIX0..PREFIX{N-1}.
    #[arg(long)]
    pub channels: usize,
    #[arg(long, default_value = "bench")]
    pub channel_prefix: String,
}

#[derive(Debug, Clone, Args)]
pub struct MedianArgs {
    /// Dotted path of a number in the report: records_per_s, latency.p99_us,
    /// server.cpu_us_per_record, ...
    pub field: String,
    /// Report files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// The JSON report.
    pub json: PathBuf,
    /// Directory for the SVG files.
    #[arg(long, value_name = "DIR")]
    pub plot_dir: PathBuf,
    /// File name prefix (e.g. `push-`).
    #[arg(long, default_value = "")]
    pub prefix: String,
}

/// How the run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StopRule {
    /// A window of `duration_s` after `warmup_s`.
    Duration { warmup_s: f64, duration_s: f64 },
    /// When this many records are done.
    Count(u64),
}

impl StopRule {
    /// The record count of a counted run.
    pub fn count(&self) -> Option<u64> {
        match *self {
            StopRule::Count(n) => Some(n),
            StopRule::Duration { .. } => None,
        }
    }
}

/// A run with every default resolved and every combination checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub workload: Workload,
    pub target: Target,
    pub addrs: Vec<String>,
    pub neo_addrs: Vec<String>,
    pub credentials: Option<NeoCredentials>,
    pub connections: usize,
    pub in_flight: usize,
    pub size: SizeDist,
    pub channels: usize,
    pub channel_prefix: String,
    pub subscribers: usize,
    pub stop: StopRule,
    pub rate: Option<f64>,
    pub produce_run: usize,
    pub server_pids: Vec<u32>,
    pub idle_connections: usize,
    pub redis_blocking_pop: bool,
    pub json: Option<PathBuf>,
    pub plot_dir: Option<PathBuf>,
    pub progress: bool,
    pub label: Option<String>,
    pub connect_timeout: Duration,
    pub reply_timeout: Duration,
}

fn usage(text: impl Into<String>) -> Error {
    Error::Usage(text.into())
}

/// `HOST:PORT` with the port plus one.
fn port_plus_one(addr: &str) -> Result<String, Error> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| usage(format!("--addr {addr}: expected HOST:PORT")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| usage(format!("--addr {addr}: bad port")))?;
    let neo = port
        .checked_add(1)
        .ok_or_else(|| usage(format!("--addr {addr}: no port after {port}")))?;
    Ok(format!("{host}:{neo}"))
}

/// Whether a channel name (or prefix) is `[A-Za-z0-9_-]+`, as the node requires.
pub fn valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl RunArgs {
    /// Checks the arguments and resolves the defaults for `workload`.
    /// `env_credentials` is the value of DMQ_CREDENTIALS, if set.
    ///
    /// The checks run in a fixed order, so that of several mistakes the same
    /// one is always reported.
    pub fn plan(&self, workload: Workload, env_credentials: Option<&str>) -> Result<Plan, Error> {
        let target = self.target;
        check_supported(workload, target)?;
        self.check_parallelism()?;
        let size = self.size(workload)?;
        let (addrs, neo_addrs) = self.addrs(workload)?;
        let credentials = self.credentials(workload, env_credentials)?;
        let channels = self.channels(workload, addrs.len())?;
        let channel_prefix = self.channel_prefix(workload)?;
        let stop = self.stop_rule(workload)?;
        self.check_rate(workload)?;
        if workload == Workload::Fanout && self.subscribers == 0 {
            return Err(usage("--subscribers: at least 1"));
        }
        if self.produce_run == 0 {
            return Err(usage("--produce-run: at least 1"));
        }
        Ok(Plan {
            workload,
            target,
            addrs,
            neo_addrs,
            credentials,
            connections: self.connections,
            in_flight: self.in_flight,
            size,
            channels,
            channel_prefix,
            subscribers: self.subscribers,
            stop,
            rate: self.rate,
            produce_run: self.produce_run,
            server_pids: self.server_pids.clone(),
            idle_connections: self.idle_connections,
            redis_blocking_pop: self.redis_blocking_pop,
            json: self.json.clone(),
            plot_dir: self.plot_dir.clone(),
            progress: !self.no_progress,
            label: self.label.clone(),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            reply_timeout: Duration::from_millis(self.reply_timeout_ms),
        })
    }

    /// `--connections` and `--in-flight` within their bounds.
    fn check_parallelism(&self) -> Result<(), Error> {
        if self.connections == 0 || self.connections > 10_000 {
            return Err(usage("--connections: 1 to 10000"));
        }
        if self.in_flight == 0 || self.in_flight > 100_000 {
            return Err(usage("--in-flight: 1 to 100000"));
        }
        Ok(())
    }

    /// The record size distribution: `--size`, `--size-dist` or 100 bytes.
    fn size(&self, workload: Workload) -> Result<SizeDist, Error> {
        let size = match (self.size, self.size_dist) {
            (Some(n), _) => n.to_string().parse::<SizeDist>().map_err(usage)?,
            (None, Some(dist)) => dist,
            (None, None) => SizeDist::Fixed(100),
        };
        if workload == Workload::Fanout && size.min_bytes() < 8 {
            return Err(usage(
                "fanout stamps the send time into each record: --size at least 8",
            ));
        }
        Ok(size)
    }

    /// The legacy addresses (the target's default if none is given) and, for
    /// neo workloads, one neo address per legacy one.
    fn addrs(&self, workload: Workload) -> Result<(Vec<String>, Vec<String>), Error> {
        let addrs = if self.addrs.is_empty() {
            vec![match self.target {
                Target::Dmq => DEFAULT_DMQ_ADDR,
                Target::Redis => DEFAULT_REDIS_ADDR,
                Target::Echo => DEFAULT_ECHO_ADDR,
            }
            .to_owned()]
        } else {
            self.addrs.clone()
        };
        let neo_addrs = if self.neo_addrs.is_empty() {
            if workload.uses_neo() {
                addrs
                    .iter()
                    .map(|a| port_plus_one(a))
                    .collect::<Result<_, _>>()?
            } else {
                Vec::new()
            }
        } else {
            if self.neo_addrs.len() != addrs.len() {
                return Err(usage("give one --neo-addr per --addr"));
            }
            self.neo_addrs.clone()
        };
        Ok((addrs, neo_addrs))
    }

    /// Neo credentials from `--credentials` or DMQ_CREDENTIALS, for the
    /// workloads that speak neo.
    fn credentials(
        &self,
        workload: Workload,
        env_credentials: Option<&str>,
    ) -> Result<Option<NeoCredentials>, Error> {
        if !workload.uses_neo() {
            return Ok(None);
        }
        let text = match (&self.credentials, env_credentials) {
            (Some(path), _) => std::fs::read_to_string(path)
                .map_err(|e| usage(format!("--credentials {}: {e}", path.display())))?,
            (None, Some(line)) => line.to_owned(),
            (None, None) => {
                return Err(usage(format!(
                    "{} speaks neo: give --credentials FILE or set DMQ_CREDENTIALS=name:hexkey",
                    workload.name()
                )))
            }
        };
        NeoCredentials::parse(&text)
            .map(Some)
            .map_err(|e| usage(format!("credentials: {e}")))
    }

    /// Channels per node, and for prefilling workloads a check that each one
    /// gets a consumer.
    fn channels(&self, workload: Workload, nodes: usize) -> Result<usize, Error> {
        let channels = match self.channels {
            Some(0) => return Err(usage("--channels: at least 1")),
            Some(n) => n,
            None if workload == Workload::Fanout => 1,
            None if workload.prefills() => (self.connections / nodes).max(1),
            None => self.connections,
        };
        if workload.prefills() && self.connections < channels * nodes {
            return Err(usage(format!(
                "{}: every channel on every node needs a consumer: --connections at least \
                 channels × nodes = {}",
                workload.name(),
                channels * nodes
            )));
        }
        Ok(channels)
    }

    /// `--channel-prefix` or the workload's own, checked as a channel name.
    fn channel_prefix(&self, workload: Workload) -> Result<String, Error> {
        let channel_prefix = match &self.channel_prefix {
            Some(prefix) => prefix.clone(),
            None => match workload {
                Workload::Consume => "bench_consume".into(),
                Workload::NeoConsume => "bench_neo_consume".into(),
                Workload::Fanout => "bench_fanout".into(),
                _ => "bench".into(),
            },
        };
        if !valid_channel_name(&channel_prefix) {
            return Err(usage(format!(
                "--channel-prefix '{channel_prefix}': channel names are [A-Za-z0-9_-]+"
            )));
        }
        Ok(channel_prefix)
    }

    /// How the run ends: `--count`, or a window of `--duration` (5 s) after
    /// `--warmup`; prefilling workloads need a count.
    fn stop_rule(&self, workload: Workload) -> Result<StopRule, Error> {
        match (self.count, self.duration) {
            (Some(0), _) => Err(usage("--count: at least 1")),
            (Some(count), _) => Ok(StopRule::Count(count)),
            (None, _) if workload.prefills() => Err(usage(format!(
                "{} prefills --count records and takes them: give --count N",
                workload.name()
            ))),
            (None, duration) => {
                let duration_s = duration.unwrap_or(5.0);
                if duration_s <= 0.0 {
                    return Err(usage("--duration: more than 0"));
                }
                Ok(StopRule::Duration {
                    warmup_s: self.warmup,
                    duration_s,
                })
            }
        }
    }

    /// `--rate` is positive and given only to request/reply workloads.
    fn check_rate(&self, workload: Workload) -> Result<(), Error> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        if !(rate.is_finite() && rate > 0.0) {
            return Err(usage("--rate: a positive number of requests per second"));
        }
        let request_reply = match workload {
            Workload::Produce => self.target == Target::Redis,
            Workload::Consume => false,
            Workload::NeoConsume => false,
            _ => true,
        };
        if !request_reply {
            return Err(usage(format!(
                "--rate applies to request/reply workloads, not to {}",
                workload.name()
            )));
        }
        Ok(())
    }
}

/// Whether `target` serves `workload`.
fn check_supported(workload: Workload, target: Target) -> Result<(), Error> {
    let supported = match target {
        Target::Dmq => true,
        Target::Redis => matches!(
            workload,
            Workload::Push
                | Workload::Pop
                | Workload::PushPop
                | Workload::Produce
                | Workload::Consume
                | Workload::Ping
        ),
        Target::Echo => matches!(
            workload,
            Workload::Push | Workload::Pop | Workload::PushPop | Workload::Produce | Workload::Ping
        ),
    };
    if supported {
        Ok(())
    } else {
        Err(usage(format!(
            "{} is not a workload for --target {}",
            workload.name(),
            target.name()
        )))
    }
}

impl Command {
    /// The workload and its arguments, for the workload subcommands.
    pub fn workload(&self) -> Option<(Workload, &RunArgs)> {
        Some(match self {
            Command::Push(a) => (Workload::Push, a),
            Command::Pop(a) => (Workload::Pop, a),
            Command::PushPop(a) => (Workload::PushPop, a),
            Command::Produce(a) => (Workload::Produce, a),
            Command::Consume(a) => (Workload::Consume, a),
            Command::Fanout(a) => (Workload::Fanout, a),
            Command::NeoPush(a) => (Workload::NeoPush, a),
            Command::NeoPop(a) => (Workload::NeoPop, a),
            Command::NeoConsume(a) => (Workload::NeoConsume, a),
            Command::Ping(a) => (Workload::Ping, a),
            Command::EchoServer(_) | Command::Clear(_) | Command::Median(_) | Command::Plot(_) => {
                return None
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("dmq-bench").chain(args.iter().copied()))
    }

    fn plan(args: &[&str]) -> Result<Plan, Error> {
        let cli = parse(args).map_err(|e| Error::Usage(e.to_string()))?;
        let (workload, run) = cli.command.workload().expect("a workload");
        run.plan(workload, Some(&format!("bench:{}", "0".repeat(256))))
    }

    #[test]
    fn defaults_resolve() {
        let p = plan(&["push"]).expect("plan");
        assert_eq!(p.workload, Workload::Push);
        assert_eq!(p.target, Target::Dmq);
        assert_eq!(p.addrs, [DEFAULT_DMQ_ADDR]);
        assert!(p.neo_addrs.is_empty() && p.credentials.is_none());
        assert_eq!((p.connections, p.in_flight, p.channels), (1, 1, 1));
        assert_eq!(p.size, SizeDist::Fixed(100));
        assert_eq!(p.channel_prefix, "bench");
        assert_eq!(
            p.stop,
            StopRule::Duration {
                warmup_s: 1.0,
                duration_s: 5.0
            }
        );
        assert_eq!(
            plan(&["ping", "--target", "redis"]).expect("redis").addrs,
            [DEFAULT_REDIS_ADDR]
        );
        assert_eq!(
            plan(&["push", "--target", "echo"]).expect("echo").addrs,
            [DEFAULT_ECHO_ADDR]
        );
    }

    #[test]
    fn the_compare_matrix_parses() {
        let p = plan(&[
            "push",
            "--connections",
            "50",
            "--in-flight",
            "16",
            "--size",
            "100",
            "--duration",
            "3s",
            "--warmup",
            "500ms",
            "--server-pid",
            "42",
            "--json",
            "/tmp/x.json",
        ])
        .expect("plan");
        assert_eq!((p.connections, p.in_flight, p.channels), (50, 16, 50));
        assert_eq!(
            p.stop,
            StopRule::Duration {
                warmup_s: 0.5,
                duration_s: 3.0
            }
        );
        assert_eq!(p.server_pids, [42]);
        let p = plan(&[
            "produce",
            "--addr",
            "127.0.0.1:1",
            "--addr",
            "127.0.0.1:2",
            "--channels",
            "64",
            "--connections",
            "4",
        ])
        .expect("plan");
        assert_eq!(p.addrs.len(), 2);
        assert_eq!(p.channels, 64);
        let p = plan(&["consume", "--count", "2000000", "--connections", "4"]).expect("plan");
        assert_eq!((p.stop, p.channels), (StopRule::Count(2_000_000), 4));
        assert_eq!(p.channel_prefix, "bench_consume");
        let p =
            plan(&["push", "--size-dist", "uniform:100:1000", "--rate", "50000"]).expect("plan");
        assert_eq!(
            p.size,
            SizeDist::Uniform {
                min: 100,
                max: 1000
            }
        );
        assert_eq!(p.rate, Some(50_000.0));
    }

    #[test]
    fn neo_addresses_and_credentials() {
        let p = plan(&["neo-push", "--addr", "127.0.0.1:10600"]).expect("plan");
        assert_eq!(p.neo_addrs, ["127.0.0.1:10601"]);
        assert_eq!(
            p.credentials.as_ref().map(|c| c.name.as_str()),
            Some("bench")
        );
        let p = plan(&["fanout", "--subscribers", "3"]).expect("plan");
        assert_eq!((p.channels, p.subscribers), (1, 3));
        assert_eq!(p.channel_prefix, "bench_fanout");
        let cli = parse(&["neo-pop"]).expect("parse");
        let (workload, run) = cli.command.workload().expect("workload");
        assert!(matches!(run.plan(workload, None), Err(Error::Usage(_))));
        assert!(plan(&[
            "neo-push",
            "--addr",
            "a:1",
            "--addr",
            "b:1",
            "--neo-addr",
            "a:2"
        ])
        .is_err());
    }

    #[test]
    fn impossible_combinations_are_refused() {
        // clap-level conflicts.
        assert!(parse(&["push", "--size", "100", "--size-dist", "uniform:1:2"]).is_err());
        assert!(parse(&["push", "--duration", "3", "--count", "10"]).is_err());
        assert!(parse(&["push", "--size-dist", "uniform:9:2"]).is_err());
        assert!(parse(&["push", "--duration", "soon"]).is_err());
        assert!(parse(&["push", "--target", "kafka"]).is_err());
        assert!(parse(&["shove"]).is_err());
        // Plan-level checks.
        for bad in [
            &["fanout", "--target", "redis"][..],
            &["neo-push", "--target", "echo"],
            &["consume", "--target", "echo", "--count", "5"],
            &["consume"],
            &[
                "consume",
                "--count",
                "5",
                "--channels",
                "4",
                "--connections",
                "2",
            ],
            &["push", "--connections", "0"],
            &["push", "--in-flight", "0"],
            &["push", "--size", "0"],
            &["push", "--channels", "0"],
            &["push", "--channel-prefix", "bad name"],
            &["push", "--rate", "0"],
            &["produce", "--rate", "1000"],
            &["consume", "--count", "5", "--rate", "10"],
            &["fanout", "--size", "4"],
            &["push", "--count", "0"],
            &["push", "--duration", "0"],
        ] {
            assert!(
                matches!(plan(bad), Err(Error::Usage(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn helper_subcommands_parse() {
        let cli = parse(&["echo-server", "--listen", "127.0.0.1:0"]).expect("echo");
        assert!(matches!(cli.command, Command::EchoServer(ref a) if a.listen == "127.0.0.1:0"));
        let cli = parse(&["median", "latency.p99_us", "a.json", "b.json"]).expect("median");
        assert!(matches!(cli.command, Command::Median(ref a) if a.files.len() == 2));
        assert!(parse(&["median", "records_per_s"]).is_err());
        let cli = parse(&["clear", "--target", "redis", "--channels", "50"]).expect("clear");
        assert!(matches!(cli.command, Command::Clear(ref a) if a.channels == 50));
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
        assert_eq!(parse_seconds("250ms"), Ok(0.25));
        assert!(parse_seconds("-1").is_err());
    }
}
