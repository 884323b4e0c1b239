//! The node's crate tests, one module per property, each over real TCP to
//! `dmqnode` processes that dmq-testkit starts (its Layout names the helpers).
//!
//! One test binary for all of them rather than one per file: the kit and the
//! node's library are linked once instead of 44 times, which builds the
//! test targets several times faster (and one process never hands out a
//! port twice). Run one property with
//! `cargo test -p dmq-node --test node <module>::`.

mod support;

mod admin_socket;
mod cli;
mod connection_limit;
mod console_view;
mod consume_remove_channel;
mod garbage_isolated;
mod gen_key;
mod invalid_commands_close;
mod log_reopen;
mod many_channels_concurrent;
mod memory_limit;
mod metrics_exact_values;
mod metrics_exposition_parses;
mod metrics_slow_client;
mod migrate_config;
mod neo_auth_rejections;
mod neo_consume_batching;
mod neo_consume_channel_removed;
mod neo_handshake;
mod neo_parallel_writer_checker;
mod neo_push_pop;
mod neo_request_limit;
mod neo_subscribers;
mod neo_unsupported;
mod neo_writer_checker_matrix;
mod no_arguments;
mod overflow_disk_full;
mod overflow_fifo;
mod overflow_layout;
mod overflow_model;
mod overflow_restart;
mod oversized_array_closes;
mod pipelining;
mod pop_statuses;
mod produce_stream;
mod push_multi;
mod push_pop_fifo;
mod push_statuses;
mod restart_persistence;
mod shutdown_signals;
mod startup_diagnostics;
mod stats_log;
mod subscriber_semantics;
mod writer_checker_matrix;
