//! A method is one registry row: the names the checker accepts, the names `glassbox solve
//! --method` accepts and lists, and the method tables of the docs are the registry's
//! (`glassbox::solve::registry`), so a new row needs nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;

use glassbox::solve::registry::{self, Method};
use glassbox::source::{DiskLoader, SourceFile};

fn model(name: &str, sde: bool, solve: &str) -> String {
    let eq = if sde {
        "state u = 1\ndu = -u dt + 0.1 dW"
    } else {
        "state u = 1\ndu/dt = -u"
    };
    format!("model {name}\n{eq}\n{solve}\n")
}

/// `solve NAME` with the options the method takes.
fn clause(m: Method) -> String {
    if m.is_fixed_step() {
        format!("solve {}(dt = 0.1) over [0, 1]", m.name())
    } else {
        format!("solve {}(rtol = 1e-4) over [0, 1]", m.name())
    }
}

#[test]
fn the_checker_accepts_exactly_the_registry() {
    for m in Method::all() {
        let file = SourceFile::new("m.gbx", model("m", m.is_sde(), &clause(m)));
        let checked = glassbox::check_source(&file, &DiskLoader);
        let spec = checked.model.and_then(|model| model.solve);
        assert_eq!(spec.map(|s| s.method), Some(m), "{:?}", checked.diags);
        // The other kind of model refuses it, naming the right methods.
        let file = SourceFile::new("m.gbx", model("m", !m.is_sde(), &clause(m)));
        let diags = glassbox::check_source(&file, &DiskLoader).diags;
        let mismatch = diags
            .iter()
            .find(|d| d.code == "glassbox::method_mismatch")
            .expect("a mismatch");
        let want = registry::names(|other| other.is_sde() != m.is_sde());
        assert_eq!(
            mismatch.help.as_deref(),
            Some(format!("use {}", registry::one_of(&want)).as_str())
        );
    }
    let file = SourceFile::new("m.gbx", model("m", false, "solve tsit6 over [0, 1]"));
    let diags = glassbox::check_source(&file, &DiskLoader).diags;
    assert_eq!(diags[0].code, "glassbox::unknown_method");
    assert_eq!(diags[0].help.as_deref(), Some("did you mean `tsit5`?"));
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("gbx-methods-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn glassbox(args: &[&str], file: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .arg("solve")
        .arg(file)
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn solve_accepts_and_lists_exactly_the_registry() {
    let d = scratch();
    let (ode, sde) = (d.join("ode.gbx"), d.join("sde.gbx"));
    std::fs::write(&ode, model("ode", false, "")).expect("writes");
    std::fs::write(&sde, model("sde", true, "")).expect("writes");
    let aliases = registry::METHODS.iter().flat_map(|r| {
        r.aliases
            .iter()
            .map(|a| Method::parse(a).expect("an alias"))
    });
    for (name, m) in Method::all().map(|m| (m.name(), m)).chain(
        registry::METHODS
            .iter()
            .flat_map(|r| r.aliases.iter().copied())
            .zip(aliases),
    ) {
        let file = if m.is_sde() { &sde } else { &ode };
        let mut args = vec!["--method", name, "--over", "0:1", "--stats"];
        if m.is_fixed_step() {
            args.extend(["--dt", "0.1"]);
        }
        let o = glassbox(&args, file);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{name}: {stderr}");
        let method_line = format!("{:<18}{}", "method", m.name());
        assert!(stderr.contains(&method_line), "{name}: {stderr}");
    }
    let o = glassbox(&["--method", "tsit6"], &ode);
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean `tsit5`?"));
    let help = Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .args(["solve", "--help"])
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&help.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let listed = |sde: bool| registry::names(|m| m.is_sde() == sde).join(" ");
    let want = format!("ODE: {}; SDE: {}", listed(false), listed(true));
    assert!(help.contains(&want), "{help}");
}

fn doc(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join(name),
    )
    .expect("readable")
}

/// The backticked names in the first column of the Markdown table under `header`.
fn first_column(markdown: &str, header: &str) -> Vec<String> {
    let rows = markdown
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    rows.flat_map(|row| {
        let first = row.split('|').nth(1).unwrap_or("");
        first
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect::<Vec<_>>()
    })
    .collect()
}

#[test]
fn the_language_reference_lists_exactly_the_registry() {
    let mut listed = first_column(&doc("language.md"), "| method | kind | notes |");
    let mut names: Vec<String> = Method::all().map(|m| m.name().to_string()).collect();
    listed.sort();
    names.sort();
    assert_eq!(listed, names);
}

/// Every method has a row of its own in one of the solver guide's tables (the explicit, the
/// Rosenbrock, the Robertson and the SDE tables).
#[test]
fn the_solver_guide_has_a_table_row_for_every_method() {
    let text = doc("solvers.md");
    let first_cells: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|row| row.split('|').nth(1))
        .collect();
    for m in Method::all() {
        let cell = format!("`{}`", m.name());
        assert!(
            first_cells.iter().any(|c| c.contains(&cell)),
            "docs/solvers.md has no table row for {cell}"
        );
    }
}
