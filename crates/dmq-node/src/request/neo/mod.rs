//! Neo request handlers: Push and Pop answer inline for this shard's channels
//! and through [`crate::neo`]'s batch for others; Consume runs as a task.

pub mod consume;
pub mod pop;
pub mod push;
