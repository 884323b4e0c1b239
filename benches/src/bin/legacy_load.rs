//! A small closed-loop load generator for the legacy protocol, and the raw
//! loopback target it is compared with (until the full `dmq-bench` harness).
//!
//! ```text
//! legacy_load push  ADDR CONNECTIONS IN_FLIGHT SECONDS RECORD_BYTES
//! legacy_load pop   ADDR CONNECTIONS IN_FLIGHT SECONDS
//! legacy_load echo  ADDR              # raw target: answers 4 bytes per Push-sized request
//! ```
//! Each connection has its own channel (`load0`, `load1`, ...), so the channels
//! spread over the node's shards. Prints requests per second.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dmq_proto::legacy::{
    check, encode_status, parse_array, parse_status, DecodeError, Request, Status,
};

/// Bytes the echo target buffers per connection; a request that cannot fit
/// never completes, so the connection is dropped.
const ECHO_BUFFER_BYTES: usize = 64 * 1024;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, name: &str) -> T {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("argument {i} ({name}) missing or invalid; see the doc comment"))
}

/// One request of a connection, as a client sends it: Pop, or Push of `value`.
fn request(pop: bool, channel: &[u8], value: &[u8]) -> Vec<u8> {
    let request = if pop {
        Request::Pop { channel }
    } else {
        Request::Push { channel, value }
    };
    let mut out = Vec::new();
    request.encode(&mut out);
    out
}

/// Reads one item off `stream` with `decode`, reading exactly the bytes it says
/// it needs (so the next reply stays in the socket). `decode` refuses an array
/// over the protocol's limit before its bytes are read, so `buf` stays bounded.
fn read_item<T>(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    decode: impl Fn(&[u8]) -> Result<(T, usize), DecodeError>,
) -> io::Result<T> {
    buf.clear();
    loop {
        match decode(buf) {
            Ok((item, _)) => return Ok(item),
            Err(DecodeError::Incomplete { needed }) => {
                let have = buf.len();
                buf.resize(needed, 0);
                stream.read_exact(&mut buf[have..])?;
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

/// Reads one reply: a status, and for Pop (status 200) the value array.
fn read_reply(stream: &mut TcpStream, pop: bool, scratch: &mut Vec<u8>) -> io::Result<()> {
    let status = read_item(stream, scratch, parse_status)?;
    if pop && Status::from_code(status) == Some(Status::Ok) {
        read_item(stream, scratch, |b| {
            parse_array(b).map(|(value, used)| (value.len(), used))
        })?;
    }
    Ok(())
}

fn client(args: &[String], pop: bool) {
    let addr: String = arg(args, 2, "ADDR");
    let connections: usize = arg(args, 3, "CONNECTIONS");
    let in_flight: usize = arg(args, 4, "IN_FLIGHT");
    let seconds: u64 = arg(args, 5, "SECONDS");
    let size: usize = if pop { 0 } else { arg(args, 6, "RECORD_BYTES") };
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..connections)
        .map(|i| {
            let (addr, done, stop) = (addr.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(&addr).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let channel = format!("load{i}");
                let one = request(pop, channel.as_bytes(), &vec![b'x'; size]);
                let burst: Vec<u8> = one.repeat(in_flight);
                let mut scratch = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    stream.write_all(&burst).expect("write");
                    for _ in 0..in_flight {
                        read_reply(&mut stream, pop, &mut scratch).expect("read");
                    }
                    done.fetch_add(in_flight as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let start_count = done.load(Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let count = done.load(Ordering::Relaxed) - start_count;
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    println!(
        "{} {addr} connections={connections} in_flight={in_flight} size={size}: {:.0} req/s",
        if pop { "pop" } else { "push" },
        count as f64 / elapsed
    );
}

/// The physical ceiling: reads requests (Push-shaped, from `push`) and answers
/// each 200, with no queue behind it. One thread per connection.
fn echo(args: &[String]) {
    let addr: String = arg(args, 2, "ADDR");
    let listener = TcpListener::bind(&addr).expect("bind");
    println!("echo target on {}", listener.local_addr().expect("addr"));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || echo_connection(stream));
    }
}

/// Answers 200 to every whole request that arrives, until the peer closes or
/// sends what is not a request (or one too big for the buffer).
fn echo_connection(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; ECHO_BUFFER_BYTES];
    let mut have = 0;
    let mut out = Vec::new();
    loop {
        let n = match stream.read(&mut buf[have..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        have += n;
        let mut pos = 0;
        loop {
            match check(&buf[pos..have]) {
                Ok(used) => {
                    pos += used;
                    encode_status(&mut out, Status::Ok);
                }
                Err(DecodeError::Incomplete { needed }) if needed <= buf.len() => break,
                Err(_) => return,
            }
        }
        buf.copy_within(pos..have, 0);
        have -= pos;
        if stream.write_all(&out).is_err() {
            return;
        }
        out.clear();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("push") => client(&args, false),
        Some("pop") => client(&args, true),
        Some("echo") => echo(&args),
        _ => eprintln!("usage: see the doc comment of benches/src/bin/legacy_load.rs"),
    }
}
