//! The transparent log's arithmetic, ported from `golang.org/x/mod/sumdb/tlog`: record and node hashes,
//! stored-hash indexes, tree hashes, tiles, and the tree-note and lookup-record formats.
//!
//! Go panics on "bad math"; here every such case is an `Err` instead, because the numbers come from the
//! network and a hostile server must never be able to crash the proxy.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

pub(crate) const HASH_SIZE: usize = 32;

/// The height of the tiles the go command reads (`tile/8/...`).
pub(crate) const TILE_HEIGHT: u32 = 8;

/// Trees larger than this are refused as implausible (sum.golang.org held about 2^26 records in 2025):
/// the bound keeps every index computation far from `i64` overflow whatever a server claims.
pub(crate) const MAX_TREE_SIZE: i64 = 1 << 48;

pub(crate) type Hash = [u8; HASH_SIZE];

pub(crate) fn hash_to_base64(hash: &Hash) -> String {
    STANDARD.encode(hash)
}

/// The hash of a record: SHA-256 of 0x00 followed by the record's text.
pub(crate) fn record_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256 of 0x01, the left and the right child.
pub(crate) fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree, SHA-256 of nothing.
fn empty_hash() -> Hash {
    Sha256::digest([]).into()
}

/// The smallest power of two `k` with `k < n <= 2k` (n > 1), and its log.
fn maxpow2(n: i64) -> (i64, u32) {
    let mut l = 0;
    while (1i64 << (l + 1)) < n {
        l += 1;
    }
    (1i64 << l, l)
}

/// Go's `StoredHashIndex`: where the hash of node `n` at `level` sits in the sequence of stored hashes.
pub(crate) fn stored_hash_index(level: u32, n: i64) -> i64 {
    let mut n = n;
    for _ in 0..level {
        n = 2 * n + 1;
    }
    let mut i = 0;
    while n > 0 {
        i += n;
        n >>= 1;
    }
    i + i64::from(level)
}

/// Go's `SplitStoredHashIndex`, the inverse of [`stored_hash_index`].
pub(crate) fn split_stored_hash_index(index: i64) -> (u32, i64) {
    let mut n = index / 2;
    let mut index_n = stored_hash_index(0, n);
    while index_n > index && n > 0 {
        // Go's estimate never overshoots; stepping back keeps that true for any input.
        n -= 1;
        index_n = stored_hash_index(0, n);
    }
    loop {
        let x = index_n + 1 + i64::from((n + 1).trailing_zeros());
        if x > index {
            break;
        }
        n += 1;
        index_n = x;
    }
    let level = (index - index_n) as u32;
    (level, n >> level)
}

/// The stored-hash indexes of the complete subtrees that make up `[lo, hi)`, left to right.
pub(crate) fn sub_tree_index(mut lo: i64, hi: i64, need: &mut Vec<i64>) -> Result<(), String> {
    while lo < hi {
        let (k, level) = maxpow2(hi - lo + 1);
        if lo & (k - 1) != 0 {
            return Err(format!("bad subtree [{lo}, {hi})"));
        }
        need.push(stored_hash_index(level, lo >> level));
        lo += k;
    }
    Ok(())
}

/// Combines the subtree hashes of `[0, n)` (as listed by [`sub_tree_index`]) into the tree hash.
pub(crate) fn tree_hash_from(n: i64, hashes: &[Hash]) -> Hash {
    match hashes.split_last() {
        None if n == 0 => empty_hash(),
        None => [0; HASH_SIZE],
        Some((last, rest)) => rest
            .iter()
            .rev()
            .fold(*last, |acc, left| node_hash(left, &acc)),
    }
}

/// A tree head: the number of records and the hash of the tree over them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tree {
    pub n: i64,
    pub hash: Hash,
}

impl Tree {
    pub(crate) fn empty() -> Tree {
        Tree {
            n: 0,
            hash: empty_hash(),
        }
    }
}

/// Parses the text of a tree note: `go.sum database tree\n<N>\n<base64 hash>\n` (Go's `ParseTree`, which
/// allows further lines after these three).
pub(crate) fn parse_tree(text: &str) -> Result<Tree, String> {
    const PREFIX: &str = "go.sum database tree\n";
    let malformed = || "malformed tree note".to_string();
    if !text.starts_with(PREFIX) || text.matches('\n').count() < 3 || text.len() > 1_000_000 {
        return Err(malformed());
    }
    let mut lines = text.splitn(4, '\n').skip(1);
    let count = lines.next().ok_or_else(malformed)?;
    let hash = lines.next().ok_or_else(malformed)?;
    // Go accepts only the canonical decimal form: no sign, no leading zeros.
    let n: i64 = count.parse().map_err(|_| malformed())?;
    if n < 0 || n.to_string() != count {
        return Err(malformed());
    }
    if n > MAX_TREE_SIZE {
        return Err(format!("tree of {n} records is implausibly large"));
    }
    let hash = STANDARD.decode(hash).map_err(|_| malformed())?;
    let hash: Hash = hash.try_into().map_err(|_| malformed())?;
    Ok(Tree { n, hash })
}

/// Go's `isValidRecordText`: UTF-8, no control characters but newline, no blank line, ends in newline.
fn is_valid_record_text(text: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let mut last = '\0';
    for c in text.chars() {
        if (c < ' ' && c != '\n') || (last == '\n' && c == '\n') {
            return false;
        }
        last = c;
    }
    last == '\n'
}

/// Splits a lookup answer (Go's `ParseRecord`): `<id>\n<record text>\n` then the signed tree note.
pub(crate) fn parse_record(msg: &[u8]) -> Result<(i64, &[u8], &[u8]), String> {
    let malformed = || "malformed record data".to_string();
    let newline = msg.iter().position(|&b| b == b'\n').ok_or_else(malformed)?;
    let id = std::str::from_utf8(&msg[..newline]).map_err(|_| malformed())?;
    let id: i64 = id.parse().map_err(|_| malformed())?;
    if id < 0 {
        return Err(malformed());
    }
    let msg = &msg[newline + 1..];
    let end = msg
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or_else(malformed)?;
    let (text, rest) = (&msg[..end + 1], &msg[end + 2..]);
    if !is_valid_record_text(text) {
        return Err(malformed());
    }
    Ok((id, text, rest))
}

/// A tile of height [`TILE_HEIGHT`]: `width` hashes of `level` (in tile levels), starting at hash
/// `n << TILE_HEIGHT` of that level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Tile {
    pub level: u32,
    pub n: i64,
    pub width: i64,
}

pub(crate) const FULL_WIDTH: i64 = 1 << TILE_HEIGHT;

impl Tile {
    pub(crate) fn is_full(&self) -> bool {
        self.width == FULL_WIDTH
    }

    pub(crate) fn full(&self) -> Tile {
        Tile {
            width: FULL_WIDTH,
            ..*self
        }
    }

    /// The tile's path below the database URL: `tile/8/<L>/x001/234[.p/<W>]`.
    pub(crate) fn path(&self) -> String {
        let mut n = self.n;
        let mut n_str = format!("{:03}", n % 1000);
        while n >= 1000 {
            n /= 1000;
            n_str = format!("x{:03}/{n_str}", n % 1000);
        }
        let partial = if self.is_full() {
            String::new()
        } else {
            format!(".p/{}", self.width)
        };
        format!("tile/{TILE_HEIGHT}/{}/{n_str}{partial}", self.level)
    }
}

/// Parses a tile path as [`Tile::path`] writes it, or its data tile's (`tile/8/data/<NNN>[.p/<W>]`, then
/// `true`): only the canonical spelling of a tile of height 8 is taken.
pub(crate) fn parse_tile_path(path: &str) -> Option<(Tile, bool)> {
    let rest = path.strip_prefix("tile/8/")?;
    let (level, rest) = rest.split_once('/')?;
    let data = level == "data";
    let level: u32 = if data { 0 } else { level.parse().ok()? };
    let (groups, width) = match rest.split_once(".p/") {
        Some((groups, width)) => (groups, width.parse().ok()?),
        None => (rest, FULL_WIDTH),
    };
    let mut n: i64 = 0;
    for group in groups.split('/') {
        let digits = group.strip_prefix('x').unwrap_or(group);
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
    }
    let tile = Tile { level, n, width };
    if level >= 8 || !(1..=FULL_WIDTH).contains(&width) {
        return None;
    }
    let canonical = if data {
        data_tile_path(&tile)
    } else {
        tile.path()
    };
    (canonical == path).then_some((tile, data))
}

/// The path of the data tile (the records themselves) below the hash tile `tile` of level 0.
pub(crate) fn data_tile_path(tile: &Tile) -> String {
    tile.path().replacen("tile/8/0/", "tile/8/data/", 1)
}

/// Go's `tileForIndex`: the smallest tile holding stored hash `index`, and that hash's byte range in it.
pub(crate) fn tile_for_index(index: i64) -> (Tile, usize, usize) {
    let (level, n) = split_stored_hash_index(index);
    let tile_level = level / TILE_HEIGHT;
    let level = level - tile_level * TILE_HEIGHT; // level within the tile
    let tile_n = (n << level) >> TILE_HEIGHT;
    let n = n - ((tile_n << TILE_HEIGHT) >> level); // n within the tile at that level
    let tile = Tile {
        level: tile_level,
        n: tile_n,
        width: (n + 1) << level,
    };
    let start = (n << level) as usize * HASH_SIZE;
    let end = ((n + 1) << level) as usize * HASH_SIZE;
    (tile, start, end)
}

/// Go's `tileHash`: the hash of the subtree whose leaves are the hashes in `data`.
pub(crate) fn tile_hash(data: &[u8]) -> Hash {
    if data.len() <= HASH_SIZE {
        let mut h = [0; HASH_SIZE];
        h[..data.len()].copy_from_slice(data);
        return h;
    }
    let half = data.len() / 2;
    node_hash(&tile_hash(&data[..half]), &tile_hash(&data[half..]))
}

/// Go's `HashFromTile`: stored hash `index` computed from the data of `tile`.
pub(crate) fn hash_from_tile(tile: &Tile, data: &[u8], index: i64) -> Result<Hash, String> {
    if tile.width < 1 || tile.width > FULL_WIDTH {
        return Err(format!("invalid tile {}", tile.path()));
    }
    if data.len() < tile.width as usize * HASH_SIZE {
        return Err(format!(
            "data len {} too short for tile {}",
            data.len(),
            tile.path()
        ));
    }
    let (t1, start, end) = tile_for_index(index);
    if tile.level != t1.level || tile.n != t1.n || tile.width < t1.width {
        return Err(format!(
            "index {index} is in {} not {}",
            t1.path(),
            tile.path()
        ));
    }
    Ok(tile_hash(&data[start..end]))
}

/// Go's `tileParent`: the tile `k` tile levels above `tile`, clipped to a tree of `n` records; `None` when
/// the tree has no hash there yet.
pub(crate) fn tile_parent(tile: &Tile, k: u32, n: i64) -> Option<Tile> {
    let level = tile.level + k;
    let shift = level * TILE_HEIGHT;
    if shift >= 63 {
        return None;
    }
    let mut t = Tile {
        level,
        n: tile.n >> (k * TILE_HEIGHT),
        width: FULL_WIDTH,
    };
    let max = n >> shift;
    if (t.n << TILE_HEIGHT) + t.width >= max {
        if t.n << TILE_HEIGHT >= max {
            return None;
        }
        t.width = max - (t.n << TILE_HEIGHT);
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_stored_hash_index_inverts_stored_hash_index_for_every_level() {
        for level in 0..10 {
            for n in 0..2000 {
                let index = stored_hash_index(level, n);
                assert_eq!(split_stored_hash_index(index), (level, n), "index {index}");
            }
        }
    }

    #[test]
    fn tile_paths_group_large_numbers_by_thousands_as_go_does() {
        let tile = |level, n, width| Tile { level, n, width }.path();
        assert_eq!(tile(0, 5, 256), "tile/8/0/005");
        assert_eq!(tile(1, 1234, 17), "tile/8/1/x001/234.p/17");
        assert_eq!(tile(2, 1_234_567, 256), "tile/8/2/x001/x234/567");
    }

    #[test]
    fn tile_paths_parse_only_in_their_canonical_spelling() {
        let tile = |level, n, width| Tile { level, n, width };
        assert_eq!(
            parse_tile_path("tile/8/1/x001/234.p/17"),
            Some((tile(1, 1234, 17), false))
        );
        assert_eq!(
            parse_tile_path("tile/8/data/005"),
            Some((tile(0, 5, 256), true))
        );
        for junk in [
            "tile/8/0/5",
            "tile/8/0/001/234",
            "tile/8/0/000.p/256",
            "tile/8/0/000.p/0",
            "tile/8/9/000",
            "tile/4/0/000",
            "tile/8/data/000.p/05",
        ] {
            assert_eq!(parse_tile_path(junk), None, "{junk}");
        }
    }

    #[test]
    fn a_record_answer_splits_into_id_text_and_the_signed_note() {
        let (id, text, rest) =
            parse_record(b"42\nexample.com/a v1.0.0 h1:x=\n\ngo.sum database tree\n").unwrap();
        assert_eq!(id, 42);
        assert_eq!(text, b"example.com/a v1.0.0 h1:x=\n");
        assert_eq!(rest, b"go.sum database tree\n");
        for bad in [
            &b"-1\na\n\n"[..],
            b"x\na\n\n",
            b"1\na\n",
            b"1\na\x01\n\n",
            b"1\n\xff\n\n",
        ] {
            assert!(parse_record(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_tree_note_needs_a_canonical_count_and_a_32_byte_hash() {
        let hash = STANDARD.encode([7u8; 32]);
        let tree = parse_tree(&format!("go.sum database tree\n12\n{hash}\n")).unwrap();
        assert_eq!((tree.n, tree.hash), (12, [7u8; 32]));
        for bad in [
            format!("go.sum database tree\n012\n{hash}\n"),
            format!("go.sum database tree\n+12\n{hash}\n"),
            format!("go.sum database tree\n-1\n{hash}\n"),
            format!("go.sum database tree\n12\n{}\n", STANDARD.encode([7u8; 31])),
            format!("go.sum database tree\n{}\n{hash}\n", i64::MAX),
            format!("sum database tree\n12\n{hash}\n"),
        ] {
            assert!(parse_tree(&bad).is_err(), "{bad:?}");
        }
    }
}
