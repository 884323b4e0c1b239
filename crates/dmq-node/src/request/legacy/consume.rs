//! Consume (6): subscribes as the default subscriber `""` and streams that
//! storage's records to the client until the channel is removed (then the end
//! marker, and the connection takes commands again) or the client goes away.
//!
//! Records are popped on the owner shard in batches of up to [`POLL_BYTES`] and
//! written as soon as they arrive, so output never waits longer than
//! `write_flush_ms`. At most one batch is in flight per consumer: a client that
//! reads slowly leaves records in the queue, not in the node's buffers.

use dmq_proto::legacy::{encode_status, encode_stream_end, Status};
use futures_lite::future;

use crate::context::ShardContext;
use crate::legacy::connection::{ConnError, Connection};
use crate::metrics::probes::{Outcome, Protocol, RequestKind};
use crate::request::channel_name;
use crate::route::ShardGone;
use crate::shard::PollResult;

/// Most bytes of records popped for one write.
pub const POLL_BYTES: usize = 256 * 1024;

enum Event {
    Polled(Result<PollResult, ShardGone>),
    Input(std::io::Result<usize>),
    Shutdown,
}

/// Runs the Consume. `Ok(true)`: the stream ended with the end marker and the
/// connection goes on; `Ok(false)`: close the connection.
pub async fn run(conn: &mut Connection, channel: Vec<u8>) -> Result<bool, ConnError> {
    let Some(name) = channel_name(&channel) else {
        conn.ctx
            .probes()
            .request_done(Protocol::Legacy, RequestKind::Consume, Outcome::S409, None);
        encode_status(conn.out(), Status::BadChannelName);
        conn.flush().await?;
        return Ok(true);
    };
    let ctx = conn.ctx.clone();
    let router = &ctx.router;
    let owner = router.owner(&channel);
    let consumer = router.consume_start(owner, name, "").await?;
    encode_status(conn.out(), Status::Ok);
    {
        let probes = ctx.probes();
        probes.request_done(Protocol::Legacy, RequestKind::Consume, Outcome::S200, None);
        probes.request_started(Protocol::Legacy, RequestKind::Consume);
    }
    let _active = Active(&ctx);
    conn.flush().await?;

    loop {
        let mut poll = std::pin::pin!(router.poll(owner, consumer, POLL_BYTES));
        let event = loop {
            let input = async {
                if conn.input.has_idle_room() {
                    Event::Input(conn.input.read_from(&mut conn.stream, 0).await)
                } else {
                    future::pending().await
                }
            };
            let event = future::or(async { Event::Polled(poll.as_mut().await) }, async {
                future::or(input, async {
                    ctx.shutdown().wait().await;
                    Event::Shutdown
                })
                .await
            })
            .await;
            match event {
                // Bytes from a client that is not supposed to talk during a
                // Consume: kept for after the stream, keep waiting.
                Event::Input(Ok(n)) if n > 0 => {
                    ctx.probes().received(Protocol::Legacy, n);
                    continue;
                }
                Event::Shutdown => {
                    // Stop the consumer, then take what a poll already popped.
                    router.consume_stop(owner, consumer).await?;
                    break Event::Polled(poll.as_mut().await);
                }
                other => break other,
            }
        };
        match event {
            Event::Polled(Ok(PollResult::Records { buf, .. })) => {
                conn.out().extend_from_slice(&buf);
                conn.flush().await?;
                if ctx.shutdown().is_triggered() {
                    return Ok(false);
                }
            }
            Event::Polled(Ok(PollResult::Finished)) => {
                encode_stream_end(conn.out());
                conn.flush().await?;
                return Ok(true);
            }
            Event::Polled(Err(gone)) => {
                if ctx.shutdown().is_triggered() {
                    return Ok(false);
                }
                return Err(gone.into());
            }
            Event::Input(result) => {
                // The client closed the connection (or it broke): unregister.
                router.consume_stop(owner, consumer).await?;
                result?;
                return Ok(false);
            }
            Event::Shutdown => return Ok(false),
        }
    }
}

/// Counts the Consume as running for as long as it lives.
struct Active<'a>(&'a ShardContext);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0
            .probes()
            .request_ended(Protocol::Legacy, RequestKind::Consume);
    }
}
