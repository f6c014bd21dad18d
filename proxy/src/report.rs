//! How an error is written to the log: a leaf, used by the answers, the filler and the checksum
//! database relay alike.

/// An error and its `source()` chain on one line, `a: b: c`, for the log.
pub(crate) struct Report<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut printed = self.0.to_string();
        let mut source = self.0.source();
        while let Some(error) = source {
            // A cause already in the message (`#[error("{context}: {source}")]`, or object_store's errors,
            // each of which repeats the one under it) is not repeated.
            let text = error.to_string();
            if !printed.contains(&text) {
                printed.push_str(": ");
                printed.push_str(&text);
            }
            source = error.source();
        }
        f.write_str(&printed)
    }
}
