//! The one `tower` plumbing every layer shares: a layer is a [`Hook`], code that runs before the request
//! goes in (it may change the request, or answer it itself) and after the response comes out (it may change
//! the response, e.g. watch its body). [`HookLayer`] turns a hook into a `tower::Layer`.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::ResponseFuture;
use crate::body::Body;

/// What a layer does around a request.
pub trait Hook: Clone + Send + Sync + 'static {
    /// What `before` hands to `after` (dropped unused when the client leaves first).
    type State: Send + 'static;

    /// Runs before the inner service: returns the state for `after`, and a response when this hook answers
    /// the request itself (the inner service is then not called).
    fn before<B>(&self, request: &mut Request<B>) -> (Self::State, Option<Response<Body>>);

    /// Runs on the response, whoever made it.
    fn after(&self, state: Self::State, response: Response<Body>) -> Response<Body>;
}

/// A [`Hook`] as a `tower::Layer`.
#[derive(Debug, Clone)]
pub struct HookLayer<H>(pub H);

impl<S, H: Clone> Layer<S> for HookLayer<H> {
    type Service = Hooked<S, H>;

    fn layer(&self, inner: S) -> Hooked<S, H> {
        Hooked {
            inner,
            hook: self.0.clone(),
        }
    }
}

/// The service a [`HookLayer`] makes.
#[derive(Debug, Clone)]
pub struct Hooked<S, H> {
    inner: S,
    hook: H,
}

impl<S, H, B> Service<Request<B>> for Hooked<S, H>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    H: Hook,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let (state, answered) = self.hook.before(&mut request);
        let inner = answered.is_none().then(|| self.inner.call(request));
        let hook = self.hook.clone();
        Box::pin(async move {
            let response = match (answered, inner) {
                (Some(response), _) => response,
                (None, Some(inner)) => inner.await?,
                (None, None) => {
                    unreachable!("the inner service is called when the hook does not answer")
                }
            };
            Ok(hook.after(state, response))
        })
    }
}
