//! The load harness's crate tests, one module per property: its command line,
//! the echo target, real `dmqnode` processes that dmq-testkit starts, and
//! (when asked) Redis; one test binary for all of them.

mod support;

mod command_line;
mod echo_target;
mod node_push_pop;
mod node_streams;
mod redis_target;
