//! A blocking client of the node's admin UNIX socket: one command line, one
//! reply (a line, or lines up to an empty one).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::IO_TIMEOUT;

/// A blocking client of the admin UNIX socket: one command line, one reply.
pub struct Admin {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Admin {
    pub fn connect(path: &Path) -> Admin {
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|e| panic!("connect to the admin socket {}: {e}", path.display()));
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("write timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Admin {
            writer: stream,
            reader,
        }
    }

    fn send(&mut self, command: &str) {
        self.writer
            .write_all(format!("{command}\n").as_bytes())
            .unwrap_or_else(|e| panic!("admin command {command:?}: {e}"));
    }

    fn read_line(&mut self, command: &str) -> String {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("admin command {command:?}: reading the reply: {e}"));
        assert!(
            n > 0 && line.ends_with('\n'),
            "admin command {command:?}: the reply ended early: {line:?}"
        );
        line.pop();
        line
    }

    /// A command with a one-line reply; the line without its newline.
    pub fn line(&mut self, command: &str) -> String {
        self.send(command);
        self.read_line(command)
    }

    /// A command with a multi-line reply: the lines before the terminating
    /// empty line.
    pub fn lines(&mut self, command: &str) -> Vec<String> {
        self.send(command);
        let mut lines = Vec::new();
        // Bounded: every round reads one line (or fails after IO_TIMEOUT).
        for _ in 0..1_000_000 {
            let line = self.read_line(command);
            if line.is_empty() {
                return lines;
            }
            lines.push(line);
        }
        panic!("admin command {command:?}: no end of the reply");
    }

    /// `channels` as `(name, [records_memory, bytes_memory, records_overflow,
    /// bytes_overflow])`, sorted by name.
    pub fn channels(&mut self) -> Vec<(String, [u64; 4])> {
        let mut storages: Vec<(String, [u64; 4])> = self
            .lines("channels")
            .into_iter()
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                assert_eq!(fields.len(), 5, "channels line {line:?}");
                let n = |i: usize| -> u64 {
                    fields[i]
                        .parse()
                        .unwrap_or_else(|e| panic!("channels line {line:?}: field {i}: {e}"))
                };
                (fields[0].to_owned(), [n(1), n(2), n(3), n(4)])
            })
            .collect();
        storages.sort();
        storages
    }

    /// The names `list-credentials` lists, sorted (after checking the
    /// header line).
    pub fn credential_names(&mut self) -> Vec<String> {
        let mut lines = self.lines("list-credentials");
        assert_eq!(
            lines.first().map(String::as_str),
            Some("Registered credentials:"),
            "list-credentials: {lines:?}"
        );
        lines.remove(0);
        lines.sort();
        lines
    }

    /// The `channels` figures of storage `name`, if listed.
    pub fn storage(&mut self, name: &str) -> Option<[u64; 4]> {
        self.channels()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, figures)| figures)
    }
}
