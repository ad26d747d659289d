//! The README's commands run as written: every command line of its "Set up" and "A short tour"
//! shell blocks is listed in [`TOUR`], in README order, and run with this build's binary in a
//! scratch copy of `examples/` (so `runs/`, `r.png`, `lorenz.csv`… land there, never in the
//! checkout), each exiting with its documented status and checked for one thing of its output.
//!
//! A line added to the README without an entry here fails [`every_readme_command_runs`] with the
//! line; an entry whose line left the README fails it too. The only changes made to a command
//! are the [`Sub`]s of its entry, each with its reason: ones that keep the command's meaning
//! but make it cheap in a debug build.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How a README command is changed before it runs; each use carries its reason.
#[derive(Clone, Copy)]
enum Sub {
    /// `cargo run --release -- ` becomes `glassbox ` (this build's binary: a debug one).
    Binary,
    /// Append these arguments (an iteration count for a training line that has none).
    Append(&'static str),
    /// Replace the first text with the second (a smaller count).
    Replace(&'static str, &'static str),
    /// Give the command this text on stdin (the REPL's inputs).
    Stdin(&'static str),
    /// Run nothing: the line is not a command of the tour.
    NotRun,
}

/// What a command must do: its exit status, and one check of its output.
struct Step {
    /// The README's line, trailing `# comment` removed.
    readme: &'static str,
    subs: &'static [Sub],
    /// Why the substitutions keep the command's meaning (empty when there are none).
    why: &'static str,
    /// The exit status: `None` for success.
    fails_with: Option<&'static str>,
    /// Text its stdout must contain (empty: no such check).
    prints: &'static str,
    check: fn(&Ran),
}

/// A command's result in the scratch directory.
struct Ran<'a> {
    dir: &'a Path,
    line: &'a str,
    out: String,
    err: String,
}

impl Ran<'_> {
    fn file(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir.join(path))
            .unwrap_or_else(|e| panic!("`{}`: {path}: {e}", self.line))
    }

    fn png(&self, path: &str) {
        let bytes = std::fs::read(self.dir.join(path))
            .unwrap_or_else(|e| panic!("`{}`: {path}: {e}", self.line));
        assert!(
            bytes.len() > 100 && bytes.starts_with(b"\x89PNG"),
            "`{}`: {path} is not a PNG",
            self.line
        );
    }

    fn out_has(&self, text: &str) {
        self.has("stdout", &self.out, text);
    }

    fn err_has(&self, text: &str) {
        self.has("stderr", &self.err, text);
    }

    fn has(&self, stream: &str, output: &str, text: &str) {
        assert!(
            output.contains(text),
            "`{}`: {stream} lacks {text:?}:\n{output}",
            self.line
        );
    }

    /// A CSV file's header and its number of data rows.
    fn csv(&self, text: &str, header: &str, rows: usize) {
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.first().copied(), Some(header), "`{}`", self.line);
        assert_eq!(lines.len() - 1, rows, "`{}`: data rows", self.line);
    }
}

/// A step run as written, exiting 0.
const fn step(readme: &'static str, check: fn(&Ran)) -> Step {
    changed(readme, &[], "", check)
}

/// A step run with substitutions, for the reason given, exiting 0.
const fn changed(
    readme: &'static str,
    subs: &'static [Sub],
    why: &'static str,
    check: fn(&Ran),
) -> Step {
    Step {
        readme,
        subs,
        why,
        fails_with: None,
        prints: "",
        check,
    }
}

/// A step run as written, exiting 0 and printing this text.
const fn prints(readme: &'static str, text: &'static str) -> Step {
    Step {
        prints: text,
        ..step(readme, |_| {})
    }
}

const TRAIN_COUNT: &str = "the README's iteration count takes minutes in a debug build; a few \
                           iterations run the same loop, report, run directory and plots";

/// Every command line of the README's "Set up" and "A short tour" shell blocks, in order.
const TOUR: &[Step] = &[
    changed(
        "cargo run --release -- train examples/spiral.gbx --plot",
        &[Sub::Binary, Sub::Append("--iterations 20")],
        "the test runs the binary cargo built for it (debug); 2 000 iterations are slow there",
        |r| {
            r.png("runs/spiral/fit.png");
            assert!(r.dir.join("runs/spiral/weights.safetensors").is_file());
        },
    ),
    changed(
        "cargo test",
        &[Sub::NotRun],
        "it is the suite this test is part of",
        |_| {},
    ),
    step("glassbox check examples/*.gbx", |r| {
        let gbx = std::fs::read_dir(r.dir.join("examples"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "gbx")
            })
            .count();
        let ok = r.out.lines().filter(|l| l.ends_with(".gbx ok")).count();
        assert_eq!(ok, gbx, "`{}`: every example ok:\n{}", r.line, r.out);
    }),
    prints(
        "glassbox check examples/spiral.gbx",
        "examples/spiral.gbx ok",
    ),
    step("glassbox check examples/*.gbx --format json", |r| {
        assert!(
            r.out.trim_start().starts_with('['),
            "`{}`: a JSON array",
            r.line
        );
        r.out_has("\"file\": \"examples/spiral.gbx\"");
    }),
    prints("glassbox show examples/lotka_volterra_ude.gbx", "dx/dt = "),
    prints(
        "glassbox show examples/lotka_volterra_ude.gbx --vjp",
        "vjp_x = ",
    ),
    prints(
        "glassbox show examples/lorenz.gbx --jacobian --latex",
        "\\begin{bmatrix}",
    ),
    prints(
        "glassbox show examples/robertson.gbx --dt 2",
        "# time derivative d^2u/dt^2",
    ),
    prints("glassbox show examples/digits.gbx --ir", " = matvec %"),
    prints(
        "glassbox show examples/digits.gbx --vjp --clif",
        "function u0:0(",
    ),
    step(
        "glassbox solve examples/robertson.gbx --stats --plot r.png",
        |r| {
            r.png("r.png");
            r.out_has("method            auto");
        },
    ),
    step(
        "glassbox solve examples/lorenz.gbx --at 0:20:201 -o lorenz.csv",
        |r| r.csv(&r.file("lorenz.csv"), "t,x,y,z", 201),
    ),
    step(
        "glassbox solve examples/robertson.gbx --method rodas5p --repeat 20 --stats",
        |r| r.err_has("(median of 20)"),
    ),
    step(
        "glassbox solve examples/spiral_sde.gbx --paths 8 --seed 1 -o x.csv",
        |r| {
            let csv = r.file("x.csv");
            assert!(
                csv.starts_with("path,t,u[0],u[1]\n"),
                "`{}`: {csv:.80}",
                r.line
            );
            assert!(
                csv.lines().any(|l| l.starts_with("7,")),
                "`{}`: 8 paths",
                r.line
            );
        },
    ),
    step(
        "glassbox solve examples/spiral_sde.gbx --plot s.png --stats",
        |r| {
            r.png("s.png");
            r.out_has("paths             100");
        },
    ),
    step(
        "glassbox solve examples/spiral_sde.gbx --paths 20 --grad",
        |r| {
            assert!(r.out.starts_with("param,gradient\n"), "`{}`", r.line);
            r.out_has("\ndrift.W1[0,0],");
        },
    ),
    changed(
        "glassbox train examples/van_der_pol.gbx --plot",
        &[Sub::Append("--iterations 20")],
        TRAIN_COUNT,
        |r| {
            r.png("runs/van_der_pol/loss.png");
            assert!(r.file("runs/van_der_pol/run.json").contains("van_der_pol"));
        },
    ),
    prints(
        "glassbox train examples/spiral.gbx --iterations 200 --seed 1 --out runs/s1",
        "iterations        200",
    ),
    changed(
        "glassbox train examples/digits.gbx --epochs 3",
        &[Sub::Replace("--epochs 3", "--epochs 1")],
        "an epoch of the classifier takes ~10 s in a debug build; one runs the same loop, \
              validation and report",
        |r| r.out_has("validation"),
    ),
    // `new.csv` is written before this step: the digits data's 64 feature columns of its
    // first 20 rows, label dropped (see `write_new_csv`).
    step(
        "glassbox predict examples/digits.gbx --weights runs/digits --input new.csv",
        |r| {
            let header: Vec<String> = std::iter::once("class".to_string())
                .chain((0..10).map(|k| format!("logit_{k}")))
                .collect();
            r.csv(&r.out, &header.join(","), 20);
        },
    ),
    step("glassbox train examples/spiral.gbx --resume runs/s1", |r| {
        r.err_has("already finished (iteration 200 of 200)");
        r.out_has("iterations        200");
    }),
    changed(
        "glassbox train examples/spiral.gbx --backend tape --out runs/tape",
        &[Sub::Append("--iterations 10")],
        TRAIN_COUNT,
        |r| r.out_has("iterations        10"),
    ),
    Step {
        readme: "glassbox train examples/spiral.gbx --device cuda --out runs/cuda",
        subs: &[],
        why: "",
        // Built with `--features cuda` this needs a GPU; such builds run it by hand.
        fails_with: Some("glassbox::cuda_not_built"),
        prints: "",
        check: |r| r.err_has("built without CUDA support"),
    },
    step(
        "glassbox predict examples/spiral.gbx --weights runs/s1 --at 0:25:501 -o fit.csv",
        |r| r.csv(&r.file("fit.csv"), "t,y[0],y[1]", 501),
    ),
    prints("glassbox params runs/van_der_pol", "\nmu    = "),
    changed(
        "glassbox train examples/ou_fit.gbx --plot",
        &[Sub::Append("--iterations 10")],
        TRAIN_COUNT,
        |r| r.png("runs/ou_fit/fit.png"),
    ),
    step(
        "glassbox build examples/spiral.gbx --weights runs/s1 -o spiral && ./spiral --at 0:25:501",
        |r| {
            let predicted = r.file("fit.csv");
            assert!(
                r.out == predicted,
                "`{}`: the binary's output differs from predict's fit.csv",
                r.line
            );
        },
    ),
    step("glassbox fmt examples/spiral.gbx --check", |r| {
        let original = std::fs::read_to_string(root().join("examples/spiral.gbx")).unwrap();
        assert_eq!(r.file("examples/spiral.gbx"), original, "`{}`", r.line);
    }),
    changed(
        "glassbox repl examples/lorenz.gbx",
        &[Sub::Stdin("x*y\n:diff x*y wrt x\n:solve --over 0:5\n")],
        "the README's suggested inputs, typed",
        |r| {
            r.out_has("d(x*y)/dx = y");
            r.out_has("tsit5: t = 0 → 5");
        },
    ),
];

/// The command lines of the shell blocks under the README's "Set up" and "A short tour"
/// headings, trailing comments removed, with their line numbers.
fn readme_commands(readme: &str) -> Vec<(usize, String)> {
    let mut commands = Vec::new();
    let (mut section, mut in_sh, mut in_block) = (false, false, false);
    for (n, line) in readme.lines().enumerate() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = heading == "Set up" || heading == "A short tour";
        } else if line.trim_start().starts_with("```") {
            in_sh = !in_block && line.trim_start() == "```sh";
            in_block = !in_block;
        } else if section && in_sh {
            let command = line.split(" #").next().unwrap().trim();
            if !command.is_empty() {
                commands.push((n + 1, command.to_string()));
            }
        }
    }
    commands
}

/// A message naming each README command that has no entry in [`TOUR`].
fn uncovered(commands: &[(usize, String)]) -> Vec<String> {
    commands
        .iter()
        .filter(|(_, command)| !TOUR.iter().any(|s| s.readme == command))
        .map(|(line, command)| {
            format!(
                "README.md:{line}: `{command}` has no entry in tests/suite/readme.rs TOUR (add one: \
                 how it runs and what it checks)"
            )
        })
        .collect()
}

/// The command a step runs: its README line with its substitutions applied.
fn command_of(step: &Step) -> String {
    let mut command = step.readme.to_string();
    for sub in step.subs {
        match *sub {
            Sub::Binary => {
                command = command.replacen("cargo run --release -- ", "glassbox ", 1);
            }
            Sub::Append(args) => command = format!("{command} {args}"),
            Sub::Replace(from, to) => {
                assert!(command.contains(from), "`{}`: no {from:?}", step.readme);
                command = command.replacen(from, to, 1);
            }
            Sub::Stdin(_) | Sub::NotRun => {}
        }
    }
    // Every part of a chain is this binary or one a part before it built with `-o NAME`.
    let mut built: Vec<String> = Vec::new();
    for part in command.split("&&").map(str::trim) {
        let words: Vec<&str> = part.split_whitespace().collect();
        let known = words[0] == "glassbox" || built.iter().any(|b| words[0] == format!("./{b}"));
        assert!(
            known,
            "`{}`: `{part}` runs neither glassbox nor a binary the line builds",
            step.readme
        );
        if let Some(i) = words.iter().position(|w| *w == "-o") {
            built.extend(words.get(i + 1).map(|w| w.to_string()));
        }
    }
    command
}

/// A scratch copy of `examples/` in the temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh scratch directory in the temp dir holding a copy of `examples/`.
fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("glassbox-readme-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let scratch = Scratch(dir);
    copy_dir(&root().join("examples"), &scratch.0.join("examples"));
    scratch
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// `new.csv` for the digits `predict` line: the feature columns (0..64) of the digits data's
/// first 20 rows, the label column dropped.
fn write_new_csv(dir: &Path) {
    let data = std::fs::read_to_string(dir.join("examples/data/digits.csv")).unwrap();
    let rows: Vec<String> = data
        .lines()
        .take(20)
        .map(|l| l.split(',').take(64).collect::<Vec<_>>().join(","))
        .collect();
    std::fs::write(dir.join("new.csv"), rows.join("\n") + "\n").unwrap();
}

fn run(dir: &Path, command: &str, stdin: Option<&str>) -> Output {
    use std::io::Write;
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_glassbox")).parent().unwrap();
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn every_readme_command_runs() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let commands = readme_commands(&readme);
    assert!(
        commands.len() > 20,
        "found only {} README commands",
        commands.len()
    );
    let missing = uncovered(&commands);
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    let listed: Vec<&str> = TOUR.iter().map(|s| s.readme).collect();
    let found: Vec<&str> = commands.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(
        listed, found,
        "TOUR lists the README's commands in README order"
    );

    let scratch = scratch("tour");
    write_new_csv(&scratch.0);

    let started = Instant::now();
    for step in TOUR {
        if step.subs.iter().any(|s| matches!(s, Sub::NotRun)) {
            assert!(!step.why.is_empty(), "`{}`: not run, say why", step.readme);
            continue;
        }
        let command = command_of(step);
        assert!(
            step.subs.is_empty() == step.why.is_empty(),
            "`{}`: a substitution needs its reason, and a reason its substitution",
            step.readme
        );
        let stdin = step.subs.iter().find_map(|s| match s {
            Sub::Stdin(text) => Some(*text),
            _ => None,
        });
        let fails_with = step.fails_with.filter(|_| !cfg!(feature = "cuda"));
        let t = Instant::now();
        let output = run(&scratch.0, &command, stdin);
        let ran = Ran {
            dir: &scratch.0,
            line: &command,
            out: String::from_utf8_lossy(&output.stdout).into_owned(),
            err: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        match fails_with {
            None => assert!(
                output.status.success(),
                "`{command}` failed ({}):\n{}",
                output.status,
                ran.err
            ),
            Some(code) => {
                assert_eq!(output.status.code(), Some(1), "`{command}`: exit status");
                ran.err_has(code);
            }
        }
        ran.out_has(step.prints);
        (step.check)(&ran);
        eprintln!("{:>6.2} s  {command}", t.elapsed().as_secs_f64());
    }
    eprintln!("{:>6.2} s  the tour", started.elapsed().as_secs_f64());
}

#[test]
fn a_readme_command_without_an_entry_is_named() {
    let readme = "## A short tour\n\n```sh\nglassbox check examples/spiral.gbx   # ok\n\
                  glassbox solve examples/new.gbx --fast   # a new line\n```\n\n\
                  ## Other\n\n```sh\nglassbox not-the-tour\n```\n";
    let commands = readme_commands(readme);
    assert_eq!(
        commands,
        [
            (4, "glassbox check examples/spiral.gbx".to_string()),
            (5, "glassbox solve examples/new.gbx --fast".to_string())
        ]
    );
    let missing = uncovered(&commands);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].starts_with("README.md:5: `glassbox solve examples/new.gbx --fast`"),
        "{}",
        missing[0]
    );
}

/// The README's transcripts (a block that opens with `$ glassbox …`) are this build's output.
#[test]
fn every_readme_transcript_is_the_output_of_its_command() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let scratch = scratch("transcripts");
    let mut count = 0;
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("```") {
            let block: Vec<&str> = lines
                .by_ref()
                .take_while(|l| !l.starts_with("```"))
                .collect();
            let Some(command) = block.first().and_then(|l| l.strip_prefix("$ ")) else {
                continue;
            };
            assert!(command.starts_with("glassbox "), "`{command}`");
            let output = run(&scratch.0, command, None);
            assert!(output.status.success(), "`{command}` failed");
            let expected: String = block[1..].iter().map(|l| format!("{l}\n")).collect();
            assert_eq!(
                String::from_utf8_lossy(&output.stdout),
                expected,
                "`{command}`"
            );
            count += 1;
        }
    }
    assert!(count >= 1, "found no transcript");
}
