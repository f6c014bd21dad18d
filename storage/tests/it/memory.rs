//! The conformance suite on the memory backend (`memory://`).
use std::sync::Arc;

use ferry_storage::{ModuleStore, StorageConfig};

async fn store() -> Arc<dyn ModuleStore> {
    StorageConfig::from_url("memory://")
        .unwrap()
        .open()
        .unwrap()
}

// The memory backend holds every object whole by nature, so the streaming test does not apply.
conformance_suite!(store(), large_zip: false);
