//! One case through every stage a user reaches with `check`, `show`, `fmt` and
//! `solve --over 0:1`, then (drawn per case) `train`, `predict`, `build` and the REPL
//! (`targets.rs`), in process, under `catch_unwind`. Solves are capped in steps and paths so
//! no case can hang; `show`'s flags are drawn per case from `pick`.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::time::{Duration, Instant};

use glassbox::app::SolveRequest;
use glassbox::app::solve::{SolvePlan, plan, run_ode};
use glassbox::diag::Diag;
use glassbox::ir::lower::{Part, lower, split_output_by_slots};
use glassbox::ir::{Function, jacobian, jvp, print_latex, print_text, time_derivatives, vjp};
use glassbox::kit::render_diag;
use glassbox::sema::{Model, ModelKind};
use glassbox::source::Loader;

use crate::targets;

/// Most accepted steps of a fuzz solve: a stiff or blown-up mutant stops with
/// `glassbox::max_steps` in milliseconds instead of grinding through the default 100 000.
const MAX_SOLVE_STEPS: usize = 300;
/// Models larger than this are checked, lowered and differentiated, but not compiled and
/// solved: a JIT compile of a 2^24-element field is a legitimate minute, not a finding.
const MAX_SOLVE_SIZE: usize = 4_096;

/// What happened to one case.
pub struct Outcome {
    /// `Some(stage: message)` when a stage panicked.
    pub panic: Option<String>,
    pub elapsed: Duration,
    pub parsed: bool,
    /// It parsed, but `fmt`'s output does not: not a crash, reported as a finding.
    pub fmt_unparsable: bool,
    pub checked: bool,
    pub solved: bool,
    /// Reached the end of `train` (steps and report), `predict`, `build`, or ran in the REPL.
    pub trained: bool,
    pub predicted: bool,
    pub built: bool,
    pub typed: bool,
}

thread_local! {
    /// The stage running now, so a panic report says where it happened.
    static STAGE: Cell<&'static str> = const { Cell::new("start") };
    /// The message of the last panic on this thread, taken by the hook.
    static PANIC: Cell<Option<String>> = const { Cell::new(None) };
}

pub fn stage(name: &'static str) {
    if std::env::var_os("GLASSBOX_FUZZ_TRACE").is_some() {
        eprintln!("fuzz stage: {name} ({:?})", std::time::SystemTime::now());
    }
    STAGE.with(|s| s.set(name));
}

/// Replaces the default hook (which would print every caught panic with a backtrace) by one
/// that records the message and location for the report.
fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            PANIC.with(|p| p.set(Some(format!("{msg} at {at}"))));
        }));
    });
}

/// Runs `text` (named `name`, so relative data paths resolve as for that file) through the
/// pipeline; `pick` chooses `show`'s flags.
pub fn run_case(
    name: &str,
    text: &str,
    loader: &dyn Loader,
    pick: u64,
    targets_every: u64,
) -> Outcome {
    quiet_panics();
    let start = Instant::now();
    let mut out = Outcome {
        panic: None,
        elapsed: Duration::ZERO,
        parsed: false,
        fmt_unparsable: false,
        checked: false,
        solved: false,
        trained: false,
        predicted: false,
        built: false,
        typed: false,
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        pipeline(name, text, loader, pick, targets_every, &mut out)
    }));
    if result.is_err() {
        let msg = PANIC.with(|p| p.take()).unwrap_or_default();
        out.panic = Some(format!("{}: {msg}", STAGE.with(Cell::get)));
    }
    out.elapsed = start.elapsed();
    out
}

/// `targets_every`: one case in that many also runs `train`, `predict`, `build` or the REPL
/// (`targets.rs`; 0: none), which cost ~50x a case that stops after `solve`.
fn pipeline(
    name: &str,
    text: &str,
    loader: &dyn Loader,
    pick: u64,
    targets_every: u64,
    out: &mut Outcome,
) {
    stage("decode");
    let file = match glassbox::syntax::decode(name, text.as_bytes().to_vec()) {
        Ok(f) => f,
        Err(d) => return render(&[d]),
    };
    stage("parse");
    let (program, parse_diags) = glassbox::syntax::parse(&file);
    render(&parse_diags);
    if !parse_diags.iter().any(Diag::is_error) {
        out.parsed = true;
        stage("fmt");
        let formatted = glassbox::syntax::format(&program);
        stage("fmt reparse");
        let again = glassbox::source::SourceFile::new(name, formatted);
        let (_, again_diags) = glassbox::syntax::parse(&again);
        out.fmt_unparsable = again_diags.iter().any(Diag::is_error);
    }
    stage("check");
    let checked = glassbox::check_source(&file, loader);
    stage("render");
    render(&checked.diags);
    // The later stages draw from their own stream; `pick`'s low digits choose `show`'s flags.
    let mut rng = targets::rng_for(pick);
    let later = pick / 120;
    let targeted = targets_every > 0 && (later / 32).is_multiple_of(targets_every);
    let small = checked
        .model
        .as_ref()
        .is_none_or(|m| m.state_size <= MAX_SOLVE_SIZE && m.param_size <= 16 * MAX_SOLVE_SIZE);
    if targeted && (later / 8).is_multiple_of(4) {
        // The REPL solves only a file that checks and is small: a session typed from a file
        // that fails keeps the declarations that were fine alone, which the whole file's size
        // check never weighed (seed 1, case 31313: `state a[16777216]`, exactly at the limit,
        // then `:solve --over 0:1e308`: a legitimate 16M-state solve, 11 minutes in debug).
        targets::repl(text, &mut rng, small && checked.model.is_some());
        out.typed = true;
    }
    let Some(model) = checked.model else { return };
    out.checked = true;
    let located = |d: Diag| render(&[d.in_file(&file)]);
    if let Err(d) = show(&model, pick) {
        located(d);
    }
    if !small {
        return;
    }
    match solve(&model) {
        Ok(()) => out.solved = true,
        Err(ds) => ds.into_iter().for_each(located),
    }
    if !targeted {
        return;
    }
    // Train, predict and build read the data again, a mutated copy in half the cases.
    let data = targets::MutatedData {
        base: loader,
        rng: std::cell::RefCell::new(targets::rng_for(pick.rotate_left(17))),
        mutate: later % 2 == 1,
    };
    match later / 2 % 4 {
        0 | 3 => match targets::train(&file, &model, &data, &mut rng) {
            Ok(trained) => out.trained = trained,
            Err(ds) => render(&ds),
        },
        1 => match targets::predict(&file, &model, &data, &mut rng) {
            Ok(()) => out.predicted = true,
            Err(ds) => render(&ds),
        },
        _ => match targets::build(&file, &model, &data) {
            Ok(()) => out.built = true,
            Err(ds) => render(&ds),
        },
    }
}

/// Every diagnostic drawn as the CLI draws it (miette has panicked on long lines before).
fn render(diags: &[Diag]) {
    stage("render");
    for d in diags {
        std::hint::black_box(render_diag(d));
    }
}

/// `show` with the flags `pick` draws: the field (and diffusion), then one of `--vjp`,
/// `--jvp`, `--jacobian`, `--dt K`, each printed as text, LaTeX or compiled (`--clif`).
fn show(model: &Model, pick: u64) -> Result<(), Diag> {
    stage("show: lower");
    let field = lower(model, Part::Field)?;
    let mut parts = vec![field.clone()];
    if model.kind == ModelKind::Sde {
        parts.push(lower(model, Part::Diffusion)?);
    }
    let ir = glassbox::ir::lower::internal;
    match pick % 5 {
        0 => {}
        1 => {
            stage("show --vjp");
            let f = vjp(&field, &["u", "p"], "v").map_err(ir)?;
            let f = split_output_by_slots(&f, "vjp_u", "u", "vjp_");
            parts.push(split_output_by_slots(&f, "vjp_p", "p", "vjp_"));
        }
        2 => {
            stage("show --jvp");
            parts.push(jvp(&field, "u", "w").map_err(ir)?);
        }
        3 => {
            stage("show --jacobian");
            parts.push(jacobian(&field, "u").map_err(ir)?);
        }
        _ => {
            stage("show --dt");
            let k = 1 + (pick / 5 % 8) as usize;
            let mut all = time_derivatives(&field, k, Some("t"), "u").map_err(ir)?;
            parts.extend(all.pop());
        }
    }
    for f in &parts {
        print(f, pick / 40 % 3)?;
    }
    Ok(())
}

fn print(f: &Function, form: u64) -> Result<(), Diag> {
    match form {
        0 => {
            stage("show: print text");
            std::hint::black_box(print_text(f));
        }
        1 => {
            stage("show --latex");
            std::hint::black_box(print_latex(f));
        }
        _ => {
            stage("show --clif");
            let k = glassbox::jit::compile(f, "fuzz")?;
            std::hint::black_box(k.clif());
        }
    }
    Ok(())
}

/// `solve --over 0:1` (SDE models: two paths on one thread), at most [`MAX_SOLVE_STEPS`].
fn solve(model: &Model) -> Result<(), Vec<Diag>> {
    stage("solve: plan");
    let req = SolveRequest {
        over: Some("0:1".into()),
        paths: (model.kind == ModelKind::Sde).then_some(2),
        threads: Some(1),
        ..SolveRequest::default()
    };
    let p = glassbox::solve::param_values(model);
    match plan(&req, model)? {
        SolvePlan::Ode(mut plan) => {
            plan.opts.max_steps = MAX_SOLVE_STEPS;
            stage("solve: ode");
            run_ode(model, &plan, &p, 1)?;
        }
        SolvePlan::Sde(mut plan) | SolvePlan::Gradient(mut plan) => {
            plan.opts.max_steps = MAX_SOLVE_STEPS;
            stage("solve: sde");
            glassbox::app::sde::run(model, &plan, &p, 1)?;
        }
    }
    Ok(())
}
