//! Semver ranges (`semver::VersionReq`, as written in assignments and in
//! `depends`) as the interval sets pubgrub solves over
//! (`pubgrub::Ranges<semver::Version>`), and back to text for reasons.
//!
//! Each comparator becomes the interval of versions it covers in semver
//! precedence order, and comma-joined comparators intersect:
//!
//! | comparator | interval |
//! |---|---|
//! | `=1.2.3`, `1.2.3-rc.1` exact | that one version |
//! | `=1.2`, `1.2.*` | `>=1.2.0, <1.3.0` |
//! | `=1`, `1.*` | `>=1.0.0, <2.0.0` |
//! | `^1.2.3` / `^0.2.3` / `^0.0.3` | `<2.0.0` / `<0.3.0` / `<0.0.4` above the version |
//! | `~1.2.3`, `~1.2` | `>=1.2.x, <1.3.0` |
//! | `>1.2.3`, `>1.2`, `>1` | above 1.2.3, from 1.3.0, from 2.0.0 |
//! | `<=1.2`, `<1.2` | below 1.3.0, below 1.2.0 |
//! | `*` | every version |
//!
//! Exclusive upper bounds are the lowest prerelease of the bound
//! (`<2.0.0` is `< 2.0.0-0`), so no prerelease of 2.0.0 slips in below it.
//!
//! # Prerelease versions
//!
//! As in Cargo: a prerelease version (`1.3.0-beta.1`) is only ever picked
//! when some comparator of the range names a prerelease of the same
//! `major.minor.patch` (`>=1.3.0-beta.1` allows `1.3.0-beta.2` but not
//! `1.4.0-alpha`); `*`, `^1` and the like contain releases only. Interval
//! sets cannot express "no prereleases" for every version at once, so
//! [`to_ranges`] cuts out the prereleases of exactly the versions that
//! have published prereleases, which gives the same answer on every version
//! the solver can pick. One deliberate difference from the `semver` crate:
//! a partial comparator such as `<=1.2` or `=1.2` stands for its whole
//! interval even next to a prerelease comparator. Versions with build
//! metadata are refused at publish, since precedence ignores it.

use std::collections::BTreeSet;
use std::ops::Bound;

use pubgrub::Ranges;
use semver::{BuildMetadata, Comparator, Op, Prerelease, Version, VersionReq};

/// `(major, minor, patch)` of a version.
pub type Triple = (u64, u64, u64);

/// A comparator operator this crate does not know (the `semver` crate may
/// add some).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the range {range:?} uses an operator plinth-vendor does not support; use ^ ~ = > >= < <= or *"
)]
pub struct UnsupportedRange {
    pub range: String,
}

/// The versions `req` allows, given the `(major, minor, patch)` triples
/// for which the package has published prereleases (see the module doc).
pub fn to_ranges(
    req: &VersionReq,
    prerelease_triples: &BTreeSet<Triple>,
) -> Result<Ranges<Version>, UnsupportedRange> {
    let mut ranges = Ranges::full();
    let mut named: BTreeSet<Triple> = BTreeSet::new();
    for comparator in &req.comparators {
        let interval = comparator_range(comparator).ok_or_else(|| UnsupportedRange {
            range: req.to_string(),
        })?;
        ranges = ranges.intersection(&interval);
        if !comparator.pre.is_empty() {
            named.insert((
                comparator.major,
                comparator.minor.unwrap_or(0),
                comparator.patch.unwrap_or(0),
            ));
        }
    }
    for &(major, minor, patch) in prerelease_triples.difference(&named) {
        let prereleases = Ranges::between(
            lowest_prerelease(major, minor, patch),
            Version::new(major, minor, patch),
        );
        ranges = ranges.intersection(&prereleases.complement());
    }
    Ok(ranges)
}

/// The interval one comparator covers; `None` for an unknown operator.
fn comparator_range(c: &Comparator) -> Option<Ranges<Version>> {
    let major = c.major;
    let exact = |minor, patch| Version {
        major,
        minor,
        patch,
        pre: c.pre.clone(),
        build: BuildMetadata::EMPTY,
    };
    // The lowest version of the next major, or of the next minor.
    let next_major = || major.checked_add(1).map(|m| lowest_prerelease(m, 0, 0));
    let next_minor = |minor: u64| minor.checked_add(1).map(|m| lowest_prerelease(major, m, 0));
    Some(match c.op {
        Op::Exact | Op::Wildcard => match (c.minor, c.patch) {
            (Some(minor), Some(patch)) => Ranges::singleton(exact(minor, patch)),
            (Some(minor), None) => span(Version::new(major, minor, 0), next_minor(minor)),
            (None, _) => span(Version::new(major, 0, 0), next_major()),
        },
        Op::Greater => match (c.minor, c.patch) {
            (Some(minor), Some(patch)) => Ranges::strictly_higher_than(exact(minor, patch)),
            (Some(minor), None) => at_least(next_minor(minor)),
            (None, _) => at_least(next_major()),
        },
        Op::GreaterEq => match (c.minor, c.patch) {
            (Some(minor), Some(patch)) => Ranges::higher_than(exact(minor, patch)),
            (Some(minor), None) => Ranges::higher_than(Version::new(major, minor, 0)),
            (None, _) => Ranges::higher_than(Version::new(major, 0, 0)),
        },
        Op::Less => match (c.minor, c.patch) {
            // `<2.0.0` stops below 2.0.0's prereleases too.
            (Some(minor), Some(patch)) if c.pre.is_empty() => {
                Ranges::strictly_lower_than(lowest_prerelease(major, minor, patch))
            }
            (Some(minor), Some(patch)) => Ranges::strictly_lower_than(exact(minor, patch)),
            (Some(minor), None) => Ranges::strictly_lower_than(lowest_prerelease(major, minor, 0)),
            (None, _) => Ranges::strictly_lower_than(lowest_prerelease(major, 0, 0)),
        },
        Op::LessEq => match (c.minor, c.patch) {
            (Some(minor), Some(patch)) => Ranges::lower_than(exact(minor, patch)),
            (Some(minor), None) => below(next_minor(minor)),
            (None, _) => below(next_major()),
        },
        Op::Tilde => match (c.minor, c.patch) {
            (Some(minor), Some(patch)) => span(exact(minor, patch), next_minor(minor)),
            (Some(minor), None) => span(Version::new(major, minor, 0), next_minor(minor)),
            (None, _) => span(Version::new(major, 0, 0), next_major()),
        },
        Op::Caret => match (c.minor, c.patch) {
            (Some(minor), Some(patch)) => {
                let upper = if major > 0 {
                    next_major()
                } else if minor > 0 {
                    next_minor(minor)
                } else {
                    patch.checked_add(1).map(|p| lowest_prerelease(0, 0, p))
                };
                span(exact(minor, patch), upper)
            }
            (Some(minor), None) => {
                let upper = if major > 0 {
                    next_major()
                } else {
                    next_minor(minor)
                };
                span(Version::new(major, minor, 0), upper)
            }
            (None, _) => span(Version::new(major, 0, 0), next_major()),
        },
        _ => return None,
    })
}

/// `major.minor.patch-0`: below every other version with that triple.
fn lowest_prerelease(major: u64, minor: u64, patch: u64) -> Version {
    Version {
        major,
        minor,
        patch,
        pre: Prerelease::new("0").unwrap_or(Prerelease::EMPTY),
        build: BuildMetadata::EMPTY,
    }
}

/// `[lower, upper)`, unbounded above when the bound overflowed.
fn span(lower: Version, upper: Option<Version>) -> Ranges<Version> {
    match upper {
        Some(upper) => Ranges::between(lower, upper),
        None => Ranges::higher_than(lower),
    }
}

fn at_least(lower: Option<Version>) -> Ranges<Version> {
    lower.map_or_else(Ranges::empty, Ranges::higher_than)
}

fn below(upper: Option<Version>) -> Ranges<Version> {
    upper.map_or_else(Ranges::full, Ranges::strictly_lower_than)
}

/// A range for people: `>=1.2.0, <2.0.0`, `1.4.0`, `any version`, with
/// alternatives joined by ` or `. The `-0` of internal bounds is left out;
/// on the versions the solver can pick, the text means the same.
pub fn display(ranges: &Ranges<Version>) -> String {
    if ranges.is_empty() {
        return "no version".to_string();
    }
    let plain = |v: &Version| {
        if v.pre.as_str() == "0" {
            Version::new(v.major, v.minor, v.patch).to_string()
        } else {
            v.to_string()
        }
    };
    let segments: Vec<String> = ranges
        .iter()
        .map(|segment| match segment {
            (Bound::Unbounded, Bound::Unbounded) => "any version".to_string(),
            (Bound::Included(a), Bound::Included(b)) if a == b => a.to_string(),
            (lower, upper) => {
                let mut parts = Vec::new();
                match lower {
                    Bound::Included(v) => parts.push(format!(">={}", plain(v))),
                    Bound::Excluded(v) => parts.push(format!(">{v}")),
                    Bound::Unbounded => {}
                }
                match upper {
                    Bound::Included(v) => parts.push(format!("<={v}")),
                    Bound::Excluded(v) => parts.push(format!("<{}", plain(v))),
                    Bound::Unbounded => {}
                }
                parts.join(", ")
            }
        })
        .collect();
    segments.join(" or ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    fn r(text: &str) -> Ranges<Version> {
        to_ranges(&VersionReq::parse(text).unwrap(), &BTreeSet::new()).unwrap()
    }

    fn r_with(text: &str, pre: &[Triple]) -> Ranges<Version> {
        to_ranges(
            &VersionReq::parse(text).unwrap(),
            &pre.iter().copied().collect(),
        )
        .unwrap()
    }

    #[test]
    fn each_operator_becomes_its_interval() {
        assert_eq!(display(&r("^1.2.3")), ">=1.2.3, <2.0.0");
        assert_eq!(display(&r("^0.2.3")), ">=0.2.3, <0.3.0");
        assert_eq!(display(&r("^0.0.3")), ">=0.0.3, <0.0.4");
        assert_eq!(display(&r("^1.2")), ">=1.2.0, <2.0.0");
        assert_eq!(display(&r("^0.0")), ">=0.0.0, <0.1.0");
        assert_eq!(display(&r("^0")), ">=0.0.0, <1.0.0");
        assert_eq!(display(&r("~1.2.3")), ">=1.2.3, <1.3.0");
        assert_eq!(display(&r("~1.2")), ">=1.2.0, <1.3.0");
        assert_eq!(display(&r("~1")), ">=1.0.0, <2.0.0");
        assert_eq!(display(&r("=1.2.3")), "1.2.3");
        assert_eq!(display(&r("=1.2")), ">=1.2.0, <1.3.0");
        assert_eq!(display(&r("1.2.*")), ">=1.2.0, <1.3.0");
        assert_eq!(display(&r("1.*")), ">=1.0.0, <2.0.0");
        assert_eq!(display(&r(">1.2.3")), ">1.2.3");
        assert_eq!(display(&r(">1.2")), ">=1.3.0");
        assert_eq!(display(&r(">1")), ">=2.0.0");
        assert_eq!(display(&r(">=1.2.3")), ">=1.2.3");
        assert_eq!(display(&r("<1.2.3")), "<1.2.3");
        assert_eq!(display(&r("<1.2")), "<1.2.0");
        assert_eq!(display(&r("<=1.2.3")), "<=1.2.3");
        assert_eq!(display(&r("<=1.2")), "<1.3.0");
        assert_eq!(display(&r("<=1")), "<2.0.0");
        assert_eq!(display(&r("*")), "any version");
        assert_eq!(display(&r(">=1.2, <1.5")), ">=1.2.0, <1.5.0");
        assert_eq!(display(&r(">=2, <1")), "no version");
    }

    #[test]
    fn bounds_sit_exactly_where_semver_puts_them() {
        let caret = r("^1.2.3");
        assert!(!caret.contains(&v("1.2.2")));
        assert!(caret.contains(&v("1.2.3")));
        assert!(caret.contains(&v("1.99.0")));
        assert!(!caret.contains(&v("2.0.0")));
        let less = r("<=1.2.3");
        assert!(less.contains(&v("1.2.3")) && !less.contains(&v("1.2.4")));
        let greater = r(">1.2.3");
        assert!(!greater.contains(&v("1.2.3")) && greater.contains(&v("1.2.4")));
    }

    #[test]
    fn overflowing_bounds_become_unbounded() {
        let max = u64::MAX;
        assert!(r(&format!("^{max}.0.0")).contains(&Version::new(max, max, max)));
        assert!(r(&format!("~1.{max}.0")).contains(&Version::new(1, max, 7)));
        assert!(r(&format!("<={max}")).contains(&Version::new(max, 3, 0)));
        assert!(r(&format!(">{max}")).is_empty());
    }

    #[test]
    fn prereleases_only_when_named_for_the_same_triple() {
        let pre = [(2, 0, 0), (1, 3, 0)];
        // Releases only, even though prereleases are published.
        let caret = r_with("^1.2", &pre);
        assert!(!caret.contains(&v("1.3.0-beta.1")));
        assert!(caret.contains(&v("1.3.0")));
        let star = r_with("*", &pre);
        assert!(!star.contains(&v("2.0.0-rc.1")) && star.contains(&v("2.0.0")));
        // A comparator naming a 1.3.0 prerelease allows later 1.3.0 ones only.
        let named = r_with(">=1.3.0-beta.1", &pre);
        assert!(named.contains(&v("1.3.0-beta.2")));
        assert!(!named.contains(&v("1.3.0-alpha")));
        assert!(!named.contains(&v("2.0.0-rc.1")));
        assert!(named.contains(&v("2.0.0")));
        let exact = r_with("=2.0.0-rc.1", &pre);
        assert_eq!(display(&exact), "2.0.0-rc.1");
        // `<2.0.0` never admits a 2.0.0 prerelease.
        assert!(!r_with("<2.0.0", &pre).contains(&v("2.0.0-rc.1")));
        assert!(!r("<2.0.0").contains(&v("2.0.0-rc.1")));
    }

    /// On ordinary ranges the intervals agree with `semver`'s own matching.
    #[test]
    fn agrees_with_semver_matching() {
        let reqs = [
            "^1.2.3",
            "^0.2.3",
            "^0.0.3",
            "^1",
            "^0",
            "~1.2.3",
            "~0.2",
            "=1.2.3",
            "=1.2",
            "1.*",
            "*",
            ">1.2.3",
            ">1.2",
            ">=1.2",
            "<1.2.3",
            "<1.2",
            "<=1.2.3",
            "<=1",
            ">=1.2.3, <1.5.0",
            ">=1.2.0-beta.2",
            "^1.3.0-beta.1",
            "~2.0.0-rc.1",
            "=2.0.0-rc.1",
            ">1.3.0-alpha, <2",
        ];
        let versions = [
            "0.0.2",
            "0.0.3",
            "0.0.4",
            "0.2.3",
            "0.2.9",
            "0.3.0",
            "1.0.0",
            "1.2.0",
            "1.2.0-beta.1",
            "1.2.0-beta.3",
            "1.2.2",
            "1.2.3",
            "1.2.4",
            "1.3.0-alpha",
            "1.3.0-beta.1",
            "1.3.0-beta.2",
            "1.3.0",
            "1.5.0",
            "1.9.9",
            "2.0.0-rc.1",
            "2.0.0-rc.2",
            "2.0.0",
            "3.1.4",
        ];
        let pre: BTreeSet<Triple> = versions
            .iter()
            .map(|t| v(t))
            .filter(|v| !v.pre.is_empty())
            .map(|v| (v.major, v.minor, v.patch))
            .collect();
        for req in reqs {
            let parsed = VersionReq::parse(req).unwrap();
            let ranges = to_ranges(&parsed, &pre).unwrap();
            for version in versions {
                let version = v(version);
                assert_eq!(
                    ranges.contains(&version),
                    parsed.matches(&version),
                    "{req} vs {version}: ranges {}",
                    display(&ranges)
                );
            }
        }
    }
}
