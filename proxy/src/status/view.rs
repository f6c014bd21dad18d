//! What a page shows, gathered (`status`) before it is written out (`html`): plain values, every module
//! in them already let through the viewer's filter.

/// The page's configuration summary, made once at start-up (`summary::of`).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Setting and value, in the page's order.
    pub rows: Vec<(String, String)>,
    /// The store's backend kind (`file`, `memory`, `s3`, …).
    pub backend: String,
    /// The lease engine's kind and lease time, when replicas coordinate.
    pub coordination: Option<(String, std::time::Duration)>,
}

/// One page: where its links start, whether it is the admin listener's, and what it shows.
#[derive(Debug, Clone)]
pub struct Page {
    pub title: String,
    /// The path prefix links start with (`path_prefix`; empty at the root).
    pub base: String,
    /// Served on the admin listener: the module page offers delete and block.
    pub admin: bool,
    pub body: Body,
}

#[derive(Debug, Clone)]
pub enum Body {
    Status(Box<Status>),
    Search(Search),
    Module(Module),
}

/// The status page.
#[derive(Debug, Clone)]
pub struct Status {
    pub version: &'static str,
    /// The URL to give `GOPROXY`: this request's scheme, host and the path prefix.
    pub goproxy: String,
    pub summary: Vec<(String, String)>,
    pub store: Store,
    pub flights: Vec<Flight>,
    pub failures: Vec<Failure>,
    /// Each in-memory cache: name, hits, misses.
    pub caches: Vec<(&'static str, u64, u64)>,
    pub upstream: Upstream,
    pub sumdbs: Vec<Sumdb>,
    pub coordination: Option<Coordination>,
    pub stored: Vec<Seen>,
    pub requested: Vec<Seen>,
}

#[derive(Debug, Clone)]
pub struct Store {
    /// `file`, `memory`, `s3`, … (never the URL: it may name a bucket or a path).
    pub backend: String,
    /// False while the ledger is being built from a walk of the store.
    pub ready: bool,
    pub modules: u64,
    pub versions: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone)]
pub struct Flight {
    pub module: String,
    pub query: String,
    pub metadata_only: bool,
    pub elapsed: String,
    pub waiting: usize,
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub module: String,
    pub query: String,
    pub at: String,
    pub result: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub enum Upstream {
    /// The policy never fetches: no upstream.
    None,
    /// No fill has reached it since start.
    NotAskedYet,
    Answered {
        up: bool,
        at: String,
    },
}

#[derive(Debug, Clone)]
pub struct Sumdb {
    pub name: String,
    /// `Some(true)`: a route; `Some(false)`: none; `None`: not probed yet.
    pub up: Option<bool>,
    pub state: String,
}

#[derive(Debug, Clone)]
pub struct Coordination {
    /// The lease engine, `none` when fills are not coordinated.
    pub engine: String,
    pub lease_time: String,
    /// This replica's name in the ledger.
    pub this_replica: String,
    /// The other replicas whose ledger records this one read, and when each last wrote one.
    pub others: Vec<(String, String)>,
    /// The versions whose lease this replica holds now (its fills of canonical versions).
    pub leases: Vec<String>,
}

/// A version stored or requested, and when.
#[derive(Debug, Clone)]
pub struct Seen {
    pub module: String,
    pub version: String,
    pub at: String,
}

/// The result of a search by module prefix.
#[derive(Debug, Clone)]
pub struct Search {
    pub prefix: String,
    /// Module and its stored versions.
    pub modules: Vec<(String, u64)>,
    /// More matched than are shown.
    pub more: bool,
}

/// A module page.
#[derive(Debug, Clone)]
pub struct Module {
    pub module: String,
    /// The version whose go.mod the deprecation and retractions are read from.
    pub notes_from: Option<String>,
    pub deprecated: Option<String>,
    pub versions: Vec<VersionRow>,
    /// Versions whose `.info` time was not read (only the newest are).
    pub times_left_out: usize,
}

#[derive(Debug, Clone)]
pub struct VersionRow {
    pub version: String,
    /// `stored`, `blocked` or `deleted`.
    pub status: &'static str,
    /// Why it is blocked.
    pub reason: Option<String>,
    /// The `.info`'s `Time`, when read.
    pub time: Option<String>,
    pub stored_at: String,
    pub bytes: u64,
    /// The retraction's rationale (possibly empty) when the newest go.mod retracts it.
    pub retracted: Option<String>,
}
