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

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest value a Pop reply may announce: the legacy protocol's array limit
/// (`dmq_proto::legacy::MAX_ARRAY_LEN`), checked before the buffer grows.
const MAX_VALUE_BYTES: u64 = 10 * 1024 * 1024;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, name: &str) -> T {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("argument {i} ({name}) missing or invalid; see the doc comment"))
}

fn push_request(channel: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&1i32.to_le_bytes());
    out.extend_from_slice(&(channel.len() as u64).to_le_bytes());
    out.extend_from_slice(channel);
    out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn pop_request(channel: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&2i32.to_le_bytes());
    out.extend_from_slice(&(channel.len() as u64).to_le_bytes());
    out.extend_from_slice(channel);
    out
}

/// Reads one reply: a status, and for Pop the value array.
fn read_reply(stream: &mut TcpStream, pop: bool, scratch: &mut Vec<u8>) -> std::io::Result<()> {
    let mut status = [0u8; 4];
    stream.read_exact(&mut status)?;
    if pop && i32::from_le_bytes(status) == 200 {
        let mut len = [0u8; 8];
        stream.read_exact(&mut len)?;
        let len = u64::from_le_bytes(len);
        if len > MAX_VALUE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a value of {len} bytes is over the {MAX_VALUE_BYTES}-byte limit"),
            ));
        }
        scratch.resize(len as usize, 0);
        stream.read_exact(scratch)?;
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
                let one = if pop {
                    pop_request(channel.as_bytes())
                } else {
                    push_request(channel.as_bytes(), &vec![b'x'; size])
                };
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

/// The physical ceiling: reads Push-shaped requests and answers 200, with no
/// queue behind it. One thread per connection.
fn echo(args: &[String]) {
    let addr: String = arg(args, 2, "ADDR");
    let listener = TcpListener::bind(&addr).expect("bind");
    println!("echo target on {}", listener.local_addr().expect("addr"));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let mut buf = vec![0u8; 64 * 1024];
            let mut have = 0;
            let mut out = Vec::new();
            loop {
                let n = match stream.read(&mut buf[have..]) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                have += n;
                let mut pos = 0;
                // code + channel array + value array
                loop {
                    let rest = &buf[pos..have];
                    let Some(clen) = rest
                        .get(4..12)
                        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
                    else {
                        break;
                    };
                    // A request that cannot fit the buffer never completes: drop
                    // the connection (this also keeps the sums below from overflowing).
                    if clen > buf.len() {
                        return;
                    }
                    let vstart = 12 + clen;
                    let Some(vlen) = rest
                        .get(vstart..vstart + 8)
                        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
                    else {
                        break;
                    };
                    if vlen > buf.len() {
                        return;
                    }
                    let total = vstart + 8 + vlen;
                    if rest.len() < total {
                        break;
                    }
                    pos += total;
                    out.extend_from_slice(&200i32.to_le_bytes());
                }
                buf.copy_within(pos..have, 0);
                have -= pos;
                if stream.write_all(&out).is_err() {
                    return;
                }
                out.clear();
            }
        });
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
