//! The fuzz harness (issue 16): a seeded mutation fuzzer over `examples/*.gbx` and
//! `tests/diagnostics/*.gbx`, run in process through parse, fmt, check, diagnostic rendering,
//! `show`'s IR passes, a capped JIT solve, and train, predict, build and the REPL on mutated
//! models and data files. See `tests/fuzz/README.md`.
//!
//! - `bounded_fuzz`: a fixed seed, a few thousand cases, in the suite.
//! - `regressions_replay`: every `tests/fuzz/regressions/*.gbx` (each a crash once found).
//! - `long_fuzz` (ignored): `GLASSBOX_FUZZ_CASES` cases of `GLASSBOX_FUZZ_SEED`, crashing
//!   inputs written to `tests/fuzz/crashes/`.

mod corpus;
mod engine;
mod mutate;
mod stages;
mod targets;

use corpus::{Corpus, root};
use engine::{Config, fuzz};

/// The suite's seed and case count: enough to cover every mutation on every seed file many
/// times, small enough for well under a minute in a debug build.
const SUITE_SEED: u64 = 16;
const SUITE_CASES: u64 = 3_000;
/// Cases of the suite that also run train, predict, build and the REPL.
const SUITE_TARGET_CASES: u64 = 150;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[test]
fn bounded_fuzz() {
    let corpus = Corpus::load();
    let config = Config {
        seed: SUITE_SEED,
        first: 0,
        cases: SUITE_CASES,
        targets_every: 0,
        write_crashes: false,
    };
    let report = fuzz(&corpus, &config);
    eprintln!("{}", report.summary(config.seed));
    assert!(
        report.crashes.is_empty(),
        "{} crashes:\n{}rerun with `GLASSBOX_FUZZ_SEED={} GLASSBOX_FUZZ_CASES={} cargo test --test \
         fuzz -- --ignored long_fuzz` to write them to tests/fuzz/crashes/",
        report.crashes.len(),
        report.crash_lines(),
        config.seed,
        config.cases
    );
    assert!(
        report.checked > 0 && report.solved > 0,
        "mutants never reach the solver"
    );
}

/// Past `solve`: every case also runs one of train, predict or build, and one in four types
/// the mutant into a REPL session (each such case costs ~50x one that stops after `solve`).
#[test]
fn bounded_fuzz_past_solve() {
    let corpus = Corpus::load();
    let config = Config {
        seed: SUITE_SEED,
        first: 0,
        cases: SUITE_TARGET_CASES,
        targets_every: 1,
        write_crashes: false,
    };
    let report = fuzz(&corpus, &config);
    eprintln!("{}", report.summary(config.seed));
    assert!(
        report.crashes.is_empty(),
        "{} crashes:\n{}rerun with `GLASSBOX_FUZZ_SEED={} GLASSBOX_FUZZ_CASES={} \
         GLASSBOX_FUZZ_TARGETS=1 cargo test --test fuzz -- --ignored long_fuzz`",
        report.crashes.len(),
        report.crash_lines(),
        config.seed,
        config.cases
    );
    assert!(
        report.trained > 0 && report.predicted > 0 && report.built > 0 && report.typed > 0,
        "mutants never reach train, predict, build or the REPL: {}",
        report.summary(config.seed)
    );
}

#[test]
#[ignore = "hours-long: GLASSBOX_FUZZ_CASES=100000 cargo test --release --test fuzz -- --ignored long_fuzz"]
fn long_fuzz() {
    let corpus = Corpus::load();
    let config = Config {
        seed: env_u64("GLASSBOX_FUZZ_SEED", 1),
        first: env_u64("GLASSBOX_FUZZ_FIRST", 0),
        cases: env_u64("GLASSBOX_FUZZ_CASES", 100_000),
        targets_every: env_u64("GLASSBOX_FUZZ_TARGETS", 16),
        write_crashes: true,
    };
    let report = fuzz(&corpus, &config);
    eprintln!("{}", report.summary(config.seed));
    assert!(
        report.crashes.is_empty(),
        "{} crashes, written to tests/fuzz/crashes/:\n{}",
        report.crashes.len(),
        report.crash_lines()
    );
}

/// Each regression file is a past crash: `# fuzz: what it was` first, optionally `# as: NAME`
/// (the file name the checker saw, so its data paths resolve), optionally `# known-failing:
/// why` (skipped with the reason printed), then the input exactly as it crashed.
#[test]
fn regressions_replay() {
    let corpus = Corpus::load();
    let dir = root().join("tests/fuzz/regressions");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fuzz/regressions")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "gbx"))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no regression files in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("a regression file is UTF-8");
        let header = |key: &str| {
            text.lines()
                .take_while(|l| l.starts_with('#'))
                .find_map(|l| l.strip_prefix(key).map(str::trim))
        };
        assert!(
            header("# fuzz:").is_some(),
            "{}: no `# fuzz:` line",
            path.display()
        );
        if let Some(why) = header("# known-failing:") {
            eprintln!("skipped {}: known failing: {why}", path.display());
            continue;
        }
        let rel = format!(
            "tests/fuzz/regressions/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        let name = header("# as:").map_or(rel, str::to_string);
        // Every `show` flag and print form: 120 picks cover `pick % 5` × `pick / 40 % 3`.
        for pick in 0..120 {
            let out = stages::run_case(&name, &text, &corpus.loader, pick, 0);
            if let Some(msg) = out.panic {
                failures.push(format!("{} (pick {pick}): {msg}", path.display()));
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "regressions crash again:\n{}",
        failures.join("\n")
    );
}
