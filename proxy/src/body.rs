//! The response body type every handler and layer speaks, and its constructors.

use bytes::Bytes;
use futures::TryStreamExt;
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A zip streamed from storage: chunks go to the socket as they arrive, so memory stays bounded.
pub fn stream(zip: ferry_storage::ZipStream) -> Body {
    let frames = zip
        .stream
        .map_ok(Frame::data)
        .map_err(std::io::Error::other);
    StreamBody::new(frames).boxed_unsync()
}
