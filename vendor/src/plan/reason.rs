//! Wording for unsatisfiable plans: pubgrub's derivation explained with
//! the customer's assignments as typed (`^2`), ranges printed without the
//! solver's internal `-0` bounds, and plain verbs. The chaining of the
//! explanation (`Because …, And because …`) is pubgrub's
//! `DefaultStringReporter`; only the phrases come from here.

use std::collections::BTreeMap;

use pubgrub::{Derived, External, Map, Ranges, ReportFormatter, Term};
use semver::Version;

use super::{Assignment, Node, range::display};

type Vs = Ranges<Version>;

pub(super) struct Formatter {
    /// Plugin → the assigned range as typed.
    assigned: BTreeMap<String, String>,
}

impl Formatter {
    pub(super) fn new(assignments: &[Assignment]) -> Self {
        Self {
            assigned: assignments
                .iter()
                .map(|a| (a.plugin.clone(), a.range.to_string()))
                .collect(),
        }
    }

    fn versions(set: &Vs) -> String {
        match set.as_singleton() {
            Some(v) => v.to_string(),
            None => display(set),
        }
    }

    fn term(package: &Node, term: &Term<Vs>) -> String {
        match (package, term) {
            (Node::Customer(_), _) => package.to_string(),
            (_, Term::Positive(set)) => format!("{package} {}", Self::versions(set)),
            (_, Term::Negative(set)) => format!("{package} outside {}", Self::versions(set)),
        }
    }
}

impl ReportFormatter<Node, Vs, String> for Formatter {
    type Output = String;

    fn format_external(&self, external: &External<Node, Vs, String>) -> String {
        match external {
            External::NotRoot(package, _) => format!("we are planning for {package}"),
            External::NoVersions(package, set) => {
                if set == &Ranges::full() {
                    format!("no version of {package} is published")
                } else {
                    format!(
                        "no published version of {package} is in {}",
                        Self::versions(set)
                    )
                }
            }
            External::Custom(package, set, why) => {
                format!("{package} {} cannot be used: {why}", Self::versions(set))
            }
            External::FromDependencyOf(Node::Customer(_), _, Node::Package(dep), set) => {
                match self.assigned.get(dep) {
                    Some(typed) => format!(
                        "{} is assigned {dep} {typed} ({})",
                        external_root(external),
                        Self::versions(set)
                    ),
                    None => format!(
                        "{} is assigned {dep} {}",
                        external_root(external),
                        Self::versions(set)
                    ),
                }
            }
            External::FromDependencyOf(package, set, dep, dep_set) => {
                let who = if set == &Ranges::full() {
                    format!("every version of {package}")
                } else {
                    format!("{package} {}", Self::versions(set))
                };
                format!("{who} depends on {dep} {}", Self::versions(dep_set))
            }
        }
    }

    fn format_terms(&self, terms: &Map<Node, Term<Vs>>) -> String {
        let terms: Vec<_> = terms.iter().collect();
        match terms.as_slice() {
            [] => "no plan exists".into(),
            [(Node::Customer(name), Term::Positive(_))] => {
                format!("the assignments of customer {name} cannot all be met")
            }
            [(package, Term::Positive(set))] => {
                format!("{package} {} cannot be used", Self::versions(set))
            }
            [(package, Term::Negative(set))] => {
                format!("{package} {} is required", Self::versions(set))
            }
            [(p1, Term::Positive(r1)), (p2, Term::Negative(r2))]
            | [(p2, Term::Negative(r2)), (p1, Term::Positive(r1))] => self.format_external(
                &External::FromDependencyOf((*p1).clone(), r1.clone(), (*p2).clone(), r2.clone()),
            ),
            slice => {
                let parts: Vec<String> = slice.iter().map(|(p, t)| Self::term(p, t)).collect();
                format!("{} cannot all be installed together", parts.join(", "))
            }
        }
    }

    fn explain_both_external(
        &self,
        external1: &External<Node, Vs, String>,
        external2: &External<Node, Vs, String>,
        current_terms: &Map<Node, Term<Vs>>,
    ) -> String {
        format!(
            "Because {} and {}, {}.",
            self.format_external(external1),
            self.format_external(external2),
            self.format_terms(current_terms)
        )
    }

    fn explain_both_ref(
        &self,
        ref_id1: usize,
        derived1: &Derived<Node, Vs, String>,
        ref_id2: usize,
        derived2: &Derived<Node, Vs, String>,
        current_terms: &Map<Node, Term<Vs>>,
    ) -> String {
        format!(
            "Because {} ({ref_id1}) and {} ({ref_id2}), {}.",
            self.format_terms(&derived1.terms),
            self.format_terms(&derived2.terms),
            self.format_terms(current_terms)
        )
    }

    fn explain_ref_and_external(
        &self,
        ref_id: usize,
        derived: &Derived<Node, Vs, String>,
        external: &External<Node, Vs, String>,
        current_terms: &Map<Node, Term<Vs>>,
    ) -> String {
        format!(
            "Because {} ({ref_id}) and {}, {}.",
            self.format_terms(&derived.terms),
            self.format_external(external),
            self.format_terms(current_terms)
        )
    }

    fn and_explain_external(
        &self,
        external: &External<Node, Vs, String>,
        current_terms: &Map<Node, Term<Vs>>,
    ) -> String {
        format!(
            "And because {}, {}.",
            self.format_external(external),
            self.format_terms(current_terms)
        )
    }

    fn and_explain_ref(
        &self,
        ref_id: usize,
        derived: &Derived<Node, Vs, String>,
        current_terms: &Map<Node, Term<Vs>>,
    ) -> String {
        format!(
            "And because {} ({ref_id}), {}.",
            self.format_terms(&derived.terms),
            self.format_terms(current_terms)
        )
    }

    fn and_explain_prior_and_external(
        &self,
        prior_external: &External<Node, Vs, String>,
        external: &External<Node, Vs, String>,
        current_terms: &Map<Node, Term<Vs>>,
    ) -> String {
        format!(
            "And because {} and {}, {}.",
            self.format_external(prior_external),
            self.format_external(external),
            self.format_terms(current_terms)
        )
    }
}

/// The root package of a `FromDependencyOf`, for wording.
fn external_root(external: &External<Node, Vs, String>) -> String {
    match external {
        External::FromDependencyOf(package, ..) => package.to_string(),
        _ => String::new(),
    }
}
