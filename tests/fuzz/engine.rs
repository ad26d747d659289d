//! The fuzz loop: case `i` of seed `s` mutates a seed file chosen by its own ChaCha stream
//! (`seed_from_u64(s)`, stream `i`), so any one case replays alone from `(s, i)`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::corpus::{Corpus, root};
use crate::mutate::mutate;
use crate::stages::run_case;

pub struct Config {
    pub seed: u64,
    /// The first case index (a replay of one case: `first = I`, `cases = 1`).
    pub first: u64,
    pub cases: u64,
    /// One case in this many also runs train, predict, build or the REPL (0: none).
    pub targets_every: u64,
    /// Write each crashing input to `tests/fuzz/crashes/` (the long run; never the suite).
    pub write_crashes: bool,
}

pub struct Crash {
    pub case: u64,
    pub seed_file: String,
    pub message: String,
}

#[derive(Default)]
pub struct Report {
    pub cases: u64,
    pub parsed: u64,
    /// Cases whose `fmt` output no longer parses (the first few printed).
    pub fmt_unparsable: u64,
    pub checked: u64,
    pub solved: u64,
    pub trained: u64,
    pub predicted: u64,
    pub built: u64,
    pub typed: u64,
    pub crashes: Vec<Crash>,
    pub slowest: (u64, Duration, String),
    pub elapsed: Duration,
}

impl Report {
    /// One line per crash: enough to replay it (`GLASSBOX_FUZZ_SEED`, the case index).
    pub fn crash_lines(&self) -> String {
        self.crashes
            .iter()
            .map(|c| format!("case {} ({}): {}\n", c.case, c.seed_file, c.message))
            .collect()
    }

    pub fn summary(&self, seed: u64) -> String {
        let (case, time, file) = &self.slowest;
        format!(
            "fuzz seed {seed}: {} cases in {:.1} s ({} parsed, {} whose fmt output does not parse, \
             {} checked, {} solved, {} trained, {} predicted, {} built, {} typed into the REPL), \
             {} crashes; slowest case {case} ({file}) {:.0} ms",
            self.cases,
            self.elapsed.as_secs_f64(),
            self.parsed,
            self.fmt_unparsable,
            self.checked,
            self.solved,
            self.trained,
            self.predicted,
            self.built,
            self.typed,
            self.crashes.len(),
            time.as_secs_f64() * 1e3,
        )
    }
}

/// One case's input: the seed file it came from and the mutated text.
pub fn case_input(corpus: &Corpus, seed: u64, case: u64) -> (String, String, u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(case);
    // Half the cases start from an example: those check, so their mutants reach `show` and
    // the solver; the diagnostics files mostly stop at the checker by design.
    let pool: Vec<_> = if rng.random_bool(0.5) {
        corpus
            .seeds
            .iter()
            .filter(|s| s.name.starts_with("examples/"))
            .collect()
    } else {
        corpus.seeds.iter().collect()
    };
    let base = *pool.choose(&mut rng).expect("a corpus");
    let other = corpus.seeds.choose(&mut rng).expect("a corpus");
    let text = mutate(&mut rng, &base.text, &other.text);
    (base.name.clone(), text, rng.random())
}

/// Runs the cases on a thread with the CLI's 256 MiB stack (the same defence in depth).
pub fn fuzz(corpus: &Corpus, config: &Config) -> Report {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(256 * 1024 * 1024)
            .spawn_scoped(s, || fuzz_here(corpus, config))
            .expect("a fuzz thread")
            .join()
            .expect("the fuzz loop itself does not panic")
    })
}

fn fuzz_here(corpus: &Corpus, config: &Config) -> Report {
    let start = Instant::now();
    let mut report = Report::default();
    for case in config.first..config.first + config.cases {
        let (name, text, pick) = case_input(corpus, config.seed, case);
        let out = run_case(&name, &text, &corpus.loader, pick, config.targets_every);
        report.cases += 1;
        report.parsed += u64::from(out.parsed);
        if out.fmt_unparsable {
            report.fmt_unparsable += 1;
            if report.fmt_unparsable <= 3 {
                eprintln!(
                    "fuzz: fmt output does not parse: seed {} case {case} ({name})",
                    config.seed
                );
            }
        }
        report.checked += u64::from(out.checked);
        report.solved += u64::from(out.solved);
        report.trained += u64::from(out.trained);
        report.predicted += u64::from(out.predicted);
        report.built += u64::from(out.built);
        report.typed += u64::from(out.typed);
        if out.elapsed > report.slowest.1 {
            report.slowest = (case, out.elapsed, name.clone());
        }
        if let Some(message) = out.panic {
            eprintln!(
                "fuzz crash: seed {} case {case} ({name}): {message}",
                config.seed
            );
            if config.write_crashes {
                write_crash(config.seed, case, &name, &message, &text);
            }
            report.crashes.push(Crash {
                case,
                seed_file: name,
                message,
            });
        }
    }
    report.elapsed = start.elapsed();
    report
}

/// `tests/fuzz/crashes/seed-S-case-I.gbx`: a header in the regression format, then the input.
fn write_crash(seed: u64, case: u64, name: &str, message: &str, text: &str) {
    let dir = root().join("tests/fuzz/crashes");
    let path: PathBuf = dir.join(format!("seed-{seed}-case-{case}.gbx"));
    let one_line = message.replace('\n', " ");
    let body = format!("# fuzz: seed {seed} case {case}: {one_line}\n# as: {name}\n{text}");
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, body)) {
        eprintln!("cannot write {}: {e}", path.display());
    }
}
