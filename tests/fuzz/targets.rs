//! The stages past `check`, `show` and `solve` that a user reaches with a model and its data:
//! `train` (one step and the final report), `predict` (`--at` strings, a classifier's
//! `--input`), `build` (planning and emitting the object file; no C compiler is run) and the
//! REPL (the mutated file typed line by line, then commands with mutated flags). Data files
//! are mutated too, through [`MutatedData`], so the loaders meet broken CSVs. All in process
//! and bounded: solver steps are capped, and nothing is written to the disk.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use glassbox::app::predict::PredictRequest;
use glassbox::diag::Diag;
use glassbox::sema::{Model, Stop};
use glassbox::source::{Loader, SourceFile};
use glassbox::train::Overrides;

use crate::stages::stage;

/// The solver steps a training or prediction solve of a fuzz case may take (as for `solve`).
const MAX_STEPS: u64 = 300;

/// A loader that serves the corpus, with every CSV it reads mutated by one byte- or
/// field-level edit drawn from `rng` (when `mutate` is set).
pub struct MutatedData<'a> {
    pub base: &'a dyn Loader,
    pub rng: RefCell<ChaCha8Rng>,
    pub mutate: bool,
}

impl Loader for MutatedData<'_> {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let bytes = self.base.read(path)?;
        let is_data = path.extension().is_some_and(|e| e == "csv");
        if !self.mutate || !is_data {
            return Ok(bytes);
        }
        Ok(mutate_csv(&mut self.rng.borrow_mut(), bytes))
    }
}

/// Extreme and malformed field values a CSV cell may be replaced by.
const CELLS: &[&str] = &[
    "",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "1e308",
    "-1e308",
    "1e-320",
    "0",
    "-0",
    "-1",
    "abc",
    "1,2",
    "\"",
    "100000000000",
    "0x10",
    "1e",
    "+",
    " 3 ",
    "\u{feff}1",
];

fn mutate_csv(rng: &mut ChaCha8Rng, bytes: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    match rng.random_range(0..9) {
        0 => return bytes[..rng.random_range(0..=bytes.len())].to_vec(),
        1 => return Vec::new(),
        2 => {
            let mut out = "\u{feff}".as_bytes().to_vec();
            out.extend_from_slice(&bytes);
            return out;
        }
        3 if !lines.is_empty() => {
            let i = rng.random_range(0..lines.len());
            lines.remove(i);
        }
        4 if !lines.is_empty() => {
            let i = rng.random_range(0..lines.len());
            let line = lines[i].clone();
            lines.insert(i, line);
        }
        5 if !lines.is_empty() => {
            // The header: a column renamed, dropped or duplicated.
            let mut cols: Vec<String> = lines[0].split(',').map(str::to_string).collect();
            let j = rng.random_range(0..cols.len());
            match rng.random_range(0..3) {
                0 => cols[j] = "zz".into(),
                1 => {
                    cols.remove(j);
                }
                _ => {
                    let c = cols[j].clone();
                    cols.push(c);
                }
            }
            lines[0] = cols.join(",");
        }
        6 if !lines.is_empty() => {
            // A row with a cell too few or too many.
            let i = rng.random_range(0..lines.len());
            if rng.random_bool(0.5) {
                if let Some(k) = lines[i].rfind(',') {
                    lines[i].truncate(k);
                }
            } else {
                lines[i].push_str(",1");
            }
        }
        _ if lines.len() > 1 => {
            // Cells replaced by extremes (one to three; times too).
            for _ in 0..rng.random_range(1..=3) {
                let i = rng.random_range(1..lines.len());
                let mut cells: Vec<String> = lines[i].split(',').map(str::to_string).collect();
                let j = rng.random_range(0..cells.len());
                cells[j] = CELLS.choose(rng).expect("cells").to_string();
                lines[i] = cells.join(",");
            }
        }
        _ => {}
    }
    let mut out = lines.join(if rng.random_bool(0.1) { "\r\n" } else { "\n" });
    out.push('\n');
    out.into_bytes()
}

/// `model` with its solver's steps capped, so a stiff or blown-up mutant stops quickly.
fn capped(mut model: Model) -> Model {
    if let Some(s) = model.solve.as_mut() {
        let m = s.options.max_steps.unwrap_or(MAX_STEPS).min(MAX_STEPS);
        s.options.max_steps = Some(m);
    }
    model
}

/// `glassbox train FILE --iterations 1|2 --threads 1`: setup (data loading, seeding), the
/// steps, then the final report on the full data. `Ok(false)`: the model does not train.
pub fn train(
    file: &Arc<SourceFile>,
    model: &Model,
    loader: &dyn Loader,
    rng: &mut ChaCha8Rng,
) -> Result<bool, Vec<Diag>> {
    if model.train.is_none() {
        return Ok(false);
    }
    let ov = Overrides {
        stop: Some(Stop::Iterations {
            n: rng.random_range(1..=2),
        }),
        seed: Some(rng.random_range(0..4)),
        checkpoint_every: None,
        threads: Some(1),
    };
    stage("train: setup");
    let setup = glassbox::app::train::setup(file, capped(model.clone()), loader, &ov, None)?;
    let mut trainer = setup.trainer;
    let loc = |d: Diag| vec![d.in_file(file)];
    while !trainer.done() {
        stage("train: step");
        trainer.step().map_err(loc)?;
    }
    stage("train: report");
    glassbox::app::train::final_report(&trainer, &setup.full).map_err(loc)?;
    Ok(true)
}

/// `--at` strings: well-formed, reversed, empty, huge and malformed.
const AT: &[&str] = &[
    "0:1:11",
    "0:25:501",
    "1:0:3",
    "0:0:1",
    "-1:1:3",
    "0:1:0",
    "0:1:1",
    "0:1e308:3",
    "nan:1:3",
    "0:inf:3",
    "0:1",
    "0:1:2:3",
    "",
    "a:b:c",
    "0:1:-3",
    "0:1:1e3",
    "0:1:2.5",
];

/// `glassbox predict FILE --at …` (or a classifier's `--input`, the model's own data file
/// mutated or not) with the model's initial parameters.
pub fn predict(
    file: &Arc<SourceFile>,
    model: &Model,
    loader: &dyn Loader,
    rng: &mut ChaCha8Rng,
) -> Result<(), Vec<Diag>> {
    stage("predict: plan");
    let model = capped(model.clone());
    let plan = glassbox::app::predict::plan(&model, file)?;
    let p = glassbox::solve::param_values(&model);
    let input = model.data.first().map(|d| d.path.clone());
    let req = PredictRequest {
        at: rng.random_bool(0.8).then(|| *AT.choose(rng).expect("at")),
        input: input.as_deref().filter(|_| rng.random_bool(0.5)),
        threads: Some(1),
    };
    stage("predict");
    glassbox::app::predict::predict(&model, file, &plan, &p, &req, loader)?;
    Ok(())
}

/// `glassbox build FILE`: the binary's plan and its object file (the link needs a C compiler
/// and the disk; `tests/suite/build.rs` runs it).
pub fn build(file: &Arc<SourceFile>, model: &Model, loader: &dyn Loader) -> Result<(), Vec<Diag>> {
    stage("build: plan");
    let parts = glassbox::app::build::plan(model, file, None, loader)?;
    let kernels = glassbox::jit::object::Kernels {
        field: &parts.field,
        derivs: parts.derivs.as_ref().map(|(j, d)| (j, d)),
        sde: parts.sde.as_ref().map(|(g, jvp)| (g, jvp.as_ref())),
        init: &parts.init,
        head: parts.head.as_ref(),
        batched: parts.batch_control.is_some(),
    };
    stage("build: emit");
    let meta = parts.meta.to_bytes();
    glassbox::jit::object::emit(&model.name, &kernels, |_| meta, &parts.p).map_err(|d| vec![d])?;
    Ok(())
}

/// REPL commands, their flags drawn from extremes; none writes a file (no `-o`, `--plot`,
/// `:save`) or reads one (`:load`), and solves are short.
const COMMANDS: &[&str] = &[
    ":list",
    ":show",
    ":show x",
    ":show y",
    ":jacobian",
    ":stats",
    ":type x",
    ":type [x, x]",
    ":diff x^2 wrt x",
    ":diff y * t wrt t",
    ":diff sin(x) wrt nothing",
    ":solve --over 0:0.5 --method rk4 --dt 0.05",
    ":solve --at 0:1:5 --method tsit5",
    ":solve --over 0:1 --seed -1",
    ":solve --over 1:0",
    ":solve --over 0:1e308",
    ":solve --at 0:1:0",
    ":solve --dt -1 --method euler --over 0:1",
    ":solve --method nope",
    ":solve --bogus",
    ":solve --paths 2 --over 0:0.5 --method euler_maruyama --dt 0.1",
    ":help",
    ":clear",
    ":undo",
    ":",
    "::",
    ":quit",
];

/// The mutated file typed into a session line by line (an open bracket joins lines, as the
/// REPL does), then a few commands. `small`: the model is small enough to solve.
pub fn repl(text: &str, rng: &mut ChaCha8Rng, small: bool) {
    let mut session = glassbox::repl::Repl::default();
    let mut pending = String::new();
    for line in text.lines() {
        // A line starting with `:` is a command: the file's text never is one, and a mutant's
        // could be `:save` or `:load` (the disk).
        if pending.is_empty() && line.trim_start().starts_with(':') {
            continue;
        }
        pending.push_str(line);
        pending.push('\n');
        if pending.len() < 100_000 && open_brackets(&pending) {
            continue;
        }
        stage("repl: input");
        if std::env::var_os("GLASSBOX_FUZZ_TRACE").is_some() {
            eprintln!("fuzz input: {pending:?}");
        }
        let _ = session.handle(&std::mem::take(&mut pending));
    }
    for _ in 0..rng.random_range(1..=4) {
        let cmd = *COMMANDS.choose(rng).expect("commands");
        if !small && (cmd.starts_with(":solve") || cmd == ":jacobian") {
            continue;
        }
        stage("repl: command");
        if std::env::var_os("GLASSBOX_FUZZ_TRACE").is_some() {
            eprintln!("fuzz command: {cmd}");
        }
        let _ = session.handle(cmd);
    }
}

/// The REPL's own rule for a continued line is private; this is the same bracket count
/// without strings and comments, which only changes where a mutant's input is split.
fn open_brackets(text: &str) -> bool {
    let mut depth = 0i64;
    for c in text.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    depth > 0
}

/// The generator of a case's later stages: its own stream, so a case replays alone.
pub fn rng_for(pick: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(pick ^ 0x7a29_e75e)
}
