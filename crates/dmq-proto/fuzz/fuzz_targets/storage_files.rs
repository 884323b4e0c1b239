//! Feeds arbitrary bytes to the readers of the data directory's files, as a
//! start after a crash (or a hostile file) would: the overflow segment
//! recovery scan, then reading back every storage it rebuilt; the `.rq` dump
//! reader; the original's index parser and indexed overflow reader. Checks
//! that nothing panics, that recovery keeps only what it can read back, and
//! that every storage's records read back match its counts.
#![no_main]

use dmq_storage::disk::{recover, DiskConfig, ReadPlan};
use dmq_storage::files::{parse_index, read_dump, read_indexed};
use libfuzzer_sys::fuzz_target;

const CONFIG: DiskConfig = DiskConfig {
    segment_size: 1 << 16,
    limit: 0,
};

fuzz_target!(|data: &[u8]| {
    // Two segments: the input cut at its first byte's position.
    let cut = data.first().map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let segments = [data[..cut].to_vec(), data[cut..].to_vec()];
    if let Ok(mut recovered) = recover(CONFIG, &[1, 2], |seq| Ok(segments[seq as usize - 1].clone())) {
        let mut files = segments.clone();
        for &(seq, len) in &recovered.truncate {
            files[seq as usize - 1].truncate(len as usize);
        }
        for patch in &recovered.patches {
            let file = &mut files[patch.seg as usize - 1];
            let at = patch.pos as usize;
            file[at..at + patch.header.len()].copy_from_slice(&patch.header);
        }
        let writer = &mut recovered.writer;
        for (_, queue) in &mut recovered.queues {
            let (records, bytes) = (queue.records(), queue.bytes());
            let (mut got_records, mut got_bytes) = (0u64, 0u64);
            loop {
                let ReadPlan::Read { at, len } = writer.segments().read_plan(queue, 1 << 20) else {
                    break;
                };
                let file = &files[at.seg as usize - 1];
                let start = (at.offset as usize).min(file.len());
                let end = start.saturating_add(len).min(file.len());
                let Ok(done) = writer.consume(queue, at, &file[start..end], |payload| {
                    got_bytes += payload.len() as u64;
                    true
                }) else {
                    break;
                };
                got_records += done.records;
                if done.records == 0 {
                    break;
                }
            }
            if queue.is_empty() {
                assert_eq!((got_records, got_bytes), (records, bytes));
            }
        }
    }
    if let Ok(dump) = read_dump(data) {
        assert_eq!(dump.iter().count(), dump.len());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(entries) = parse_index(text) {
            let _ = read_indexed(data, &entries);
        }
    }
});
