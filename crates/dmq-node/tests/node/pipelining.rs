//! Many mixed requests for channels on both shards sent in one write are all
//! answered, in request order, exactly as if they had been sent one by one.
//! The expected replies come from a small model of the channel semantics.

use std::collections::{HashMap, VecDeque};

use dmq_proto::legacy::encode_array;
use dmq_testkit::legacy::{BAD_CHANNEL_NAME, EMPTY_VALUE, ERROR, NOT_SUPPORTED, OK};
use dmq_testkit::node::Node;

use crate::support::names_on_each_shard;

/// The unsubscribed channels of a node: name -> records.
#[derive(Default)]
struct Model {
    channels: HashMap<Vec<u8>, VecDeque<Vec<u8>>>,
}

fn valid(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

fn status(out: &mut Vec<u8>, code: i32) {
    out.extend_from_slice(&code.to_le_bytes());
}

impl Model {
    fn push(&mut self, ch: &[u8], value: &[u8], out: &mut Vec<u8>) {
        if !valid(ch) {
            return status(out, BAD_CHANNEL_NAME);
        }
        let queue = self.channels.entry(ch.to_vec()).or_default();
        if value.is_empty() {
            return status(out, EMPTY_VALUE);
        }
        queue.push_back(value.to_vec());
        status(out, OK);
    }

    fn pop(&mut self, ch: &[u8], out: &mut Vec<u8>) {
        if !valid(ch) {
            return status(out, BAD_CHANNEL_NAME);
        }
        match self.channels.get_mut(ch) {
            None => status(out, ERROR),
            Some(queue) => {
                status(out, OK);
                encode_array(out, &queue.pop_front().unwrap_or_default());
            }
        }
    }

    fn push_multi(&mut self, channels: &[Vec<u8>], value: &[u8], out: &mut Vec<u8>) {
        if !channels.iter().all(|c| valid(c)) {
            return status(out, BAD_CHANNEL_NAME);
        }
        if value.is_empty() {
            return status(out, EMPTY_VALUE);
        }
        for ch in channels {
            self.channels
                .entry(ch.clone())
                .or_default()
                .push_back(value.to_vec());
        }
        status(out, OK);
    }

    fn remove(&mut self, ch: &[u8], out: &mut Vec<u8>) {
        if !valid(ch) {
            return status(out, BAD_CHANNEL_NAME);
        }
        self.channels.remove(ch);
        status(out, OK);
    }
}

#[test]
fn one_write_of_mixed_requests_is_answered_in_order() {
    let node = Node::start(&[]);
    let mut names: Vec<Vec<u8>> = names_on_each_shard("pipe", 4)
        .into_iter()
        .map(String::into_bytes)
        .collect();
    names.push(b"bad.name".to_vec());
    let mut rng = fastrand::Rng::with_seed(0x5eed_2024);
    let mut model = Model::default();
    let mut c = node.client();
    let mut expected = Vec::new();
    let mut counts = [0usize; 5];
    for round in 0..3 {
        for n in 0..1500 {
            let pick = |rng: &mut fastrand::Rng| {
                // The bad name about one time in twenty.
                if rng.usize(..20) == 0 {
                    names[names.len() - 1].clone()
                } else {
                    names[rng.usize(..names.len() - 1)].clone()
                }
            };
            let value = if rng.usize(..30) == 0 {
                Vec::new()
            } else {
                format!("r{round}-{n}").into_bytes()
            };
            let kind = match rng.usize(..100) {
                0..=39 => 0,
                40..=74 => 1,
                75..=89 => 2,
                90..=94 => 3,
                _ => 4,
            };
            counts[kind] += 1;
            match kind {
                0 => {
                    let ch = pick(&mut rng);
                    c.queue_push(&ch, &value);
                    model.push(&ch, &value, &mut expected);
                }
                1 => {
                    let ch = pick(&mut rng);
                    c.queue_pop(&ch);
                    model.pop(&ch, &mut expected);
                }
                2 => {
                    let list: Vec<Vec<u8>> = (0..rng.usize(..4)).map(|_| pick(&mut rng)).collect();
                    c.queue_push_multi(&list, &value);
                    model.push_multi(&list, &value, &mut expected);
                }
                3 => {
                    let ch = pick(&mut rng);
                    c.queue_remove(&ch);
                    model.remove(&ch, &mut expected);
                }
                _ => {
                    c.queue_get_num_connections();
                    status(&mut expected, NOT_SUPPORTED);
                }
            }
        }
        // All of it in one write, then all the replies.
        c.flush();
        let got = c.read_exact(expected.len());
        if got != expected {
            let at = got
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "round {round}: replies differ at byte {at} of {}: got {:?}, expected {:?}",
                expected.len(),
                &got[at..(at + 32).min(got.len())],
                &expected[at..(at + 32).min(expected.len())]
            );
        }
        expected.clear();
    }
    assert!(counts.iter().all(|&n| n > 100), "request mix {counts:?}");
    // Nothing extra was sent, and the connection is still in sync.
    c.sync();
}

/// Streams inside a pipeline: requests before a Produce are answered before its
/// status, and requests after its end marker are answered after it.
#[test]
fn streams_in_the_middle_of_a_pipeline() {
    let node = Node::start(&[]);
    let names = names_on_each_shard("mixed", 1);
    let (a, b) = (names[0].as_bytes(), names[1].as_bytes());
    let mut c = node.client();
    let mut expected = Vec::new();
    c.queue_push(a, "a1");
    c.queue_push(b, "b1");
    status(&mut expected, OK);
    status(&mut expected, OK);
    // Produce to b: two records.
    c.queue_request(dmq_proto::legacy::Request::Produce { channel: b });
    status(&mut expected, OK);
    let mut stream = Vec::new();
    encode_array(&mut stream, b"b2");
    encode_array(&mut stream, b"b3");
    encode_array(&mut stream, b"");
    c.queue(&stream);
    c.queue_pop(a);
    c.queue_pop(b);
    status(&mut expected, OK);
    encode_array(&mut expected, b"a1");
    status(&mut expected, OK);
    encode_array(&mut expected, b"b1");
    // ProduceMulti to both: one record each.
    let mut list = 11i32.to_le_bytes().to_vec();
    dmq_proto::legacy::encode_channel_list(&mut list, [a, b]);
    c.queue(&list);
    status(&mut expected, OK);
    let mut stream = Vec::new();
    encode_array(&mut stream, b"ab4");
    encode_array(&mut stream, b"");
    c.queue(&stream);
    for ch in [b, b, b, a, a] {
        c.queue_pop(ch);
    }
    c.queue_get_num_connections();
    for value in [&b"b2"[..], b"b3", b"ab4", b"ab4", b""] {
        status(&mut expected, OK);
        encode_array(&mut expected, value);
    }
    status(&mut expected, NOT_SUPPORTED);
    c.flush();
    assert_eq!(c.read_exact(expected.len()), expected);
    c.sync();
}
