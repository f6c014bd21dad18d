//! Air-gapped networks (issue 22, item 5): `ferry mirror` fills a store with a project's whole module graph
//! through the normal, verified fill path; `ferry export` writes what a store holds into one bundle with
//! the checksum database's records and the tiles that prove them against one signed tree note; `ferry
//! import` checks every version of a bundle against those proofs and the database's public key before it
//! stores anything. See `docs/restricted-networks.md`, "Air-gapped networks".
//!
//! Checksum-database data is kept in the store's records (`ferry_storage::Records`, under `.ferry/`):
//! `sumdb/NAME/lookup/MODULE@VERSION` (escaped), `sumdb/NAME/tile/H/L/N[.p/W]` and `sumdb/NAME/latest`.

mod bundle;
pub mod cli;
pub mod export;
pub mod import;
pub mod mirror;
mod sumdb_data;

pub use export::{ExportRequest, ExportSummary, export};
pub use import::{ImportRequest, ImportSummary, import};
pub use mirror::{MirrorRequest, MirrorSummary, mirror};

/// Why an air-gap command failed: a message naming the module version and what failed (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AirgapError(pub String);

impl AirgapError {
    fn new(message: impl Into<String>) -> AirgapError {
        AirgapError(message.into())
    }
}

/// `module@version` parsed, as the store names it.
fn module_version(
    text: &str,
) -> Result<(ferry_module::ModulePath, ferry_module::Version), AirgapError> {
    let (module, version) = text
        .rsplit_once('@')
        .ok_or_else(|| AirgapError::new(format!("{text:?} is not MODULE@VERSION")))?;
    let module = ferry_module::ModulePath::new(module)
        .map_err(|e| AirgapError::new(format!("{text}: {e}")))?;
    let version = ferry_module::Version::new(version)
        .map_err(|e| AirgapError::new(format!("{text}: {e}")))?;
    Ok((module, version))
}
