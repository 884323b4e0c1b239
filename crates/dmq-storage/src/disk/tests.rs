//! Unit tests of the disk overflow's bookkeeping, against in-memory files.

use std::collections::BTreeMap;

use super::*;

const CONFIG: DiskConfig = DiskConfig {
    segment_size: 4096,
    limit: 0,
};

/// Executes jobs against in-memory files.
#[derive(Default)]
struct Files(BTreeMap<u32, Vec<u8>>);

impl Files {
    fn recover(&self) -> Recovered {
        let seqs: Vec<u32> = self.0.keys().copied().collect();
        recover(CONFIG, &seqs, |seq| Ok(self.0[&seq].clone())).expect("recover")
    }

    fn run(&mut self, w: &mut DiskWriter) {
        while let Some(job) = w.take_write() {
            if let Some(data) = &job.data {
                let f = self.0.entry(data.seg).or_default();
                let end = data.pos as usize + data.bytes.len();
                if f.len() < end {
                    f.resize(end, 0);
                }
                f[data.pos as usize..end].copy_from_slice(&data.bytes);
            }
            for p in &job.patches {
                let f = self.0.get_mut(&p.seg).expect("patched file exists");
                f[p.pos as usize..p.pos as usize + 32].copy_from_slice(&p.header);
            }
            assert!(w.write_done(job, true).is_empty());
        }
    }

    fn read_all(&self, w: &mut DiskWriter, q: &mut DiskQueue) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            match w.segments().read_plan(q, 100) {
                ReadPlan::Nothing => return out,
                ReadPlan::NotYet => panic!("everything was written"),
                ReadPlan::Read { at, mut len } => loop {
                    let f = &self.0[&at.seg];
                    let end = (at.offset as usize + len).min(f.len());
                    let buf = &f[at.offset as usize..end];
                    let done = w
                        .consume(q, at, buf, |p| {
                            out.push(p.to_vec());
                            true
                        })
                        .expect("valid");
                    match done.need {
                        Some(n) if done.records == 0 => len = n,
                        _ => break,
                    }
                },
            }
        }
    }
}

fn name(n: &'static str) -> impl Fn() -> String {
    move || n.to_owned()
}

#[test]
fn segment_names_round_trip() {
    assert_eq!(segment_file_name(1, 2, 7), "overflow-1of2-000007.dat");
    assert_eq!(
        parse_segment_file_name("overflow-1of2-000007.dat"),
        Some((1, 2, 7))
    );
    assert_eq!(parse_segment_file_name("overflow-2of2-000007.dat"), None);
    assert_eq!(parse_segment_file_name("overflow.dat"), None);
    assert_eq!(parse_segment_file_name("overflow-1of2-x.dat"), None);
}

#[test]
fn interleaved_queues_read_back_in_order_across_segments() {
    let mut w = DiskWriter::new(CONFIG);
    let mut files = Files::default();
    let (mut a, mut b) = (DiskQueue::default(), DiskQueue::default());
    for i in 0..200u32 {
        let rec = format!("record-{i:05}").into_bytes();
        w.append(&mut a, &name("a"), &rec).expect("append");
        if i % 3 == 0 {
            w.append(&mut b, &name("sub@b"), &rec).expect("append");
        }
        if i % 50 == 0 {
            files.run(&mut w);
        }
    }
    files.run(&mut w);
    assert!(w.segments().count() > 2, "several segments");
    assert_eq!((a.records(), b.records()), (200, 67));
    let got = files.read_all(&mut w, &mut a);
    let want: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("record-{i:05}").into_bytes())
        .collect();
    assert_eq!(got, want);
    assert_eq!(files.read_all(&mut w, &mut b).len(), 67);
    assert_eq!(w.segments().live_records(), 0);
    files.run(&mut w);
    let gone = w.reclaim();
    assert_eq!(gone.len(), files.0.len(), "everything reclaimed");
}

#[test]
fn unwritten_records_are_not_read_and_links_wait() {
    let mut w = DiskWriter::new(CONFIG);
    let mut q = DiskQueue::default();
    w.append(&mut q, &name("a"), b"one").expect("append");
    assert_eq!(w.segments().read_plan(&q, 100), ReadPlan::NotYet);
    let mut files = Files::default();
    files.run(&mut w);
    // The second record is appended but not written: the link is not there.
    w.append(&mut q, &name("a"), b"two").expect("append");
    let ReadPlan::Read { at, len } = w.segments().read_plan(&q, 1000) else {
        panic!("readable");
    };
    let buf = files.0[&at.seg][at.offset as usize..][..len].to_vec();
    let done = w.consume(&mut q, at, &buf, |_| true).expect("valid");
    assert!(done.not_yet);
    files.run(&mut w);
    assert_eq!(
        files.read_all(&mut w, &mut q),
        vec![b"one".to_vec(), b"two".to_vec()]
    );
}

#[test]
fn limit_refuses_new_segments() {
    let mut w = DiskWriter::new(DiskConfig {
        segment_size: 4096,
        limit: 8192,
    });
    let mut q = DiskQueue::default();
    let mut n = 0;
    let error = loop {
        match w.append(&mut q, &name("a"), &[1; 1000]) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 100);
    };
    assert_eq!(error, DiskError::Limit);
    assert_eq!(q.records(), n);
    assert!(n >= 6, "{n}");
}

#[test]
fn records_are_refused_while_too_much_waits_to_be_written() {
    let mut w = DiskWriter::new(CONFIG).with_unwritten_limit(1000);
    let mut files = Files::default();
    let mut q = DiskQueue::default();
    // One record alone may exceed the bound; then nothing more fits.
    w.append(&mut q, &name("a"), &[1; 1500]).expect("append");
    assert_eq!(
        w.append(&mut q, &name("a"), &[2; 10]),
        Err(DiskError::Behind)
    );
    // Once written, records are taken again.
    files.run(&mut w);
    w.append(&mut q, &name("a"), &[2; 10]).expect("append");
    assert_eq!(q.records(), 2);
}

#[test]
fn a_failed_write_gives_up_unwritten_records() {
    let mut w = DiskWriter::new(CONFIG);
    let mut files = Files::default();
    let mut q = DiskQueue::default();
    w.append(&mut q, &name("a"), b"kept").expect("append");
    files.run(&mut w);
    w.append(&mut q, &name("a"), b"lost1").expect("append");
    w.append(&mut q, &name("a"), b"lost2").expect("append");
    let job = w.take_write().expect("job");
    let lost = w.write_done(job, false);
    assert_eq!(lost.len(), 2);
    assert!(DiskWriter::forget(&mut q, &lost));
    assert_eq!(q.records(), 1);
    assert_eq!(
        w.append(&mut q, &name("a"), b"x"),
        Err(DiskError::Unavailable)
    );
    w.retry();
    w.append(&mut q, &name("a"), b"after").expect("append");
    files.run(&mut w);
    assert_eq!(
        files.read_all(&mut w, &mut q),
        vec![b"kept".to_vec(), b"after".to_vec()]
    );
}

#[test]
fn recovery_rebuilds_queues_skips_read_and_dropped_records_and_cuts_torn_tails() {
    let mut w = DiskWriter::new(CONFIG);
    let mut files = Files::default();
    let (mut a, mut b, mut c) = Default::default();
    for i in 0..100u32 {
        let rec = format!("r{i:04}").into_bytes();
        w.append(&mut a, &name("a"), &rec).expect("append");
        w.append(&mut b, &name("x@b"), &rec).expect("append");
        w.append(&mut c, &name("c"), &rec).expect("append");
    }
    files.run(&mut w);
    // Read 30 of a, rename b, drop c.
    let mut taken = 0;
    while taken < 30 {
        let ReadPlan::Read { at, len } = w.segments().read_plan(&a, 64) else {
            panic!("readable");
        };
        let buf = files.0[&at.seg][at.offset as usize..][..len].to_vec();
        let done = w
            .consume(&mut a, at, &buf, |_| {
                taken += 1;
                taken <= 30
            })
            .expect("valid");
        taken = taken.min(30);
        let _ = done;
    }
    w.rename(&b, "y@b".to_owned());
    w.drop_queue(&mut c);
    w.append(&mut a, &name("a"), b"last").expect("append");
    files.run(&mut w);
    // A torn tail: half a record at the end of the newest segment.
    let newest = *files.0.keys().last().expect("segments");
    files
        .0
        .get_mut(&newest)
        .expect("file")
        .extend_from_slice(&[7; 20]);

    let r = files.recover();
    assert_eq!(r.orphans, 0);
    assert_eq!(r.truncate.len(), 1);
    let names: Vec<&str> = r.queues.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "y@b"]);
    let mut w = r.writer;
    let mut a = r.queues[0].1.clone();
    assert_eq!(a.records(), 71);
    let got = files.read_all(&mut w, &mut a);
    assert_eq!(got[0], b"r0030");
    assert_eq!(got.last().expect("records"), b"last");
    // New records go to a new segment.
    let mut b = r.queues[1].1.clone();
    w.append(&mut b, &name("y@b"), b"new").expect("append");
    files.run(&mut w);
    let got = files.read_all(&mut w, &mut b);
    assert_eq!(got.len(), 101);
    assert_eq!(got.last().expect("records"), b"new");
}

#[test]
fn each_segment_with_its_index_reads_like_the_originals_files() {
    let mut w = DiskWriter::new(CONFIG);
    let mut files = Files::default();
    let (mut a, mut b) = (DiskQueue::default(), DiskQueue::default());
    for i in 0..120u32 {
        let rec = format!("r{i:04}").into_bytes();
        w.append(&mut a, &name("a"), &rec).expect("append");
        if i % 2 == 0 {
            w.append(&mut b, &name("s@b"), &rec).expect("append");
        }
    }
    files.run(&mut w);
    // Read some of a back: the index starts at the next unread record.
    let ReadPlan::Read { at, len } = w.segments().read_plan(&a, 200) else {
        panic!("readable");
    };
    let buf = files.0[&at.seg][at.offset as usize..][..len].to_vec();
    let taken = w
        .consume(&mut a, at, &buf, |_| true)
        .expect("valid")
        .records;
    assert!(taken > 0);
    let index = w
        .segments()
        .index([("a".to_owned(), &a), ("s@b".to_owned(), &b)]);
    assert!(index.len() > 1, "several segments");
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    for (seq, entries) in &index {
        let text = crate::files::format_index(entries);
        let parsed = crate::files::parse_index(&text).expect("index parses");
        for (storage, records) in
            crate::files::read_indexed(&files.0[seq], &parsed).expect("original reader")
        {
            match storage.as_str() {
                "a" => got_a.extend(records),
                _ => got_b.extend(records),
            }
        }
    }
    let want = |range: std::ops::Range<u32>, step: usize| -> Vec<Vec<u8>> {
        range
            .step_by(step)
            .map(|i| format!("r{i:04}").into_bytes())
            .collect()
    };
    assert_eq!(got_a, want(taken as u32..120, 1));
    assert_eq!(got_b, want(0..120, 2));
}

#[test]
fn a_segment_holding_only_meta_records_is_kept_behind_live_ones() {
    let mut w = DiskWriter::new(CONFIG);
    let mut files = Files::default();
    let (mut a, mut b) = (DiskQueue::default(), DiskQueue::default());
    // Segment 1: a's records and one of b's.
    for i in 0..20u32 {
        w.append(&mut a, &name("a"), format!("a{i:03}").as_bytes())
            .expect("append");
    }
    w.append(&mut b, &name("b"), b"b-kept").expect("append");
    files.run(&mut w);
    // Fill segment 1 so that what follows goes to segment 2.
    let mut filler = DiskQueue::default();
    while w.segments().count() < 2 {
        w.append(&mut filler, &name("f"), &[0; 200])
            .expect("append");
    }
    files.run(&mut w);
    // Read all of a and of the filler: their progress records go to
    // segment 2, which then holds nothing live.
    assert_eq!(files.read_all(&mut w, &mut a).len(), 20);
    files.read_all(&mut w, &mut filler);
    files.run(&mut w);
    // Twice: what one start keeps, the next must read the same way.
    for round in 0..2 {
        let r = files.recover();
        assert!(
            r.empty.is_empty(),
            "round {round}: nothing deleted: {:?}",
            r.empty
        );
        let names: Vec<&str> = r.queues.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b"], "round {round}: a's records stay read");
        assert!(r.writer.next_id > filler.id(), "ids on disk are not reused");
    }
}

#[test]
fn recovery_repairs_a_link_the_crash_did_not_write() {
    let mut w = DiskWriter::new(CONFIG);
    let mut files = Files::default();
    let mut q = DiskQueue::default();
    w.append(&mut q, &name("a"), b"1").expect("append");
    files.run(&mut w);
    w.append(&mut q, &name("a"), b"2").expect("append");
    // Execute the data write but not the link patch.
    let mut job = w.take_write().expect("job");
    job.patches.clear();
    let data = job.data.as_ref().expect("a data write");
    let f = files.0.get_mut(&data.seg).expect("file");
    f.extend_from_slice(&data.bytes);
    let r = files.recover();
    assert_eq!(r.patches.len(), 1);
    for p in &r.patches {
        let f = files.0.get_mut(&p.seg).expect("file");
        f[p.pos as usize..p.pos as usize + 32].copy_from_slice(&p.header);
    }
    let mut w = r.writer;
    let mut q = r.queues[0].1.clone();
    assert_eq!(
        files.read_all(&mut w, &mut q),
        vec![b"1".to_vec(), b"2".to_vec()]
    );
}
