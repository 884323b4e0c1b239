//! The Prometheus endpoint: `GET /metrics` on `metrics.address`, served by
//! shard 0. One short-lived task per scrape connection; a request must arrive
//! whole (at most 8 KiB) within 5 s, so a slow or hostile client holds one
//! small buffer for a bounded time and never stalls the shard.

use std::os::fd::{IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use glommio::net::{TcpListener, TcpStream};

use crate::context::ShardContext;
use crate::metrics::{exposition, gather};

const MAX_REQUEST_BYTES: usize = 8 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes served at once; more wait in the listen backlog.
const MAX_CONCURRENT_SCRAPES: usize = 16;

/// Accepts scrape connections until shutdown.
pub async fn serve(fd: OwnedFd, ctx: Rc<ShardContext>) {
    // SAFETY: `fd` is a bound, listening TCP socket that we own; ownership moves
    // into the glommio listener, which closes it when dropped.
    let listener =
        unsafe { <TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd.into_raw_fd()) };
    let slots = Rc::new(glommio::sync::Semaphore::new(MAX_CONCURRENT_SCRAPES as u64));
    loop {
        let accepted = async { Some(listener.accept().await) }
            .or(async {
                ctx.shutdown().wait().await;
                None
            })
            .await;
        match accepted {
            None => return,
            Some(Ok(stream)) => {
                let Ok(permit) = slots.clone().acquire_static_permit(1).await else {
                    return;
                };
                let ctx = ctx.clone();
                glommio::spawn_local(async move {
                    let _permit = permit;
                    let served = serve_one(stream, &ctx)
                        .or(async {
                            glommio::timer::sleep(REQUEST_TIMEOUT * 2).await;
                            Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
                        })
                        .await;
                    if let Err(e) = served {
                        tracing::debug!("metrics connection: {e}");
                    }
                })
                .detach();
            }
            Some(Err(e)) => {
                tracing::warn!("metrics endpoint: accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Reads one request, answers it, closes.
async fn serve_one(mut stream: TcpStream, ctx: &ShardContext) -> std::io::Result<()> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let mut buf = vec![0u8; MAX_REQUEST_BYTES];
    let mut len = 0;
    let (status, body) = loop {
        if len == buf.len() {
            break (431, "request too large\n".to_owned());
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf[..len]) {
            Ok(httparse::Status::Partial) => continue,
            Err(e) => break (400, format!("bad request: {e}\n")),
            Ok(httparse::Status::Complete(_)) => {
                let path = request.path.unwrap_or("");
                let path = path.split('?').next().unwrap_or("");
                break match (request.method, path) {
                    (Some("GET"), "/metrics") => match gather(ctx, false).await {
                        Ok(shards) => (200, exposition::render(&ctx.node, &shards)),
                        Err(e) => (503, format!("{e}\n")),
                    },
                    (Some("GET"), _) => (404, "not found; try /metrics\n".to_owned()),
                    _ => (405, "only GET is served\n".to_owned()),
                };
            }
        }
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let content_type = if status == 200 {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.close().await
}
