//! The dmqtest WriterChecker matrix, neo half (spec 8.1): 10 000 records
//! `record(0)..record(9999)` written by each writer (legacy Push, PushMulti,
//! Produce, ProduceMulti; neo Push to one channel and to two) and then read
//! back by each neo checker (Pop; Consume started before writing; Consume
//! started after writing; Consume started before writing that holds back its
//! Continue now and then), in order per channel. 24 cases, each on its own
//! 2-shard node; two-channel writers use one channel on each shard.

use dmq_testkit::checkers::{consume_all, legacy_pop_all, pop_all, start_consumers, Ack};
use dmq_testkit::writers::{write, Writer, RECORDS};

use crate::support::start_neo_node_for;

#[derive(Debug, Clone, Copy)]
enum Checker {
    /// Neo Pop of every record, then Empty.
    Pop,
    /// A neo Consume per channel started before writing.
    PreConsume,
    /// A neo Consume per channel started after writing.
    PostConsume,
    /// As PreConsume, suspended (Continue held back) now and then.
    SuspendConsume,
}

fn run(writer: Writer, checker: Checker) {
    let (node, channels) = start_neo_node_for(writer);
    match checker {
        Checker::Pop => {
            write(&node, writer, &channels, RECORDS);
            pop_all(&mut node.neo(), &channels, RECORDS);
        }
        Checker::PreConsume | Checker::SuspendConsume => {
            let mut consumers = start_consumers(node.neo_addr(), &channels);
            write(&node, writer, &channels, RECORDS);
            let ack = match checker {
                Checker::SuspendConsume => Ack::Suspend,
                _ => Ack::AtOnce,
            };
            consume_all(&mut consumers, &channels, RECORDS, ack);
        }
        Checker::PostConsume => {
            write(&node, writer, &channels, RECORDS);
            let mut consumers = start_consumers(node.neo_addr(), &channels);
            consume_all(&mut consumers, &channels, RECORDS, Ack::AtOnce);
        }
    }
}

macro_rules! cases {
    ($($name:ident: $writer:ident / $checker:ident;)*) => {
        $(
            #[test]
            fn $name() {
                run(Writer::$writer, Checker::$checker);
            }
        )*
    };
}

cases! {
    push_neo_pop: Push / Pop;
    push_neo_pre_consume: Push / PreConsume;
    push_neo_post_consume: Push / PostConsume;
    push_neo_suspend_consume: Push / SuspendConsume;
    push_multi_neo_pop: PushMulti / Pop;
    push_multi_neo_pre_consume: PushMulti / PreConsume;
    push_multi_neo_post_consume: PushMulti / PostConsume;
    push_multi_neo_suspend_consume: PushMulti / SuspendConsume;
    produce_neo_pop: Produce / Pop;
    produce_neo_pre_consume: Produce / PreConsume;
    produce_neo_post_consume: Produce / PostConsume;
    produce_neo_suspend_consume: Produce / SuspendConsume;
    produce_multi_neo_pop: ProduceMulti / Pop;
    produce_multi_neo_pre_consume: ProduceMulti / PreConsume;
    produce_multi_neo_post_consume: ProduceMulti / PostConsume;
    produce_multi_neo_suspend_consume: ProduceMulti / SuspendConsume;
    neo_push_neo_pop: NeoPush / Pop;
    neo_push_neo_pre_consume: NeoPush / PreConsume;
    neo_push_neo_post_consume: NeoPush / PostConsume;
    neo_push_neo_suspend_consume: NeoPush / SuspendConsume;
    neo_push_multi_neo_pop: NeoPushMulti / Pop;
    neo_push_multi_neo_pre_consume: NeoPushMulti / PreConsume;
    neo_push_multi_neo_post_consume: NeoPushMulti / PostConsume;
    neo_push_multi_neo_suspend_consume: NeoPushMulti / SuspendConsume;
}

/// The neo writers also feed the legacy checkers: legacy Pop sees the neo
/// Push records in order.
#[test]
fn neo_push_multi_legacy_pop() {
    let (node, channels) = start_neo_node_for(Writer::NeoPushMulti);
    write(&node, Writer::NeoPushMulti, &channels, RECORDS);
    legacy_pop_all(&mut node.client(), &channels, RECORDS);
}
