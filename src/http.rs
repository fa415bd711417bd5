//! The one way igmod serves HTTP (the webhook receiver, `/metrics`, `/healthz`, `/readyz`):
//! hyper's HTTP/1 connection driven directly, with a timer, so that a stranger cannot hold the
//! process's sockets or file descriptors. `axum::serve` gives hyper no timer, so none of its
//! timeouts run there: a half-sent request waited forever.
//!
//! - a request's head must arrive within [`HEADER_TIMEOUT`]; hyper starts that clock as soon
//!   as a connection waits for a head, so it is also the keep-alive idle timeout;
//! - a body must arrive within [`BODY_TIMEOUT`] of its head (the handler that reads it keeps
//!   that deadline: only the webhook receiver reads bodies);
//! - at most [`connection_cap`] connections are open per server; at the cap the oldest
//!   connection not in a request (idle, or its head still arriving) is closed to make room,
//!   and when all are in a request new ones wait in the kernel's backlog (holding none of our
//!   descriptors) until one ends, which the timeouts above bound to seconds. One log line when
//!   the cap is reached (at most one a minute); `igmod_http_refused_total{reason="connection_cap"}`
//!   counts each time;
//! - [`raise_open_files`] lifts the soft `RLIMIT_NOFILE` to the hard one at start.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How long a request's head (and a kept-alive connection's next one) may take to arrive.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's body may take to arrive after its head.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper's read buffer per connection: a request head larger than this is refused (431), so a
/// thousand half-sent heads hold at most 16 MiB.
const READ_BUFFER: usize = 16 * 1024;
/// Connections a server keeps open at most, whatever the descriptors allow.
const CONNECTIONS_MAX: usize = 4096;
/// Descriptors kept for everything else (database files, Graph API connections, token files,
/// logs): a flood of connections never takes them.
const FD_RESERVE: u64 = 256;
/// How long open connections get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// At most one log line per this long about the connection cap or accept errors.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (systemd's default soft limit is 1,024,
/// and a few hundred idle connections would take the descriptors the token files and the
/// database need). A refusal (the shipped unit's `SystemCallFilter=~@resources` answers
/// EPERM) is logged at debug: the unit's `LimitNOFILE=` sets both limits itself. Returns the
/// soft limit in force.
pub fn raise_open_files() -> u64 {
    let Ok((soft, hard)) = rlimit::Resource::NOFILE.get() else {
        return 1024;
    };
    if soft >= hard {
        return soft;
    }
    match rlimit::Resource::NOFILE.set(hard, hard) {
        Ok(()) => {
            tracing::debug!(message = "open files limit raised", from = soft, to = hard);
            hard
        }
        Err(e) => {
            tracing::debug!(message = "open files limit not raised", soft, hard, error = %e);
            soft
        }
    }
}

/// Connections each of the (at most two) servers may hold open with `open_files` descriptors:
/// half of what the reserve leaves, at most [`CONNECTIONS_MAX`], at least 16.
pub fn connection_cap(open_files: u64) -> usize {
    let per_server = open_files.saturating_sub(FD_RESERVE) / 2;
    usize::try_from(per_server)
        .unwrap_or(usize::MAX)
        .clamp(16, CONNECTIONS_MAX)
}

/// Serves `router` on `listener` until `cancel`, with at most `cap` connections open; `name`
/// (`webhook`, `metrics`) labels its refusals. At the cap, the oldest connection that is not
/// in a request (idle, or its head still on the way) is closed to make room: a flood of
/// half-sent requests then costs the flood, not `/healthz` or Meta's next delivery. When every
/// connection is in a request (each bounded by the timeouts), new ones wait in the backlog.
/// At shutdown, open connections finish their request (up to [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    name: &'static str,
    cap: usize,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(cap));
    let open = Arc::new(Open::default());
    let capped = Throttled::default();
    let accept_errors = Throttled::default();
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                crate::metrics::get().http_refused(name, "connection_cap");
                let evicted = open.evict_oldest_idle();
                if let Some(times) = capped.due() {
                    tracing::warn!(
                        message = "connection cap reached: the oldest idle connections are closed to make room, or new ones wait (at most one such line a minute)",
                        server = name,
                        cap,
                        times,
                        evicted
                    );
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                }
            }
        };
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or a connection reset before it was
                // taken: neither ends the server. A short pause lets descriptors come back.
                if let Some(times) = accept_errors.due() {
                    tracing::warn!(message = "cannot accept a connection (at most one such line a minute)", server = name, times, error = %e);
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        // Answers are small: send them at once.
        let (stream, peer) = stream;
        let _ = stream.set_nodelay(true);
        let (id, conn_state) = open.add();
        let service = Service {
            router: router.clone(),
            state: conn_state.clone(),
            peer,
        };
        let (cancel, open) = (cancel.clone(), open.clone());
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .max_buf_size(READ_BUFFER);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                // Closed to make room: dropping the connection closes its socket.
                _ = conn_state.evict.notified() => Ok(()),
                _ = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut())
                        .await
                        .unwrap_or(Ok(()))
                }
            };
            if let Err(e) = result
                && e.is_timeout()
            {
                crate::metrics::get().http_refused(name, "header_timeout");
            }
            open.remove(id);
            drop(slot);
        });
    }
    // Every slot back: every connection closed (bounded by the grace each one has).
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(
        SHUTDOWN_GRACE + Duration::from_secs(1),
        slots.acquire_many(all),
    )
    .await;
    Ok(())
}

/// One open connection, as the accept loop sees it.
#[derive(Default)]
struct ConnState {
    /// Requests being answered on it now (0: idle, or a head still arriving).
    in_request: AtomicU64,
    /// Closes it (to make room at the cap).
    evict: tokio::sync::Notify,
}

/// A server's open connections, oldest first (ids grow).
#[derive(Default)]
struct Open {
    next: AtomicU64,
    conns: std::sync::Mutex<std::collections::BTreeMap<u64, Arc<ConnState>>>,
}

impl Open {
    fn add(&self) -> (u64, Arc<ConnState>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::default());
        if let Ok(mut conns) = self.conns.lock() {
            conns.insert(id, state.clone());
        }
        (id, state)
    }

    fn remove(&self, id: u64) {
        if let Ok(mut conns) = self.conns.lock() {
            conns.remove(&id);
        }
    }

    /// Closes the oldest connection not in a request; whether there was one.
    fn evict_oldest_idle(&self) -> bool {
        let Ok(mut conns) = self.conns.lock() else {
            return false;
        };
        let oldest = conns
            .iter()
            .find(|(_, c)| c.in_request.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        match oldest.and_then(|id| conns.remove(&id)) {
            Some(conn) => {
                // A stored permit: the task may not be waiting on it yet.
                conn.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// The router, counting the requests in progress on its connection.
#[derive(Clone)]
struct Service {
    router: axum::Router,
    state: Arc<ConnState>,
    /// The client's address, given to handlers as `ConnectInfo` (the review queue slows
    /// down failed logins per client).
    peer: std::net::SocketAddr,
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Service {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn call(&self, mut req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        let guard = InRequest::new(self.state.clone());
        // axum's router is always ready: no `poll_ready` needed.
        let answer = tower_service::Service::call(&mut self.router.clone(), req);
        Box::pin(async move {
            let answer = answer.await;
            drop(guard);
            answer
        })
    }
}

/// Marks its connection as in a request while it lives (also when the request is dropped).
struct InRequest(Arc<ConnState>);

impl InRequest {
    fn new(state: Arc<ConnState>) -> InRequest {
        state.in_request.fetch_add(1, Ordering::AcqRel);
        InRequest(state)
    }
}

impl Drop for InRequest {
    fn drop(&mut self) {
        self.0.in_request.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts events and says when one may be logged: the first, then at most one per
/// [`LOG_EVERY`], with how many there were since the last line.
#[derive(Default)]
struct Throttled {
    since_line: AtomicU64,
    last_line: std::sync::Mutex<Option<Instant>>,
}

impl Throttled {
    fn due(&self) -> Option<u64> {
        let n = self
            .since_line
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let mut last = self.last_line.lock().ok()?;
        if last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            return None;
        }
        *last = Some(Instant::now());
        self.since_line.store(0, Ordering::Relaxed);
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_descriptors_for_the_rest_and_stays_in_bounds() {
        for (open_files, cap) in [
            (0, 16),
            (256, 16),
            (1024, 384),
            (65_536, 4096),
            (u64::MAX, 4096),
        ] {
            assert_eq!(connection_cap(open_files), cap, "{open_files}");
        }
    }

    #[test]
    fn a_flood_of_events_is_logged_once() {
        let t = Throttled::default();
        assert_eq!(t.due(), Some(1));
        assert!((0..1000).all(|_| t.due().is_none()));
    }
}
