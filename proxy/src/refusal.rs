//! Why a request was refused before any handler ran: a leaf, read by the router (`request.rs`), the
//! checksum database paths (`sumdb.rs`) and the one place answers are made (`answer.rs`).

/// Why a request was refused: `BadRequest` is a 400 and `NotFound` a 404, each with a plain-text reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    BadRequest(String),
    NotFound(String),
}

impl Refusal {
    /// The 404 of a path that is no endpoint this listener answers; `path` without its leading `/`.
    pub fn not_an_endpoint(path: &str) -> Refusal {
        Refusal::NotFound(format!(
            "{path}: not a module proxy endpoint (want /MODULE/@v/list, /MODULE/@v/VERSION.info|.mod|.zip or /MODULE/@latest)"
        ))
    }
}
