//! Every solver method, one row each: the one list the checker, the command line's `--method`
//! help and "did you mean", training and the solvers read.
//!
//! A row is a name and what runs it ([`Kind`]: an explicit tableau, a Rosenbrock method,
//! `auto`, or an SDE method); everything else the code asks of a method — adaptive or fixed
//! step, error and stiffness estimates, FSAL, order, which solve options it takes, whether
//! training's discrete adjoint supports it — is read off that data, never written twice.
//!
//! Architecture Invariant: a new explicit method is one tableau constant (`tableau.rs`) plus
//! one row here; fast paths key on the tableau's properties (stage count, FSAL), never on
//! names. Rows are in the order every message lists them (ODE methods, then SDE methods).
//!
//! This module sits in `solve` but holds only data and lookups, so the checker (`sema`, which
//! runs before the solvers) reads it without depending on how a method runs
//! (`docs/architecture.md`, "Decisions").

use std::fmt;

use serde::{Serialize, Serializer};

use super::method::Method as Solver;
use super::rosenbrock::{RODAS4, RODAS5P, ROSENBROCK23, Rosenbrock};
use super::sde::method::{SOSRA, SOSRI, SRA1, SRIW1, SdeMethod};
use super::tableau::{BS3, DOPRI5, EULER, HEUN_EULER, MIDPOINT, RK4, TSIT5, Tableau};

/// What runs a method.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// An explicit Runge–Kutta tableau, run by the one generic stepper.
    Explicit(&'static Tableau),
    /// A linearly implicit (Rosenbrock / Rodas) method for stiff problems.
    Rosenbrock(&'static Rosenbrock),
    /// Tsit5, switching to a Rosenbrock partner chosen by the tolerance ([`Solver::auto`]).
    Auto,
    /// A method for `du = f dt + g dW`.
    Sde(SdeMethod),
}

/// One method: its model-file name and what runs it.
#[derive(Debug)]
pub struct Row {
    pub name: &'static str,
    pub kind: Kind,
    /// Shorthands the command line also accepts (the model file takes only `name`).
    pub aliases: &'static [&'static str],
}

const fn explicit(tab: &'static Tableau) -> Row {
    Row {
        name: tab.name,
        kind: Kind::Explicit(tab),
        aliases: &[],
    }
}

const fn rosenbrock(m: &'static Rosenbrock) -> Row {
    Row {
        name: m.name,
        kind: Kind::Rosenbrock(m),
        aliases: &[],
    }
}

const fn sde(m: SdeMethod) -> Row {
    Row {
        name: m.name(),
        kind: Kind::Sde(m),
        aliases: &[],
    }
}

/// The methods, in the order messages list them; the first of each kind is its default.
pub static METHODS: [Row; 18] = [
    explicit(&TSIT5),
    explicit(&DOPRI5),
    explicit(&BS3),
    explicit(&HEUN_EULER),
    explicit(&EULER),
    explicit(&MIDPOINT),
    explicit(&RK4),
    rosenbrock(&ROSENBROCK23),
    rosenbrock(&RODAS4),
    rosenbrock(&RODAS5P),
    Row {
        name: "auto",
        kind: Kind::Auto,
        aliases: &[],
    },
    Row {
        aliases: &["em"],
        ..sde(SdeMethod::EulerMaruyama)
    },
    sde(SdeMethod::EulerHeun),
    sde(SdeMethod::Milstein),
    sde(SdeMethod::Sri(&SRIW1)),
    sde(SdeMethod::Sri(&SOSRI)),
    sde(SdeMethod::Sra(&SRA1)),
    sde(SdeMethod::Sra(&SOSRA)),
];

/// How many rows are explicit tableaux: the length of `tableau::METHODS`.
pub const EXPLICIT_COUNT: usize = {
    let (mut i, mut n) = (0, 0);
    while i < METHODS.len() {
        if let Kind::Explicit(_) = METHODS[i].kind {
            n += 1;
        }
        i += 1;
    }
    n
};

/// The explicit rows' tableaux in the registry's order (`tableau::METHODS`).
pub const fn explicit_tableaux<const N: usize>() -> [&'static Tableau; N] {
    let mut out = [&TSIT5; N];
    let (mut i, mut j) = (0, 0);
    while i < METHODS.len() {
        if let Kind::Explicit(t) = METHODS[i].kind {
            out[j] = t;
            j += 1;
        }
        i += 1;
    }
    assert!(j == N, "N is not the number of explicit rows");
    out
}

/// The options a `solve` clause may give; [`Method::accepts`] says which apply to a method.
/// The step-size controller's are [`super::StepControl::OPTIONS`], appended rather than repeated.
pub const OPTIONS: [&str; 14] = concat(
    &["rtol", "atol", "dt", "max_steps", "h0", "batch"],
    &super::StepControl::OPTIONS,
);

/// `a` then `b`, as one array of `N = a.len() + b.len()` names (a length that does not add up
/// fails at compile time).
const fn concat<const N: usize>(a: &[&'static str], b: &[&'static str]) -> [&'static str; N] {
    assert!(a.len() + b.len() == N);
    let mut out = [""; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < b.len() {
        out[a.len() + j] = b[j];
        j += 1;
    }
    out
}

/// A method: a row of [`METHODS`]. Compared, printed and serialised by its name.
#[derive(Clone, Copy)]
pub struct Method(&'static Row);

/// `a == b` for `const fn`s (names are looked up at compile time for the named defaults).
const fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

// Named like the enum variants they replace; a misspelt name fails to compile.
#[allow(non_upper_case_globals)]
impl Method {
    /// The default explicit method (training, `solve` on an explicit tableau).
    pub const Tsit5: Method = Method::named("tsit5");
    /// The default for ODE models without a `solve` clause.
    pub const Auto: Method = Method::named("auto");
    /// The default for SDE models.
    pub const Sosri: Method = Method::named("sosri");
}

impl Method {
    const fn named(name: &str) -> Method {
        let mut i = 0;
        while i < METHODS.len() {
            if same_name(METHODS[i].name, name) {
                return Method(&METHODS[i]);
            }
            i += 1;
        }
        panic!("no such method in the registry");
    }

    /// Every method, in the registry's order.
    pub fn all() -> impl Iterator<Item = Method> {
        METHODS.iter().map(Method)
    }

    /// A method by its model-file name.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::all().find(|m| m.name() == name)
    }

    /// A method by its name or a command-line shorthand (`em`).
    pub fn parse(name: &str) -> Option<Method> {
        Method::all().find(|m| m.name() == name || m.0.aliases.contains(&name))
    }

    pub const fn name(self) -> &'static str {
        self.0.name
    }

    pub fn kind(self) -> Kind {
        self.0.kind
    }

    pub fn is_sde(self) -> bool {
        matches!(self.kind(), Kind::Sde(_))
    }

    /// Has an error estimate, so chooses its own steps; the others need `dt`.
    pub fn is_adaptive(self) -> bool {
        match self.kind() {
            Kind::Explicit(t) => t.is_adaptive(),
            Kind::Rosenbrock(_) | Kind::Auto => true,
            Kind::Sde(m) => m.is_adaptive(),
        }
    }

    /// Fixed-step methods need `dt` and have no error estimate to control.
    pub fn is_fixed_step(self) -> bool {
        !self.is_adaptive()
    }

    /// Records a stiffness estimate `S_j` per accepted step (a tableau's stage pair, a
    /// Rosenbrock method's power iteration, an SDE tableau's drift secant).
    pub fn has_stiffness_estimate(self) -> bool {
        match self.kind() {
            Kind::Explicit(t) => t.stiffness_pair.is_some(),
            Kind::Rosenbrock(_) | Kind::Auto => true,
            Kind::Sde(m) => m.is_adaptive(),
        }
    }

    /// The last stage is the next step's first (explicit and Rosenbrock methods).
    pub fn is_fsal(self) -> bool {
        match self.kind() {
            Kind::Explicit(t) => t.fsal,
            Kind::Rosenbrock(m) => m.fsal,
            Kind::Auto | Kind::Sde(_) => false,
        }
    }

    /// The order of convergence (strong order for SDE methods); `auto`'s is its explicit part's.
    pub fn order(self) -> f64 {
        match self.kind() {
            Kind::Explicit(t) => f64::from(t.order),
            Kind::Rosenbrock(m) => f64::from(m.order),
            Kind::Auto => f64::from(TSIT5.order),
            Kind::Sde(m) => m.strong_order(),
        }
    }

    /// Training's discrete adjoint runs over it: explicit tableaux and the SDE methods.
    pub fn trains(self) -> bool {
        matches!(self.kind(), Kind::Explicit(_) | Kind::Sde(_))
    }

    /// Whether the `solve` clause may give `option` (one of [`OPTIONS`]): `dt` for fixed-step
    /// methods, tolerances and `h0` for adaptive ones, the step-size controller's gains and
    /// limits (`solve::StepControl`) for adaptive ODE methods, `batch` (the step control of
    /// batched solves, `solve::BatchControl`) for explicit tableaux, `max_steps` for all.
    pub fn accepts(self, option: &str) -> bool {
        match option {
            "dt" => self.is_fixed_step(),
            "rtol" | "atol" | "h0" => self.is_adaptive(),
            o if super::StepControl::OPTIONS.contains(&o) => self.is_adaptive() && !self.is_sde(),
            "batch" => self.tableau().is_some(),
            _ => OPTIONS.contains(&option),
        }
    }

    pub fn tableau(self) -> Option<&'static Tableau> {
        match self.kind() {
            Kind::Explicit(t) => Some(t),
            _ => None,
        }
    }

    pub fn sde(self) -> Option<SdeMethod> {
        match self.kind() {
            Kind::Sde(m) => Some(m),
            _ => None,
        }
    }

    /// What the ODE driver runs for this method at tolerance `rtol` (`auto` picks its stiff
    /// partner by it); `None` for SDE methods.
    pub fn solver(self, rtol: f64) -> Option<Solver> {
        match self.kind() {
            Kind::Explicit(t) => Some(Solver::Explicit(t)),
            Kind::Rosenbrock(m) => Some(Solver::Rosenbrock(m)),
            Kind::Auto => Some(Solver::auto(rtol)),
            Kind::Sde(_) => None,
        }
    }
}

/// The names of the methods `keep` selects, in the registry's order.
pub fn names(keep: impl Fn(Method) -> bool) -> Vec<&'static str> {
    Method::all()
        .filter(|m| keep(*m))
        .map(Method::name)
        .collect()
}

/// The adaptive SDE methods grouped by the noise they are made for, for help lines:
/// `sriw1, sosri (diagonal noise), sra1 or sosra (additive noise)`.
pub fn adaptive_sde_methods() -> String {
    let of = |additive: bool| {
        names(|m| {
            matches!(m.sde(), Some(SdeMethod::Sri(_))) && !additive
                || matches!(m.sde(), Some(SdeMethod::Sra(_))) && additive
        })
    };
    let (diagonal, additive) = (of(false), of(true));
    format!(
        "{} (diagonal noise), {} (additive noise)",
        diagonal.join(", "),
        one_of(&additive)
    )
}

/// `a, b or c`: a list of method names in a help line.
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

impl PartialEq for Method {
    fn eq(&self, other: &Method) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Method {}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The help line's grouping comes from the methods' kinds (SRI: diagonal noise, SRA:
    /// additive), so a new SRA row joins the second group without anyone editing a message.
    #[test]
    fn adaptive_sde_methods_are_grouped_by_noise() {
        assert_eq!(
            adaptive_sde_methods(),
            "sriw1, sosri (diagonal noise), sra1 or sosra (additive noise)"
        );
    }

    #[test]
    fn names_are_unique_and_lookups_agree() {
        let mut all: Vec<&str> = METHODS
            .iter()
            .flat_map(|r| std::iter::once(r.name).chain(r.aliases.iter().copied()))
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a name or alias appears twice");
        for m in Method::all() {
            assert_eq!(Method::from_name(m.name()), Some(m));
            assert_eq!(Method::parse(m.name()), Some(m));
        }
        assert_eq!(
            Method::parse("em").map(Method::name),
            Some("euler_maruyama")
        );
        assert_eq!(Method::from_name("em"), None);
        assert_eq!(Method::Tsit5.name(), "tsit5");
    }

    /// Messages list ODE methods before SDE methods: the rows are grouped so.
    #[test]
    fn ode_rows_come_first() {
        let first_sde = Method::all().position(Method::is_sde).unwrap();
        assert!(Method::all().skip(first_sde).all(Method::is_sde));
    }

    #[test]
    fn properties_come_from_the_data() {
        let m = |n| Method::from_name(n).unwrap();
        assert!(m("tsit5").is_fsal() && m("tsit5").is_adaptive() && m("tsit5").trains());
        assert!(m("rk4").is_fixed_step() && m("rk4").accepts("dt") && !m("rk4").accepts("rtol"));
        assert!(m("rodas5p").is_adaptive() && !m("rodas5p").trains());
        assert!(!m("auto").accepts("dt") && m("auto").solver(1e-6).is_some());
        assert!(m("sosri").is_sde() && m("sosri").trains() && m("sosri").solver(1e-6).is_none());
        assert!(m("milstein").is_fixed_step() && !m("milstein").has_stiffness_estimate());
        assert!(!m("euler").has_stiffness_estimate());
        assert_eq!(m("sra1").order(), 1.5);
        assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
    }
}
