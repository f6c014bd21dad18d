//! The checksum database client, ported from `golang.org/x/mod/sumdb` (`Client.Lookup`, `mergeLatest`,
//! `checkTrees`, `checkRecord`) and `tlog.TileHashReader`: every hash it uses is read from tiles that are
//! authenticated against a tree hash signed by the database's key.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use ferry_module::{ModulePath, Version};

mod answers;
mod fetches;

use crate::kept::{Keeping, Kept};
use crate::note::{NoteError, VerifierKey};
use crate::tlog::{
    self, HASH_SIZE, Hash, Tile, Tree, hash_from_tile, hash_to_base64, node_hash, parse_record,
    parse_tree, record_hash, stored_hash_index, sub_tree_index, tile_for_index, tile_hash,
    tile_parent, tree_hash_from,
};
use crate::{SumdbError, Transport, TransportError};
use fetches::Fetches;

/// The key of the newest signed tree note kept (see [`Kept`]).
const LATEST: &str = "latest";

/// Where a tile read came from: only what the database sent is kept, and what the store gave is read
/// again from the database when it does not verify.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Memory,
    Kept,
    Fetched,
}

/// Tiles kept in memory (each at most 8 KiB, so at most 8 MiB), each at the widest width read: the upper
/// levels of the tree, read by every lookup, stay cached; level-0 tiles of records looked up before are
/// reused until evicted; a partial tile is read again only when a lookup needs it wider (the tree grew).
const TILE_CACHE_ENTRIES: usize = 1024;

/// A verifying client of one checksum database. It keeps, in memory, the largest tree it has verified (so
/// that a later tree must be consistent with it) and a bounded cache of authenticated tiles; tree notes are
/// always read again (with each lookup). Share it (`Arc<Client<_>>`) so that every lookup extends the same history.
///
/// Given a [`Kept`] ([`Client::keeping`]), it also keeps there every lookup answer, tile and newer tree
/// note it verified, reads lookups and tiles from there before asking the database, and starts from the
/// kept note: a restart loses nothing verified, and what is kept is answered while the database is away.
pub struct Client<T> {
    key: VerifierKey,
    transport: T,
    latest: Mutex<Latest>,
    tiles: Mutex<TileCache>,
    /// Tile requests shared by the reads that want the same tile at once.
    fetches: Fetches,
    kept: Keeping,
    /// Whether the kept note was read (once, before the first use).
    loaded: AtomicBool,
}

#[derive(Clone)]
struct Latest {
    tree: Tree,
    /// The signed note of `tree`, quoted in security errors; empty for the initial empty tree.
    note: Vec<u8>,
}

#[derive(Default)]
struct TileCache {
    data: HashMap<(u32, i64), Bytes>,
    order: VecDeque<(u32, i64)>,
}

impl<T: Transport> Client<T> {
    pub fn new(key: VerifierKey, transport: T) -> Client<T> {
        Client {
            key,
            transport,
            latest: Mutex::new(Latest {
                tree: Tree::empty(),
                note: Vec::new(),
            }),
            tiles: Mutex::new(TileCache::default()),
            fetches: Fetches::default(),
            kept: Keeping::new(None, ""),
            loaded: AtomicBool::new(false),
        }
    }

    /// This client, keeping what it verifies in `kept` (see [`Kept`]).
    pub fn keeping(mut self, kept: std::sync::Arc<dyn Kept>) -> Client<T> {
        self.kept = Keeping::new(Some(kept), self.key.name());
        self
    }

    /// The key this client verifies with.
    pub fn key(&self) -> &VerifierKey {
        &self.key
    }

    /// The verified go.sum lines of `module version`: `<module> <version> h1:…` (the zip) and
    /// `<module> <version>/go.mod h1:…`, as the database's record holds them.
    pub async fn lookup(&self, module: &str, version: &str) -> Result<Vec<String>, SumdbError> {
        let path = ModulePath::new(module)?;
        let vers = Version::new(version)?;
        let remote = format!("lookup/{}@{}", path.escaped(), vers.escaped());
        self.load().await;
        if let Some(kept) = self.kept.get(&remote).await {
            match self.prove_answer(module, version, &kept).await {
                Ok(lines) => return Ok(lines),
                Err(err @ SumdbError::Transport { .. }) => return Err(err),
                Err(err) => self.damaged(&remote, &err),
            }
        }
        let data = match self.transport.get(&remote).await {
            Ok(data) => data,
            Err(TransportError::NotFound) => {
                return Err(SumdbError::NotFound {
                    module: module.to_string(),
                    version: version.to_string(),
                    database: self.key.name().to_string(),
                });
            }
            Err(TransportError::Failed(message)) => {
                return Err(self.transport_error(remote, message));
            }
        };
        let lines = self.prove_answer(module, version, &data).await?;
        self.kept.put(&remote, data).await;
        Ok(lines)
    }

    /// A kept record that does not verify: logged, and read again from the database.
    fn damaged(&self, key: &str, err: &SumdbError) {
        tracing::warn!(sumdb = %self.key.name(), key, error = %err, "a kept checksum database record does not verify (damaged?): ignored, asking the database");
    }

    /// Proves a lookup answer (`<id>\n<record>\n\n<signed note>`) of `module version`: the note is signed
    /// and consistent with the latest tree, the record is in it; the record's lines for the version.
    async fn prove_answer(
        &self,
        module: &str,
        version: &str,
        data: &[u8],
    ) -> Result<Vec<String>, SumdbError> {
        let context = |err: SumdbError| match err {
            SumdbError::Security(message) => {
                SumdbError::Security(format!("{module}@{version}: {message}"))
            }
            other => other,
        };
        let (id, text, note) = parse_record(data).map_err(|m| self.protocol(m))?;
        // The proof (the note consistent with the latest tree, the record in it, tiles fetched as
        // needed) as a span of the traces the binary exports (the fetcher's target).
        let span = tracing::info_span!(target: "ferry_span", "sumdb proof", sumdb = self.key.name(), record = id);
        let proof = async {
            self.merge_latest(note).await.map_err(context)?;
            self.check_record(id, text).await.map_err(context)
        };
        tracing::Instrument::instrument(proof, span).await?;
        let text = std::str::from_utf8(text).map_err(|e| self.protocol(e.to_string()))?;
        let zip_prefix = format!("{module} {version} ");
        let mod_prefix = format!("{module} {version}/go.mod ");
        let lines: Vec<String> = text
            .lines()
            .filter(|line| line.starts_with(&zip_prefix) || line.starts_with(&mod_prefix))
            .map(str::to_string)
            .collect();
        if lines.is_empty() {
            // A proven record, but of another module: the database answered a question not asked.
            return Err(SumdbError::Security(format!(
                "{module}@{version}: SECURITY ERROR\nthe checksum database's record {id} holds no line for it:\n{text}"
            )));
        }
        Ok(lines)
    }

    /// Checks downloaded hashes against the database: `zip_h1` against the zip's line and `go_mod_h1`
    /// against the go.mod's (either may be left out). A mismatch is a [`SumdbError::Security`] naming the
    /// module version and both hashes, worded as the go command words it.
    pub async fn verify(
        &self,
        module: &str,
        version: &str,
        zip_h1: Option<&str>,
        go_mod_h1: Option<&str>,
    ) -> Result<(), SumdbError> {
        let lines = self.lookup(module, version).await?;
        for (got, what) in [
            (zip_h1, version.to_string()),
            (go_mod_h1, format!("{version}/go.mod")),
        ] {
            let Some(got) = got else { continue };
            let prefix = format!("{module} {what} ");
            let expected: Vec<&str> = lines
                .iter()
                .filter_map(|line| line.strip_prefix(&prefix))
                .collect();
            if expected.contains(&got) {
                continue;
            }
            let expected = if expected.is_empty() {
                "(no hash listed)".to_string()
            } else {
                expected.join(", ")
            };
            return Err(SumdbError::Security(format!(
                "verifying {module}@{what}: checksum mismatch\n\tdownloaded: {got}\n\t{}: {expected}\n\n\
                 SECURITY ERROR\nThis download does NOT match the one reported by the checksum server.\n\
                 The bits may have been replaced on the origin server, or an attacker may\n\
                 have intercepted the download attempt.",
                self.key.name()
            )));
        }
        Ok(())
    }

    fn protocol(&self, message: impl Into<String>) -> SumdbError {
        SumdbError::Protocol {
            database: self.key.name().to_string(),
            message: message.into(),
        }
    }

    fn transport_error(&self, path: String, message: String) -> SumdbError {
        SumdbError::Transport {
            database: self.key.name().to_string(),
            path,
            message,
        }
    }

    fn latest(&self) -> Latest {
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Go's `mergeLatestMem`: verifies the signed tree `msg` and makes it the latest if it is larger and
    /// consistent with the latest; a smaller tree must be consistent with (a prefix of) the latest.
    async fn merge_latest(&self, msg: &[u8]) -> Result<(), SumdbError> {
        let text = self.key.open(msg).map_err(|err| match err {
            NoteError::Malformed => self.protocol("malformed signed tree note"),
            NoteError::NotSigned => SumdbError::Security(format!(
                "SECURITY ERROR\ntree note not signed by {} (signed by another key?)\nnote:\n{}",
                self.key.as_str(),
                String::from_utf8_lossy(msg)
            )),
            NoteError::BadSignature => SumdbError::Security(format!(
                "SECURITY ERROR\ninvalid signature on tree note for key {}\nnote:\n{}",
                self.key.as_str(),
                String::from_utf8_lossy(msg)
            )),
        })?;
        let tree = parse_tree(text).map_err(|m| self.protocol(m))?;
        let mut latest = self.latest();
        loop {
            if tree == latest.tree {
                // The tree already verified: checking it against itself would only re-read its tiles.
                return Ok(());
            }
            if tree.n <= latest.tree.n {
                return self
                    .check_trees(&tree, msg, &latest.tree, &latest.note)
                    .await;
            }
            self.check_trees(&latest.tree, &latest.note, &tree, msg)
                .await?;
            {
                let mut current = self.latest.lock().unwrap_or_else(|e| e.into_inner());
                if current.tree != latest.tree {
                    // Another lookup installed a tree meanwhile: check against that one instead.
                    latest = current.clone();
                    continue;
                }
                *current = Latest {
                    tree,
                    note: msg.to_vec(),
                };
            }
            self.keep_latest(msg, &tree).await;
            return Ok(());
        }
    }

    /// Reads the kept tree note once, before the first use: the history starts where the last run (or
    /// another replica) left it. One that does not verify is logged and ignored.
    async fn load(&self) {
        if self.loaded.swap(true, Ordering::AcqRel) {
            return;
        }
        self.merge_kept_latest().await;
    }

    /// Merges the kept tree note, when it verifies; `false` when there is none that does.
    async fn merge_kept_latest(&self) -> bool {
        let Some(note) = self.kept.get(LATEST).await else {
            return false;
        };
        match self.merge_latest(&note).await {
            Ok(()) => true,
            Err(err) => {
                self.damaged(LATEST, &err);
                false
            }
        }
    }

    /// The tree size of a kept note that verifies.
    async fn kept_tree_size(&self) -> Option<i64> {
        let note = self.kept.get(LATEST).await?;
        let text = self.key.open(&note).ok()?;
        parse_tree(text).ok().map(|tree| tree.n)
    }

    /// Keeps `note` as the newest tree note unless a note of a tree at least as large is kept. Another
    /// replica may write a smaller one between the look and the write: the look after each write puts the
    /// larger back (a few times at most; the next larger tree ends any race).
    async fn keep_latest(&self, note: &[u8], tree: &Tree) {
        if !self.kept.enabled() {
            return;
        }
        for _ in 0..3 {
            if self.kept_tree_size().await.is_some_and(|n| n >= tree.n) {
                return;
            }
            self.kept.put(LATEST, Bytes::copy_from_slice(note)).await;
        }
    }

    /// Go's `checkTrees`: the `older` tree's hash must be what the `newer` tree's tiles give for its size.
    async fn check_trees(
        &self,
        older: &Tree,
        older_note: &[u8],
        newer: &Tree,
        newer_note: &[u8],
    ) -> Result<(), SumdbError> {
        let indent = |note: &[u8]| String::from_utf8_lossy(note).replace('\n', "\n\t");
        let misbehavior = |proof: String| {
            SumdbError::Security(format!(
                "SECURITY ERROR\ngo.sum database server misbehavior detected!\n\n\
                 old database:\n\t{}\nnew database:\n\t{}\n\
                 proof of misbehavior:\n\t{proof}",
                indent(older_note),
                indent(newer_note),
            ))
        };
        let h = match self.tree_hash(older.n, newer).await {
            Ok(h) => h,
            // Tiles known from the old tree (kept, authenticated) that do not hash to the new one: the two
            // trees contradict each other.
            Err(SumdbError::Security(detail)) => {
                return Err(misbehavior(detail.replace('\n', " ")));
            }
            Err(e) => return Err(e),
        };
        if h == older.hash {
            return Ok(());
        }
        Err(misbehavior(format!(
            "tree#{} hash from the new database's tiles is {}, the old database signed {}",
            older.n,
            hash_to_base64(&h),
            hash_to_base64(&older.hash),
        )))
    }

    /// Go's `checkRecord`: record `id` must hash to the leaf the latest tree holds at `id`.
    async fn check_record(&self, id: i64, text: &[u8]) -> Result<(), SumdbError> {
        let latest = self.latest().tree;
        if id >= latest.n {
            return Err(SumdbError::Security(format!(
                "cannot validate record {id} in tree of size {}",
                latest.n
            )));
        }
        let hashes = self
            .read_hashes(&latest, &[stored_hash_index(0, id)])
            .await?;
        if hashes[0] == record_hash(text) {
            return Ok(());
        }
        Err(SumdbError::Security(
            "SECURITY ERROR\ncannot authenticate record data in server response \
             (it does not hash to the leaf the signed tree holds)"
                .to_string(),
        ))
    }

    /// Go's `TreeHash` over authenticated tiles of `tree`: the hash of the tree's first `n` records.
    async fn tree_hash(&self, n: i64, tree: &Tree) -> Result<Hash, SumdbError> {
        if n == 0 {
            return Ok(Tree::empty().hash);
        }
        let mut indexes = Vec::new();
        sub_tree_index(0, n, &mut indexes).map_err(|m| self.protocol(m))?;
        let hashes = self.read_hashes(tree, &indexes).await?;
        Ok(tree_hash_from(n, &hashes))
    }

    /// Go's `tileHashReader.ReadHashes`: reads the tiles holding `indexes`, plus the tiles that link them
    /// up to the tree's top, checks them all against `tree.hash`, and only then returns the hashes.
    async fn read_hashes(&self, tree: &Tree, indexes: &[i64]) -> Result<Vec<Hash>, SumdbError> {
        let bad_math = |what: String| self.protocol(format!("tile arithmetic failed: {what}"));
        let mut order: HashMap<Tile, usize> = HashMap::new();
        let mut tiles: Vec<Tile> = Vec::new();

        // The tiles covering the tree's complete subtrees come first: they authenticate against tree.hash.
        let mut stx = Vec::new();
        sub_tree_index(0, tree.n, &mut stx).map_err(bad_math)?;
        if stx.is_empty() {
            return Err(bad_math(format!(
                "no hashes in a tree of {} records",
                tree.n
            )));
        }
        let mut stx_order = Vec::with_capacity(stx.len());
        for &x in &stx {
            let (tile, _, _) = tile_for_index(x);
            let tile = tile_parent(&tile, 0, tree.n)
                .ok_or_else(|| bad_math(format!("no tile for hash {x}")))?;
            let next = tiles.len();
            let j = *order.entry(tile).or_insert(next);
            if j == next {
                tiles.push(tile);
            }
            stx_order.push(j);
        }

        // Every tile from here on is authenticated through its parent, not by the tree hash. (Counting
        // tiles, not `stx` entries, which share tiles: skipping `stx.len()` would leave some unchecked.)
        let stx_tiles = tiles.len();

        // Then each index's tile and the chain of full parent tiles linking it to one already listed.
        let max_index = stored_hash_index(0, tree.n);
        let mut index_order = Vec::with_capacity(indexes.len());
        for &x in indexes {
            if x < 0 || x >= max_index {
                return Err(bad_math(format!("index {x} not in tree of {}", tree.n)));
            }
            let (tile, _, _) = tile_for_index(x);
            let mut k = 0;
            let found = loop {
                if k > 64 / tlog::TILE_HEIGHT {
                    return Err(bad_math(format!("no parent tile for index {x}")));
                }
                if let Some(&j) = tile_parent(&tile, k, tree.n).and_then(|p| order.get(&p)) {
                    break j;
                }
                k += 1;
            };
            let mut slot = found;
            for k in (0..k).rev() {
                let p = tile_parent(&tile, k, tree.n)
                    .filter(Tile::is_full)
                    .ok_or_else(|| bad_math(format!("tree {} index {x}", tree.n)))?;
                order.insert(p, tiles.len());
                slot = tiles.len();
                tiles.push(p);
            }
            index_order.push(slot);
        }

        let plan = (&stx[..], &stx_order[..], stx_tiles);
        let (mut data, mut sources) = self.read_tiles(&tiles, true).await?;
        if let Err(err) = self.authenticate(tree, &tiles, &data, &order, plan) {
            // What the database sent is not shared with another read once it failed one.
            self.forget_fetched(&tiles, &sources);
            if !sources.contains(&Source::Kept) {
                return Err(err);
            }
            self.damaged("tile/8/…", &err);
            (data, sources) = self.read_tiles(&tiles, false).await?;
            if let Err(err) = self.authenticate(tree, &tiles, &data, &order, plan) {
                self.forget_fetched(&tiles, &sources);
                return Err(err);
            }
        }
        self.save_tiles(&tiles, &data, &sources).await;

        indexes
            .iter()
            .zip(index_order)
            .map(|(&x, j)| hash_from_tile(&tiles[j], &data[j], x).map_err(bad_math))
            .collect()
    }

    /// The checks of `ReadHashes`: the subtree tiles hash to the signed tree hash, and every other tile
    /// hashes to the entry its parent tile holds for it.
    fn authenticate(
        &self,
        tree: &Tree,
        tiles: &[Tile],
        data: &[Bytes],
        order: &HashMap<Tile, usize>,
        (stx, stx_order, stx_tiles): (&[i64], &[usize], usize),
    ) -> Result<(), SumdbError> {
        let inconsistent = || {
            SumdbError::Security(format!(
                "SECURITY ERROR\ndownloaded inconsistent tile: the tiles do not hash to the signed tree#{} {}",
                tree.n,
                hash_to_base64(&tree.hash)
            ))
        };
        let protocol = |m: String| self.protocol(m);
        for (tile, data) in tiles.iter().zip(data) {
            if data.len() != tile.width as usize * HASH_SIZE {
                return Err(protocol(format!(
                    "{} has {} bytes, want {}",
                    tile.path(),
                    data.len(),
                    tile.width as usize * HASH_SIZE
                )));
            }
        }
        let mut th: Option<Hash> = None;
        for (&x, &j) in stx.iter().zip(stx_order).rev() {
            let h = hash_from_tile(&tiles[j], &data[j], x).map_err(protocol)?;
            th = Some(match th {
                None => h,
                Some(right) => node_hash(&h, &right),
            });
        }
        if th != Some(tree.hash) {
            return Err(inconsistent());
        }
        for (tile, tile_data) in tiles.iter().zip(data).skip(stx_tiles) {
            let parent = tile_parent(tile, 1, tree.n)
                .ok_or_else(|| protocol(format!("lost parent of {}", tile.path())))?;
            let &j = order
                .get(&parent)
                .ok_or_else(|| protocol(format!("lost parent of {}", tile.path())))?;
            let index = stored_hash_index(parent.level * tlog::TILE_HEIGHT, tile.n);
            let h = hash_from_tile(&parent, &data[j], index).map_err(protocol)?;
            if h != tile_hash(tile_data) {
                return Err(inconsistent());
            }
        }
        Ok(())
    }

    /// Reads tiles concurrently: from memory, else (`use_kept`) from the store, else from the database.
    async fn read_tiles(
        &self,
        tiles: &[Tile],
        use_kept: bool,
    ) -> Result<(Vec<Bytes>, Vec<Source>), SumdbError> {
        let read = tiles.iter().map(|tile| self.read_tile(*tile, use_kept));
        Ok(futures::future::try_join_all(read)
            .await?
            .into_iter()
            .unzip())
    }

    /// Go's `readTile`: the tile itself, else (for a partial tile the server no longer has, because the
    /// tree grew) the full tile cut to the width wanted. A cached full tile serves its partial prefixes.
    async fn read_tile(&self, tile: Tile, use_kept: bool) -> Result<(Bytes, Source), SumdbError> {
        let want = tile.width as usize * HASH_SIZE;
        let cached = {
            let cache = self.tiles.lock().unwrap_or_else(|e| e.into_inner());
            cache.data.get(&(tile.level, tile.n)).cloned()
        };
        // A tile's stored hashes never change as the tree grows: an authenticated tile of some width
        // serves every narrower width of it (a fork would not hash to its own signed tree).
        if let Some(known) = cached.filter(|known| known.len() >= want) {
            return Ok((known.slice(..want), Source::Memory));
        }
        if use_kept && let Some(kept) = self.kept.tile(&tile).await {
            return Ok((kept, Source::Kept));
        }
        let path = tile.path();
        let fetched = match self.fetch(&path).await {
            Ok(data) => Ok(data),
            Err(err) if tile.is_full() => Err(self.transport_error(path, err.to_string())),
            Err(err) => match self.fetch(&tile.full().path()).await {
                Ok(full) => Ok(full.slice(..want.min(full.len()))),
                Err(_) => Err(self.transport_error(path, err.to_string())),
            },
        };
        fetched.map(|data| (data, Source::Fetched))
    }

    /// The database's answer for the tile at `path`, asked once however many reads want it at once.
    async fn fetch(&self, path: &str) -> Result<Bytes, TransportError> {
        self.fetches.get(path, self.transport.get(path)).await
    }

    /// The tiles of a read that did not authenticate: those the database sent are asked again next time.
    fn forget_fetched(&self, tiles: &[Tile], sources: &[Source]) {
        for (tile, source) in tiles.iter().zip(sources) {
            if *source == Source::Fetched {
                self.fetches.forget(&tile.path());
                self.fetches.forget(&tile.full().path());
            }
        }
    }

    /// Caches the tiles of an authenticated read, each at the widest width seen (a partial tile is a
    /// prefix of every wider one), evicting the oldest beyond the bound; keeps those the database sent.
    async fn save_tiles(&self, tiles: &[Tile], data: &[Bytes], sources: &[Source]) {
        self.remember_tiles(tiles, data);
        for ((tile, data), source) in tiles.iter().zip(data).zip(sources) {
            if *source == Source::Fetched {
                self.kept.save_tile(tile, data.clone()).await;
            }
        }
    }

    fn remember_tiles(&self, tiles: &[Tile], data: &[Bytes]) {
        let mut cache = self.tiles.lock().unwrap_or_else(|e| e.into_inner());
        for (tile, data) in tiles.iter().zip(data) {
            // In memory from now on: the next read finds it there.
            self.fetches.forget(&tile.path());
            self.fetches.forget(&tile.full().path());
            let key = (tile.level, tile.n);
            match cache.data.get(&key) {
                Some(known) if known.len() >= data.len() => continue,
                Some(_) => {
                    cache.data.insert(key, data.clone());
                }
                None => {
                    cache.data.insert(key, data.clone());
                    cache.order.push_back(key);
                }
            }
            while cache.order.len() > TILE_CACHE_ENTRIES {
                if let Some(old) = cache.order.pop_front() {
                    cache.data.remove(&old);
                }
            }
        }
    }
}
