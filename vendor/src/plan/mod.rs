//! Plans: the exact package versions a customer should run, solved with
//! pubgrub from the customer's assignments and the `depends` of every
//! published version.
//!
//! The solver's root is a virtual package, the customer, which depends on
//! each assigned plugin with its range; each published version depends on
//! the ranges in its manifest. Among the versions that fit, the newest are
//! picked. A plan lists its packages in install order: dependencies before
//! dependents, ties broken by name, so the same inputs always give the same
//! plan. When no set of versions fits, [`Unsatisfiable`] carries pubgrub's
//! derivation in words that name the plugins and ranges involved.

pub mod range;
mod reason;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::fmt;

use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyProvider, PackageResolutionStatistics,
    PubGrubError, Ranges, Reporter, resolve,
};
use semver::{Version, VersionReq};
use serde::Serialize;

use crate::db::catalog::PackageRecord;
use range::Triple;

/// What the solver knows about one published version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub size: u64,
    pub sha256: String,
    pub depends: BTreeMap<String, VersionReq>,
}

/// Every published version of every package.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    packages: BTreeMap<String, BTreeMap<Version, CatalogEntry>>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: &str, version: Version, entry: CatalogEntry) {
        self.packages
            .entry(name.to_owned())
            .or_default()
            .insert(version, entry);
    }

    pub fn from_records(records: impl IntoIterator<Item = PackageRecord>) -> Self {
        let mut catalog = Self::new();
        for r in records {
            catalog.insert(
                &r.name,
                r.version,
                CatalogEntry {
                    size: r.size,
                    sha256: r.sha256,
                    depends: r.depends,
                },
            );
        }
        catalog
    }

    pub fn versions(&self, name: &str) -> Option<&BTreeMap<Version, CatalogEntry>> {
        self.packages.get(name)
    }

    /// Names of the packages that depend on `name`, directly or through
    /// others, in any published version; `name` itself included.
    pub fn dependents_of(&self, name: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::from([name.to_owned()]);
        loop {
            let more: Vec<String> = self
                .packages
                .iter()
                .filter(|(p, _)| !found.contains(*p))
                .filter(|(_, versions)| {
                    versions
                        .values()
                        .any(|e| e.depends.keys().any(|d| found.contains(d)))
                })
                .map(|(p, _)| p.clone())
                .collect();
            if more.is_empty() {
                return found;
            }
            found.extend(more);
        }
    }

    /// The `(major, minor, patch)` triples of `name` that have published
    /// prereleases (see [`range`]).
    fn prerelease_triples(&self, name: &str) -> BTreeSet<Triple> {
        self.packages
            .get(name)
            .into_iter()
            .flat_map(|versions| versions.keys())
            .filter(|v| !v.pre.is_empty())
            .map(|v| (v.major, v.minor, v.patch))
            .collect()
    }
}

/// A customer's assignment: run `plugin` within `range`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub plugin: String,
    pub range: VersionReq,
}

/// One package version of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedPackage {
    pub name: String,
    pub version: Version,
    pub size: u64,
    pub sha256: String,
}

/// The versions a customer should run, in install order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub customer: String,
    pub packages: Vec<PlannedPackage>,
}

impl fmt::Display for Plan {
    /// `goods 1.1.0, hello 0.2.0`, or `nothing` for an empty plan.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.packages.is_empty() {
            return f.write_str("nothing");
        }
        let items: Vec<String> = self
            .packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect();
        f.write_str(&items.join(", "))
    }
}

/// No versions satisfy the customer's assignments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no plan for customer {customer}: {reason}")]
pub struct Unsatisfiable {
    pub customer: String,
    /// Why, in sentences naming the plugins and ranges involved.
    pub reason: String,
}

/// Solves the customer's plan.
pub fn plan(
    customer: &str,
    assignments: &[Assignment],
    catalog: &Catalog,
) -> Result<Plan, Unsatisfiable> {
    let unsatisfiable = |reason: String| Unsatisfiable {
        customer: customer.to_owned(),
        reason,
    };
    let provider = Provider {
        customer,
        assignments,
        catalog,
    };
    let root = Node::Customer(customer.to_owned());
    let solution = match resolve(&provider, root, ROOT_VERSION) {
        Ok(solution) => solution,
        // Not collapsed: with the "no versions" facts folded away, a
        // missing plugin would read as a bare assignment with no verdict.
        Err(PubGrubError::NoSolution(tree)) => {
            let formatter = reason::Formatter::new(assignments);
            return Err(unsatisfiable(DefaultStringReporter::report_with_formatter(
                &tree, &formatter,
            )));
        }
        Err(e) => return Err(unsatisfiable(e.to_string())),
    };
    let mut chosen: BTreeMap<String, (Version, &CatalogEntry)> = BTreeMap::new();
    for (node, version) in solution {
        if let Node::Package(name) = node {
            let entry = catalog
                .versions(&name)
                .and_then(|versions| versions.get(&version))
                .ok_or_else(|| {
                    unsatisfiable(format!(
                        "the solver picked {name} {version}, which is not published"
                    ))
                })?;
            chosen.insert(name, (version, entry));
        }
    }
    let order = install_order(&chosen).map_err(unsatisfiable)?;
    let packages = order
        .into_iter()
        .filter_map(|name| {
            chosen.get(&name).map(|(version, entry)| PlannedPackage {
                name: name.clone(),
                version: version.clone(),
                size: entry.size,
                sha256: entry.sha256.clone(),
            })
        })
        .collect();
    Ok(Plan {
        customer: customer.to_owned(),
        packages,
    })
}

/// Kahn's algorithm over the chosen versions, always taking the
/// alphabetically first package whose dependencies are all placed.
fn install_order(
    chosen: &BTreeMap<String, (Version, &CatalogEntry)>,
) -> Result<Vec<String>, String> {
    let mut waiting: BTreeMap<&str, BTreeSet<&str>> = chosen
        .iter()
        .map(|(name, (_, entry))| {
            let deps = entry
                .depends
                .keys()
                .map(String::as_str)
                .filter(|d| chosen.contains_key(*d))
                .collect();
            (name.as_str(), deps)
        })
        .collect();
    let mut order = Vec::with_capacity(chosen.len());
    while !waiting.is_empty() {
        let Some(next) = waiting
            .iter()
            .find(|(_, deps)| deps.is_empty())
            .map(|(name, _)| *name)
        else {
            let cycle: Vec<&str> = waiting.keys().copied().collect();
            return Err(format!(
                "{} depend on each other in a cycle, so there is no order to install them in; \
                 remove the cycle from their plugin.toml `depends` and publish new versions",
                cycle.join(", ")
            ));
        };
        waiting.remove(next);
        for deps in waiting.values_mut() {
            deps.remove(next);
        }
        order.push(next.to_owned());
    }
    Ok(order)
}

/// The root's version; the customer node has just this one.
const ROOT_VERSION: Version = Version::new(0, 0, 0);

/// A package as the solver sees it: the customer (the root) or a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Node {
    Customer(String),
    Package(String),
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Customer(name) => write!(f, "customer {name}"),
            Node::Package(name) => f.write_str(name),
        }
    }
}

struct Provider<'a> {
    customer: &'a str,
    assignments: &'a [Assignment],
    catalog: &'a Catalog,
}

impl Provider<'_> {
    fn constraint(&self, name: &str, req: &VersionReq) -> Result<Ranges<Version>, String> {
        range::to_ranges(req, &self.catalog.prerelease_triples(name)).map_err(|e| e.to_string())
    }

    fn dependencies<'r>(
        &self,
        deps: impl Iterator<Item = (&'r String, &'r VersionReq)>,
    ) -> Dependencies<Node, Ranges<Version>, String> {
        let mut constraints = Vec::new();
        for (name, req) in deps {
            match self.constraint(name, req) {
                Ok(ranges) => constraints.push((Node::Package(name.clone()), ranges)),
                Err(reason) => return Dependencies::Unavailable(reason),
            }
        }
        Dependencies::Available(constraints.into_iter().collect())
    }
}

impl DependencyProvider for Provider<'_> {
    type P = Node;
    type V = Version;
    type VS = Ranges<Version>;
    type M = String;
    type Err = Infallible;
    /// Packages with no fitting version first (fail fast), then most
    /// conflicts, then fewest fitting versions: pubgrub's usual heuristic
    /// of deciding the most constrained package early.
    type Priority = (u32, Reverse<usize>);

    fn prioritize(
        &self,
        package: &Node,
        range: &Ranges<Version>,
        statistics: &PackageResolutionStatistics,
    ) -> Self::Priority {
        let fitting = match package {
            Node::Customer(_) => 1,
            Node::Package(name) => self.catalog.versions(name).map_or(0, |versions| {
                versions.keys().filter(|v| range.contains(v)).count()
            }),
        };
        if fitting == 0 {
            return (u32::MAX, Reverse(0));
        }
        (statistics.conflict_count(), Reverse(fitting))
    }

    fn choose_version(
        &self,
        package: &Node,
        range: &Ranges<Version>,
    ) -> Result<Option<Version>, Infallible> {
        Ok(match package {
            Node::Customer(_) => range.contains(&ROOT_VERSION).then_some(ROOT_VERSION),
            Node::Package(name) => self
                .catalog
                .versions(name)
                .and_then(|versions| versions.keys().rev().find(|v| range.contains(v)).cloned()),
        })
    }

    fn get_dependencies(
        &self,
        package: &Node,
        version: &Version,
    ) -> Result<Dependencies<Node, Ranges<Version>, String>, Infallible> {
        Ok(match package {
            Node::Customer(name) if name == self.customer => {
                self.dependencies(self.assignments.iter().map(|a| (&a.plugin, &a.range)))
            }
            Node::Customer(_) => Dependencies::Available(Vec::new().into_iter().collect()),
            Node::Package(name) => match self.catalog.versions(name).and_then(|v| v.get(version)) {
                Some(entry) => self.dependencies(entry.depends.iter()),
                None => Dependencies::Unavailable("it is not published".to_string()),
            },
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(deps: &[(&str, &str)]) -> CatalogEntry {
        CatalogEntry {
            size: 100,
            sha256: "ab".repeat(32),
            depends: deps
                .iter()
                .map(|(n, r)| (n.to_string(), VersionReq::parse(r).unwrap()))
                .collect(),
        }
    }

    /// `(name, version, depends)` of one published version.
    type Published<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

    fn catalog(items: &[Published<'_>]) -> Catalog {
        let mut c = Catalog::new();
        for (name, version, deps) in items {
            c.insert(name, Version::parse(version).unwrap(), entry(deps));
        }
        c
    }

    fn assign(items: &[(&str, &str)]) -> Vec<Assignment> {
        items
            .iter()
            .map(|(p, r)| Assignment {
                plugin: p.to_string(),
                range: VersionReq::parse(r).unwrap(),
            })
            .collect()
    }

    fn names(plan: &Plan) -> Vec<String> {
        plan.packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect()
    }

    #[test]
    fn a_single_assignment_picks_its_newest_fitting_version() {
        let c = catalog(&[
            ("hello", "0.1.0", &[]),
            ("hello", "0.1.5", &[]),
            ("hello", "0.2.0", &[]),
        ]);
        let plan = plan("acme", &assign(&[("hello", "^0.1")]), &c).unwrap();
        assert_eq!(names(&plan), ["hello 0.1.5"]);
        assert_eq!(plan.to_string(), "hello 0.1.5");
        let plan = super::plan("acme", &assign(&[("hello", "*")]), &c).unwrap();
        assert_eq!(names(&plan), ["hello 0.2.0"]);
    }

    #[test]
    fn transitive_dependencies_come_first_in_install_order() {
        let c = catalog(&[
            ("base", "1.0.0", &[]),
            ("base", "1.4.0", &[]),
            ("base", "2.0.0", &[]),
            ("hello", "0.2.0", &[("base", "^1.1")]),
            ("goods", "1.1.0", &[("hello", "^0.2"), ("base", ">=1.0")]),
        ]);
        let plan = plan("acme", &assign(&[("goods", "^1")]), &c).unwrap();
        assert_eq!(names(&plan), ["base 1.4.0", "hello 0.2.0", "goods 1.1.0"]);
        assert_eq!(plan.packages[0].size, 100);
    }

    #[test]
    fn an_older_version_is_picked_when_the_newest_conflicts() {
        let c = catalog(&[
            ("base", "1.0.0", &[]),
            ("base", "2.0.0", &[]),
            ("goods", "1.0.0", &[("base", "^1")]),
            ("goods", "1.1.0", &[("base", "^2")]),
            ("report", "1.0.0", &[("base", "^1")]),
        ]);
        let plan = plan("acme", &assign(&[("goods", "^1"), ("report", "^1")]), &c).unwrap();
        assert_eq!(names(&plan), ["base 1.0.0", "goods 1.0.0", "report 1.0.0"]);
    }

    #[test]
    fn a_missing_version_gives_a_reason_naming_plugin_and_range() {
        let c = catalog(&[("goods", "1.1.0", &[])]);
        let err = plan("acme", &assign(&[("goods", "^2")]), &c).unwrap_err();
        assert_eq!(err.customer, "acme");
        assert!(err.reason.contains("goods"), "{}", err.reason);
        assert!(err.reason.contains("^2"), "{}", err.reason);
        assert!(err.reason.contains(">=2.0.0, <3.0.0"), "{}", err.reason);
        assert!(err.to_string().starts_with("no plan for customer acme: "));

        let err = plan("acme", &assign(&[("nothing-here", "*")]), &c).unwrap_err();
        assert!(err.reason.contains("nothing-here"), "{}", err.reason);
        assert!(err.reason.contains("no version"), "{}", err.reason);
    }

    #[test]
    fn conflicting_dependencies_explain_the_chain() {
        let c = catalog(&[
            ("base", "1.0.0", &[]),
            ("base", "2.0.0", &[]),
            ("goods", "1.0.0", &[("base", "^2")]),
            ("report", "1.0.0", &[("base", "^1")]),
        ]);
        let err = plan(
            "acme",
            &assign(&[("goods", "^1"), ("report", "=1.0.0")]),
            &c,
        )
        .unwrap_err();
        for word in [
            "goods",
            "report",
            "base",
            ">=2.0.0, <3.0.0",
            ">=1.0.0, <2.0.0",
        ] {
            assert!(
                err.reason.contains(word),
                "{word} missing from: {}",
                err.reason
            );
        }
    }

    #[test]
    fn a_dependency_cycle_is_reported_not_ordered() {
        let c = catalog(&[
            ("a-plug", "1.0.0", &[("b-plug", "*")]),
            ("b-plug", "1.0.0", &[("a-plug", "*")]),
        ]);
        let err = plan("acme", &assign(&[("a-plug", "*")]), &c).unwrap_err();
        assert!(err.reason.contains("cycle"), "{}", err.reason);
    }

    #[test]
    fn no_assignments_is_an_empty_plan() {
        let plan = plan("acme", &[], &Catalog::new()).unwrap();
        assert!(plan.packages.is_empty());
        assert_eq!(plan.to_string(), "nothing");
    }

    #[test]
    fn prereleases_are_picked_only_when_asked_for() {
        let c = catalog(&[("goods", "1.1.0", &[]), ("goods", "1.2.0-beta.1", &[])]);
        let plan = plan("acme", &assign(&[("goods", "^1")]), &c).unwrap();
        assert_eq!(names(&plan), ["goods 1.1.0"]);
        let plan = super::plan("acme", &assign(&[("goods", ">=1.2.0-beta.1")]), &c).unwrap();
        assert_eq!(names(&plan), ["goods 1.2.0-beta.1"]);
    }

    #[test]
    fn dependents_are_found_transitively() {
        let c = catalog(&[
            ("base", "1.0.0", &[]),
            ("hello", "0.2.0", &[("base", "^1")]),
            ("goods", "1.1.0", &[("hello", "^0.2")]),
            ("other", "1.0.0", &[]),
        ]);
        let found: Vec<String> = c.dependents_of("base").into_iter().collect();
        assert_eq!(found, ["base", "goods", "hello"]);
    }
}
