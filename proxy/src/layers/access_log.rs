//! The access log: one line per request, written when its response body is finished (or dropped because
//! the client went away), so the byte count is what was really sent. It names the client's address (the
//! request's [`Client`]: a trusted proxy's forwarded address, else the peer's) and, when authentication let
//! the request in, the user (the [`Identity`] on the response: this layer is outside authentication, so
//! refused requests are logged too).

use std::time::Instant;

use http::{Request, Response};

use super::auth::{Identity, ShowIdentity};
use super::client::Client;
use super::hook::Hook;
use crate::body::{self, Body};
use crate::request::Route;

/// Logs every request on the `ferry::access` target.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLog;

/// What the access log says about a request.
pub struct Entry {
    id: String,
    method: http::Method,
    path: String,
    /// The endpoint kind of the request's route, as the metrics label it.
    endpoint: &'static str,
    /// The client's address (none for a request from outside the server).
    client: Option<std::net::IpAddr>,
    started: Instant,
}

impl Hook for AccessLog {
    /// None when the log is off (`FERRY_LOG=...,ferry::access=off`): nothing is copied from the request nor
    /// counted (three small allocations and a body wrapper a request, in a profile of `.mod` requests under
    /// `benches/load.sh`, which runs with the access log off as its nginx does).
    type State = Option<Entry>;

    fn before<B>(&self, request: &mut Request<B>) -> (Option<Entry>, Option<Response<Body>>) {
        if !tracing::enabled!(target: "ferry::access", tracing::Level::INFO) {
            return (None, None);
        }
        // The user is on the response only when asked for.
        request.extensions_mut().insert(ShowIdentity);
        let entry = Entry {
            id: request
                .headers()
                .get(&super::request_id::X_REQUEST_ID)
                .and_then(|id| id.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            method: request.method().clone(),
            // Hostile paths can be long: the log keeps their start.
            path: super::clipped(request.uri().path(), 256).to_string(),
            endpoint: Route::on(request).map_or("other", Route::kind),
            client: request
                .extensions()
                .get::<Client>()
                .map(|client| client.address),
            started: Instant::now(),
        };
        (Some(entry), None)
    }

    fn after(&self, entry: Option<Entry>, response: Response<Body>) -> Response<Body> {
        let Some(entry) = entry else {
            return response;
        };
        let status = response.status();
        let user = response
            .extensions()
            .get::<Identity>()
            .map(|identity| identity.user.clone());
        response.map(|body| body::on_done(body, move |bytes| entry.log(status, user, bytes)))
    }
}

impl Entry {
    /// Writes the line, with the bytes really sent. The id, the path and the user are the client's words:
    /// they go in as strings, which the text log writes quoted and escaped (`request_id="x\"status=500"`)
    /// and the JSON log as JSON strings, so none can forge a field. The method is a token (no quote, space
    /// nor `=`), the client an address. No user (authentication off, or not passed): no `user` field.
    fn log(self, status: http::StatusCode, user: Option<std::sync::Arc<str>>, bytes: u64) {
        tracing::info!(
            target: "ferry::access",
            request_id = self.id.as_str(),
            client = self.client.map(tracing::field::display),
            user = user.as_deref().map(|user| super::clipped(user, 128)),
            method = %self.method,
            path = self.path.as_str(),
            endpoint = self.endpoint,
            status = status.as_u16(),
            bytes,
            duration_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
}
