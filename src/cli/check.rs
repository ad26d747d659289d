//! `glassbox check`: diagnostics, or a summary of each model.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::OutputFormat;
use crate::diag::DiagJson;
use crate::kit::{emit, load_source};
use crate::source::DiskLoader;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Model files (`*.gbx`) to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format: `human` (summaries on stdout, diagnostics on stderr) or `json` (one
    /// document on stdout).
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    ok: bool,
    diagnostics: Vec<DiagJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<crate::sema::Summary>,
}

pub fn run(args: &CheckArgs) -> ExitCode {
    let mut reports = Vec::new();
    let mut errors = 0;
    for path in &args.files {
        let (diags, summary) = match load_source(path) {
            Err(d) => (vec![d], None),
            Ok(file) => {
                let checked = crate::check_source(&file, &DiskLoader);
                let summary = checked.model.as_ref().map(crate::sema::summary);
                let mut diags = checked.diags;
                if let Some(m) = checked.model.as_ref().filter(|m| m.states.is_empty()) {
                    // Valid, but almost surely not what was meant (an empty file checks too).
                    diags.push(
                        crate::diag::Diag::warning(
                            "glassbox::no_states",
                            format!(
                                "`{}` declares no states: there is nothing to solve or train",
                                m.name
                            ),
                        )
                        .help(
                            "declare a state and its equation, e.g. `state x = 1` and `dx/dt = -x`",
                        ),
                    );
                }
                (diags, summary)
            }
        };
        let file_errors = diags.iter().filter(|d| d.is_error()).count();
        errors += file_errors;
        let ok = file_errors == 0;
        match args.format {
            OutputFormat::Human => {
                emit(&diags);
                if let (true, Some(s)) = (ok, &summary) {
                    println!("{} ok", path.display());
                    print!("{}", describe(s));
                }
            }
            OutputFormat::Json => reports.push(FileReport {
                file: path.display().to_string(),
                ok,
                diagnostics: diags.iter().map(|d| d.to_json()).collect(),
                summary: if ok { summary } else { None },
            }),
        }
    }
    if args.format == OutputFormat::Json {
        match serde_json::to_string_pretty(&reports) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("glassbox: cannot serialise the report: {e}"),
        }
    } else if errors > 0 {
        eprintln!(
            "{errors} error{} in {} file{}",
            if errors == 1 { "" } else { "s" },
            args.files.len(),
            if args.files.len() == 1 { "" } else { "s" }
        );
    }
    if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The summary as a few aligned lines.
fn describe(s: &crate::sema::Summary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let kind = match s.kind {
        crate::sema::ModelKind::Ode => "ODE",
        crate::sema::ModelKind::Sde => "SDE",
    };
    let states: Vec<String> = s
        .states
        .iter()
        .map(|st| format!("{} {}", st.name, st.shape))
        .collect();
    let _ = writeln!(out, "  model       {} ({kind})", s.name);
    let _ = writeln!(
        out,
        "  states      {} (size {})",
        states.join(", "),
        s.state_size
    );
    let _ = writeln!(
        out,
        "  parameters  {} learned, {} fixed",
        s.params_learned, s.params_fixed
    );
    for n in &s.nets {
        let sizes: Vec<String> = n.sizes.iter().map(usize::to_string).collect();
        let ctor = match n.kind {
            crate::sema::NetKind::Mlp => format!(
                "mlp({}; act = {})",
                sizes.join(", "),
                format!("{:?}", n.act).to_lowercase()
            ),
            crate::sema::NetKind::Linear => format!("linear({})", sizes.join(", ")),
        };
        let _ = writeln!(
            out,
            "  net         {} = {ctor}, {} parameters",
            n.name, n.params
        );
    }
    let _ = writeln!(out, "  equations   {}", s.equations);
    if let Some(solver) = &s.solver {
        let _ = writeln!(out, "  solver      {solver}");
    }
    if !s.objective.is_empty() {
        let _ = writeln!(out, "  objective   {}", s.objective.join(" + "));
    }
    if let Some(opt) = &s.optimizer {
        let _ = writeln!(out, "  optimizer   {opt}");
    }
    out
}
