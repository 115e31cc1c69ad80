//! The HTTP server's connection loop: the router on hyper's HTTP/1 connections, each given
//! [`HEADER_READ`] to send a request's head and as long again between pieces of its body,
//! and a graceful stop bounded by a grace period.
//! Written out rather than `axum::serve`, which sets no timer: a client that opened a
//! connection and never finished its headers held it for as long as it liked.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

/// How long a client may take to send a request's line and headers (and, on a kept-alive
/// connection, to begin the next request); and, once its body has begun, how long it may
/// send nothing of it (a slow upload goes on as long as it keeps sending).
pub const HEADER_READ: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `stop` resolves; then lets requests in flight finish
/// for up to `grace`, and closes what is still open.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: impl Future<Output = ()>,
    header_read: Duration,
    grace: Duration,
) {
    let mut make = router.into_make_service_with_connect_info::<SocketAddr>();
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_read);
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "a connection could not be accepted");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(service) = make.call(addr).await;
        // A body that stops coming fails its reading after `header_read` of silence: the
        // handler answers (400) and the connection is let go, instead of waiting for ever.
        let service = TowerToHyperService::new(service.map_request(move |r: Request<Incoming>| {
            r.map(|body| axum::body::Body::new(tower_http::timeout::TimeoutBody::new(header_read, body)))
        }));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %addr, "connection ended");
            }
        });
    }
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(?grace, "connections still open at shutdown were closed");
    }
}
