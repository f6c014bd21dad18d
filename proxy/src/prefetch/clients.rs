//! What prefetching knows of each client (by address) that asked for a `.mod` Ferry did not have: whether
//! it downloads zips (`prefetch.zips = "builders"`) or lists its build list, and what it read meanwhile.
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Instant;

use ferry_module::{ModulePath, Version};

use super::FOLLOW_WITHIN;

/// The most versions one client's lists hold (each list and map below).
pub(super) const MAX_ASKED: usize = 10_000;

/// One client's state.
#[derive(Default)]
pub(super) struct Client {
    /// Until when it counts as downloading zips: its last zip request's time and [`FOLLOW_WITHIN`].
    building_until: Option<Instant>,
    /// The versions whose `.mod` it asked for while it did not, and when: their zips wait for its first.
    pub unzipped: Vec<(ModulePath, Version, Instant)>,
    /// While it downloads zips: of each module, the highest version whose zip was fetched for it.
    zipped: HashMap<ModulePath, Version>,
    /// Of each module, the highest version whose `.mod` it asked for (and Ferry did not have).
    read: HashMap<ModulePath, Version>,
    /// The requirements of the pruned go.mod files it read: modules of its build list whose go.mod the go
    /// command never asks for, and whose `.info` it asks for when it lists the build list (`go list -m
    /// all`, `go mod download all`).
    fringe: Vec<(ModulePath, Version, Instant)>,
    /// Until when it counts as listing its build list: its last `.info` of the fringe and [`FOLLOW_WITHIN`].
    listing_until: Option<Instant>,
    /// While it lists: of each module, the highest version of the fringe fetched for it.
    listed: HashMap<ModulePath, Version>,
    /// When it last asked for a `.mod` Ferry did not have.
    last_seen: Option<Instant>,
}

impl Client {
    /// Notes that it asked for something now; when it had not for [`FOLLOW_WITHIN`], what it did before
    /// is forgotten (a later build from the same address is another graph). Returns how many versions
    /// waiting for its first zip were forgotten.
    pub fn touch(&mut self, now: Instant) -> usize {
        let stale = self
            .last_seen
            .is_some_and(|seen| now.duration_since(seen) >= FOLLOW_WITHIN);
        let forgotten = if stale && !self.building(now) && !self.listing(now) {
            let forgotten = self.unzipped.len();
            *self = Client::default();
            forgotten
        } else {
            0
        };
        self.last_seen = Some(now);
        forgotten
    }

    pub fn building(&self, now: Instant) -> bool {
        self.building_until.is_some_and(|until| until > now)
    }

    pub fn listing(&self, now: Instant) -> bool {
        self.listing_until.is_some_and(|until| until > now)
    }

    /// Notes a `.mod` it asked for.
    pub fn read(&mut self, module: &ModulePath, version: &Version) {
        raise(&mut self.read, module, version);
    }

    /// Whether it asked for the `.mod` of this module at this version or a higher one: its build list then
    /// does not have this version.
    pub fn has_read(&self, module: &ModulePath, version: &Version) -> bool {
        self.read.get(module).is_some_and(|read| read >= version)
    }

    /// Notes that the zip of this version is fetched for it; false when one of a version as high or higher
    /// of the module is already (a go.mod read at a lower version is not one it builds).
    pub fn zipped(&mut self, module: &ModulePath, version: &Version) -> bool {
        raise(&mut self.zipped, module, version)
    }

    /// Notes that the `.info` of this version of its fringe is fetched for it; false when that of a version
    /// as high or higher is already, or it read the module's go.mod at one.
    pub fn listed(&mut self, module: &ModulePath, version: &Version) -> bool {
        !self.has_read(module, version) && raise(&mut self.listed, module, version)
    }

    /// It asked for a zip: it downloads zips for [`FOLLOW_WITHIN`] from now. Returns how many versions were
    /// waiting for that, and those whose zips are due: of each module the highest, but where one as high
    /// was fetched for it already.
    pub fn start_building(
        &mut self,
        module: &ModulePath,
        version: &Version,
        now: Instant,
    ) -> (usize, Vec<(ModulePath, Version)>) {
        if !self.building(now) {
            self.zipped.clear();
        }
        self.building_until = Some(now + FOLLOW_WITHIN);
        self.zipped(module, version);
        let waiting = std::mem::take(&mut self.unzipped);
        let taken = waiting.len();
        let mut due = highest_versions(waiting, now);
        due.retain(|(m, v)| self.zipped(m, v));
        (taken, due)
    }

    /// Adds the requirements of a pruned go.mod it read to its fringe (as many as there is room for).
    pub fn add_to_fringe(&mut self, required: Vec<(ModulePath, Version)>, now: Instant) {
        let room = MAX_ASKED.saturating_sub(self.fringe.len());
        let required = required.into_iter().take(room);
        self.fringe.extend(required.map(|(m, v)| (m, v, now)));
    }

    /// Whether this version is one of its fringe.
    pub fn in_fringe(&self, module: &ModulePath, version: &Version) -> bool {
        self.fringe
            .iter()
            .any(|(m, v, _)| m == module && v == version)
    }

    /// It asked for the `.info` of a version of its fringe: it lists its build list for [`FOLLOW_WITHIN`]
    /// from now. Returns the rest of its fringe whose `.info` files are due, of each module the highest.
    pub fn start_listing(
        &mut self,
        module: &ModulePath,
        version: &Version,
        now: Instant,
    ) -> Vec<(ModulePath, Version)> {
        if !self.listing(now) {
            self.listed.clear();
        }
        self.listing_until = Some(now + FOLLOW_WITHIN);
        self.listed(module, version);
        let fringe = std::mem::take(&mut self.fringe);
        let mut due = highest_versions(fringe, now);
        due.retain(|(m, v)| self.listed(m, v));
        due
    }

    /// Whether it still counts for anything.
    pub fn active(&self, now: Instant) -> bool {
        let recent = |list: &[(ModulePath, Version, Instant)]| {
            list.iter()
                .any(|(_, _, at)| now.duration_since(*at) < FOLLOW_WITHIN)
        };
        self.building(now) || self.listing(now) || recent(&self.unzipped) || recent(&self.fringe)
    }
}

/// Raises the module's version in `highest` to `version`; false when it was as high or higher already (or
/// the map is full).
fn raise(
    highest: &mut HashMap<ModulePath, Version>,
    module: &ModulePath,
    version: &Version,
) -> bool {
    let full = highest.len() >= MAX_ASKED;
    match highest.get_mut(module) {
        Some(known) if *known >= *version => false,
        Some(known) => {
            *known = version.clone();
            true
        }
        None if full => false,
        None => {
            highest.insert(module.clone(), version.clone());
            true
        }
    }
}

/// Of each module asked for within [`FOLLOW_WITHIN`], the highest version, by path: the build list has one
/// version of a module, the highest the graph requires. In the order the go command asks for them (`go mod
/// download` and `go list -m all` walk the build list sorted by path): the fetch slots take them first
/// come, first served, so the one it asks for next is the next one done.
pub(super) fn highest_versions(
    asked: Vec<(ModulePath, Version, Instant)>,
    now: Instant,
) -> Vec<(ModulePath, Version)> {
    let mut highest: HashMap<ModulePath, Version> = HashMap::new();
    for (module, version, at) in asked {
        if now.duration_since(at) >= FOLLOW_WITHIN {
            continue;
        }
        match highest.entry(module) {
            Entry::Occupied(mut known) if *known.get() < version => {
                known.insert(version);
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(new) => {
                new.insert(version);
            }
        }
    }
    let mut highest: Vec<(ModulePath, Version)> = highest.into_iter().collect();
    highest.sort_unstable_by(|(a, _), (b, _)| a.as_str().cmp(b.as_str()));
    highest
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn v(module: &str, version: &str) -> (ModulePath, Version) {
        (
            ModulePath::new(module).unwrap(),
            Version::new(version).unwrap(),
        )
    }

    #[test]
    fn of_each_module_the_highest_version_recently_asked_in_path_order() {
        let now = Instant::now();
        let at =
            |(m, ver): (ModulePath, Version), ago: u64| (m, ver, now - Duration::from_secs(ago));
        let asked = vec![
            at(v("golang.org/x/sys", "v0.5.0"), 1),
            at(v("example.com/b", "v1.0.0"), 1),
            at(v("golang.org/x/sys", "v0.20.0"), 1),
            at(v("golang.org/x/sys", "v0.9.0"), 1),
            at(v("example.com/old", "v1.0.0"), 121),
        ];
        assert_eq!(
            highest_versions(asked, now),
            vec![
                v("example.com/b", "v1.0.0"),
                v("golang.org/x/sys", "v0.20.0")
            ]
        );
    }

    #[test]
    fn a_client_idle_for_two_minutes_starts_afresh_and_a_read_go_mod_rules_out_lower_versions() {
        let start = Instant::now();
        let mut client = Client::default();
        assert_eq!(client.touch(start), 0);
        let (m, high) = v("golang.org/x/sys", "v0.20.0");
        client.read(&m, &high);
        let (_, low) = v("golang.org/x/sys", "v0.5.0");
        assert!(client.has_read(&m, &low) && !client.listed(&m, &low));
        let (_, higher) = v("golang.org/x/sys", "v0.21.0");
        assert!(client.listed(&m, &higher) && !client.listed(&m, &higher));
        client.unzipped.push((m.clone(), low.clone(), start));
        assert_eq!(client.touch(start + Duration::from_secs(60)), 0);
        assert!(client.has_read(&m, &low));
        assert_eq!(client.touch(start + Duration::from_secs(200)), 1);
        assert!(!client.has_read(&m, &low) && client.unzipped.is_empty());
    }
}
