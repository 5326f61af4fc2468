//! The loop that serves the axum router (`http::router`) on the webhook address: a connection
//! cap, a header read timeout (also the keep-alive idle timeout), a whole-request timeout, and a
//! stop with a deadline, so no client — slow, idle or hostile — can hold the relay open.
//!
//! hyper's HTTP/1 connection builder runs each connection with tokio's timer (axum's `serve`
//! gives hyper no timer, so none of its timeouts apply there). Only HTTP/1.1 is served: the
//! callers are webhooks and a metrics scraper, and hyper-util's protocol detection reads the
//! first bytes before any header timeout starts.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::http::state::Problem;

/// Time a client has to send a request's headers, from the moment the server waits for them:
/// right after the connection is accepted, and after each answer on a kept-alive connection,
/// so it is also the idle timeout. CamionBack and Meta send a webhook's headers (well under
/// 2 KiB) in one packet; 10 s covers a very slow link and frees a connection that trickles its
/// headers (hyper's own default is 30 s).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Time from the end of the headers to the end of the answer: the whole body must arrive and
/// the handler finish within it, else `408 request_timeout`. The bodies are at most 64 KiB
/// (orders) and 1 MiB (Meta's status batches); the handler may wait the database's 10 s busy
/// timeout, and that case must end as the handler's own `503 storage_unavailable`, so 15 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Connections served at once; one more is answered `503` and closed at once. The clients are
/// CamionBack's webhook sender, Meta's status webhooks and a scraper, a handful at a time: 256
/// is far above that and keeps the relay's descriptors well under Linux's default limit of
/// 1,024 (the database, the WhatsApp socket and the API clients need a few dozen).
pub const MAX_CONNECTIONS: usize = 256;

/// After a stop is asked, a request being handled gets this long to finish (a webhook takes
/// milliseconds); connections still open then are dropped. Connections with no request in
/// flight (idle, or still sending headers) are closed at once.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// hyper's read buffer per connection (its default is ~400 KiB, its least 8 KiB): headers
/// longer than this are refused with 431, and 256 connections hold 16 MiB at most.
const MAX_BUF_BYTES: usize = 64 * 1024;

/// How long the accept loop waits after an error such as "too many open files" before
/// accepting again (hyper's and axum's choice): retrying at once would spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The server's limits; the defaults are the constants above. Not settings: the values follow
/// from the callers, and tests shorten them.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }
}

/// What `/metrics` shows of the server since the engine started (kept in memory: they say
/// how the server is being used now, not what the history holds).
#[derive(Debug, Default)]
pub struct ServerStats {
    open: AtomicUsize,
    refused: AtomicU64,
    header_timeouts: AtomicU64,
    request_timeouts: AtomicU64,
}

impl ServerStats {
    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections refused because `max_connections` were open.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Connections closed because their headers did not come in time (or, kept alive, no
    /// next request came).
    pub fn header_timeouts(&self) -> u64 {
        self.header_timeouts.load(Ordering::Relaxed)
    }

    /// Requests answered 408 because their body or handling took too long.
    pub fn request_timeouts(&self) -> u64 {
        self.request_timeouts.load(Ordering::Relaxed)
    }
}

/// Serves `router` on `listener` until `cancel`, then stops within `limits.shutdown_grace`.
pub async fn run_until_stopped(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    stats: Arc<ServerStats>,
    cancel: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF_BYTES);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            // Reaps finished connections, so the set only holds open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        connections.spawn(serve_connection(Connection {
                            stream,
                            http: http.clone(),
                            router: router.clone(),
                            request_timeout: limits.request_timeout,
                            stats: stats.clone(),
                            cancel: cancel.clone(),
                            _permit: permit,
                        }));
                    }
                    Err(_) => refuse(stream, &stats, limits.max_connections),
                },
                Err(err) if is_connection_error(&err) => {}
                Err(err) => {
                    tracing::error!(
                        "serveur HTTP : connexion entrante impossible à accepter ({err}) — nouvel essai dans {} s",
                        ACCEPT_ERROR_PAUSE.as_secs()
                    );
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                    }
                }
            },
        }
    }
    // No new connection from here: the port is free again for the next engine.
    drop(listener);
    let deadline = tokio::time::sleep(limits.shutdown_grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            joined = connections.join_next() => {
                if joined.is_none() {
                    return;
                }
            }
            _ = &mut deadline => {
                tracing::warn!(
                    "serveur HTTP : {} connexion(s) encore ouverte(s) {} s après la demande d'arrêt, fermée(s)",
                    connections.len(),
                    limits.shutdown_grace.as_secs_f64()
                );
                connections.shutdown().await;
                return;
            }
        }
    }
}

/// One accepted connection and what serving it needs.
struct Connection {
    stream: TcpStream,
    http: http1::Builder,
    router: Router,
    request_timeout: Duration,
    stats: Arc<ServerStats>,
    cancel: CancellationToken,
    /// Released when the connection ends, whichever way.
    _permit: OwnedSemaphorePermit,
}

async fn serve_connection(connection: Connection) {
    let Connection {
        stream,
        http,
        router,
        request_timeout,
        stats,
        cancel,
        _permit,
    } = connection;
    let _open = OpenConnection::new(stats.clone());
    let in_flight = Arc::new(AtomicUsize::new(0));
    let service = {
        let in_flight = in_flight.clone();
        let stats = stats.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            // Counted as soon as hyper hands the request over, before any await.
            let guard = InFlight::enter(&in_flight);
            handle(
                request,
                router.clone(),
                request_timeout,
                stats.clone(),
                guard,
            )
        })
    };
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let served = tokio::select! {
        served = conn.as_mut() => served,
        _ = cancel.cancelled() => {
            if in_flight.load(Ordering::SeqCst) == 0 {
                // Idle, or headers not complete: no request was started, nothing to finish.
                return;
            }
            // Finishes the answer in flight, then closes (bounded by the server's deadline).
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = served {
        if err.is_timeout() {
            stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("serveur HTTP : connexion fermée, en-têtes non reçus à temps");
        } else {
            tracing::debug!("serveur HTTP : connexion terminée sur une erreur : {err}");
        }
    }
}

async fn handle(
    request: Request<Incoming>,
    router: Router,
    request_timeout: Duration,
    stats: Arc<ServerStats>,
    guard: InFlight,
) -> Result<Response<Body>, Infallible> {
    let response = match tokio::time::timeout(request_timeout, router.oneshot(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => {
            stats.request_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "serveur HTTP : requête abandonnée, corps ou traitement non terminé après {} s",
                request_timeout.as_secs_f64()
            );
            // The handler's future is dropped: what it stores is one transaction, written
            // whole or not at all, and the sender retries a webhook it got no 2xx for.
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "requête incomplète après {} s : le corps doit arriver en entier dans ce délai",
                    request_timeout.as_secs_f64()
                ),
            )
            .into_response()
        }
    };
    // The request stays "in flight" until its answer is written out.
    Ok(response.map(|body| {
        Body::new(GuardedBody {
            body,
            _guard: guard,
        })
    }))
}

/// Answers a connection over the cap without reading from it: a best-effort `503` written
/// only if the socket takes it at once, then closed.
fn refuse(stream: TcpStream, stats: &ServerStats, max: usize) {
    let refused = stats.refused.fetch_add(1, Ordering::Relaxed) + 1;
    // Logged at the first refusal and then every 1,000th, so a flood cannot fill the logs.
    if refused == 1 || refused.is_multiple_of(1000) {
        tracing::warn!(
            "serveur HTTP : {max} connexions déjà ouvertes, connexion refusée ({refused} depuis le démarrage)"
        );
    }
    let body = format!(
        r#"{{"error":{{"code":"too_many_connections","message":"serveur saturé ({max} connexions ouvertes), réessayez"}}}}"#
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

/// A reset or aborted handshake is the client's business, not the server's.
fn is_connection_error(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Keeps `ServerStats::open` right however the connection task ends (even aborted).
struct OpenConnection(Arc<ServerStats>);

impl OpenConnection {
    fn new(stats: Arc<ServerStats>) -> Self {
        stats.open.fetch_add(1, Ordering::Relaxed);
        Self(stats)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One request of a connection, from the end of its headers to the end of its answer.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An answer's body that keeps its request counted as in flight until it is fully written.
struct GuardedBody {
    body: Body,
    _guard: InFlight,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
