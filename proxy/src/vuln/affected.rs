//! Which advisories affect a module version, from the OSV entries' `affected[].ranges` (for the rule
//! `vuln.refuse_affected`): a version is affected by a range when `introduced <= version < fixed`, in Go's
//! semver order. Only ranges that end in a fixed version count: the rule refuses a version only where an
//! upgrade exists.

use serde::Deserialize;

#[derive(Deserialize)]
struct Osv {
    #[serde(default)]
    affected: Vec<OsvAffected>,
}

#[derive(Deserialize)]
struct OsvAffected {
    package: OsvPackage,
    #[serde(default)]
    ranges: Vec<OsvRange>,
}

#[derive(Deserialize)]
struct OsvPackage {
    name: String,
}

#[derive(Deserialize)]
struct OsvRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<OsvEvent>,
}

#[derive(Deserialize)]
struct OsvEvent {
    introduced: Option<String>,
    fixed: Option<String>,
}

/// One range of affected versions that a fixed version ends: `(introduced, fixed)`, each with its `v`.
pub type FixedRange = (String, String);

/// The fixed ranges of `module` in the OSV entry `osv` (none when it does not parse).
pub fn fixed_ranges(osv: &[u8], module: &str) -> Vec<FixedRange> {
    let Ok(osv) = serde_json::from_slice::<Osv>(osv) else {
        return Vec::new();
    };
    let with_v = |version: &str| match version {
        "0" => "v0.0.0-0".to_string(),
        other => format!("v{other}"),
    };
    let mut ranges = Vec::new();
    let affecting = osv.affected.iter().filter(|a| a.package.name == module);
    for range in affecting.flat_map(|a| &a.ranges) {
        if range.kind != "SEMVER" {
            continue;
        }
        let mut introduced = None;
        for event in &range.events {
            if let Some(version) = &event.introduced {
                introduced = Some(with_v(version));
            }
            if let Some(fixed) = &event.fixed
                && let Some(start) = introduced.take()
            {
                ranges.push((start, with_v(fixed)));
            }
        }
    }
    ranges
}

/// The fixed version of the first range that holds `version`.
pub fn fixed_for<'a>(ranges: &'a [FixedRange], version: &str) -> Option<&'a str> {
    use ferry_module::compare_semver;
    use std::cmp::Ordering::{Greater, Less};
    ranges
        .iter()
        .find(|(introduced, fixed)| {
            compare_semver(version, introduced) != Less && compare_semver(version, fixed) == Less
        })
        .map(|(_, fixed)| fixed.as_str())
        .filter(|fixed| compare_semver(fixed, version) == Greater)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_in_a_fixed_range_is_affected_and_others_are_not() {
        let osv = br#"{"id":"GO-1","affected":[
            {"package":{"name":"example.com/m"},"ranges":[{"type":"SEMVER","events":[
                {"introduced":"0"},{"fixed":"1.0.1"},{"introduced":"1.2.0"},{"fixed":"1.2.3"},{"introduced":"2.0.0"}]}]},
            {"package":{"name":"example.com/other"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"9.0.0"}]}]}]}"#;
        let ranges = fixed_ranges(osv, "example.com/m");
        assert_eq!(ranges.len(), 2);
        assert_eq!(fixed_for(&ranges, "v1.0.0"), Some("v1.0.1"));
        assert_eq!(
            fixed_for(&ranges, "v0.0.0-20200101000000-abcdefabcdef"),
            Some("v1.0.1")
        );
        assert_eq!(fixed_for(&ranges, "v1.0.1"), None);
        assert_eq!(fixed_for(&ranges, "v1.1.0"), None);
        assert_eq!(fixed_for(&ranges, "v1.2.2"), Some("v1.2.3"));
        // Introduced without a fix: no upgrade exists, so the rule does not refuse it.
        assert_eq!(fixed_for(&ranges, "v2.1.0"), None);
        assert!(fixed_ranges(osv, "example.com/none").is_empty());
        assert!(fixed_ranges(b"not json", "example.com/m").is_empty());
    }
}
