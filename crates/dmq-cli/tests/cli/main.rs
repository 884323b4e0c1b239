//! The `dmq` tool's crate tests, one module per property, running the built
//! binary against real `dmqnode` processes that dmq-testkit starts; one test
//! binary for all of them.

mod support;

mod admin_commands;
mod bad_arguments;
mod produce_consume_lines;
mod push_pop_round_trip;
mod unreachable_node;
