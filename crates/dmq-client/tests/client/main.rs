//! The client's crate tests, one module per property, against real `dmqnode`
//! processes that dmq-testkit starts (and fake nodes of the tests' own).
//!
//! One test binary for all of them, as in the node's suite: the kit, the
//! client and glommio are linked once.

mod support;

mod blocking_facade;
mod consume_exactly_once;
mod failover_on_kill;
mod fake_node_statuses;
mod glommio_runtime;
mod push_spreads_over_nodes;
mod restart_rejoins;
