//! Standalone binaries (`glassbox build`, `src/aot`): every example is built into a temporary
//! directory outside the project, run there, and its numbers compared with `glassbox predict`
//! (trainable models, with perturbed weights so the embedded weights are what is used),
//! `glassbox solve` (plain ODEs), or `glassbox predict --input` byte for byte (the digits
//! classifier: per row for a few rows, batched for more, and under `batch = joint`), or
//! `glassbox solve` with the same `--seed`/`--paths` (SDE models). Also: `--help`,
//! bad input, JSON output, dynamic dependencies, and the diagnostics of `build` itself (a
//! missing C compiler).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use glassbox::solve;
use glassbox::source::{DiskLoader, SourceFile};
use glassbox::train::io;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> String {
    root().join("examples").join(name).display().to_string()
}

/// A fresh directory under the system's temporary directory: no project files in reach.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gbx_build_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_in(dir: &Path, exe: &Path, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", exe.display()))
}

fn glassbox(dir: &Path, args: &[&str]) -> Output {
    run_in(dir, Path::new(env!("CARGO_BIN_EXE_glassbox")), args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// `glassbox build FILE [extra] -o dir/NAME`; the executable's path.
fn build(dir: &Path, file: &str, extra: &[&str]) -> PathBuf {
    let exe = dir.join("model-bin");
    let mut args = vec!["build", file];
    args.extend_from_slice(extra);
    args.extend(["-o", exe.to_str().unwrap()]);
    ok(&glassbox(dir, &args));
    assert!(exe.is_file());
    exe
}

/// A CSV's header and rows of numbers.
fn parse_csv(s: &str) -> (String, Vec<Vec<f64>>) {
    let mut lines = s.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let rows = lines
        .map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()).collect())
        .collect();
    (header, rows)
}

/// Same header, same shape, every value equal to relative 1e-12.
fn assert_close(got: &str, want: &str) {
    let (hg, g) = parse_csv(got);
    let (hw, w) = parse_csv(want);
    assert_eq!(hg, hw);
    assert_eq!(g.len(), w.len(), "rows");
    assert!(g.len() >= 2);
    for (rg, rw) in g.iter().zip(&w) {
        assert_eq!(rg.len(), rw.len());
        for (a, b) in rg.iter().zip(rw) {
            assert!(
                (a - b).abs() <= 1e-12 * a.abs().max(b.abs()) + 1e-300,
                "{a} vs {b}"
            );
        }
    }
}

fn load(path: &str) -> glassbox::sema::Model {
    let file = SourceFile::new(path.to_string(), std::fs::read_to_string(path).unwrap());
    let checked = glassbox::check_source(&file, &DiskLoader);
    checked
        .model
        .unwrap_or_else(|| panic!("{:?}", checked.diags))
}

/// Trainable examples: built with weights that differ from the initial ones, equal to
/// `glassbox predict` with the same weights.
fn matches_predict(name: &str, at: &str) {
    let dir = tmp(name);
    let file = example(&format!("{name}.gbx"));
    let model = load(&file);
    let p: Vec<f64> = solve::param_values(&model)
        .iter()
        .map(|v| v * 1.01 + 1e-3)
        .collect();
    let weights = dir.join("w.safetensors");
    std::fs::write(&weights, io::weights_to_safetensors(&model, &p).unwrap()).unwrap();
    let w = weights.to_str().unwrap();
    let exe = build(&dir, &file, &["--weights", w]);
    let got = ok(&run_in(&dir, &exe, &["--at", at]));
    let want = ok(&glassbox(
        &dir,
        &["predict", &file, "--weights", w, "--at", at],
    ));
    assert_close(&got, &want);
    // The embedded weights are the given ones: the initial values give other numbers.
    let initial = dir.join("w0.safetensors");
    let p0 = solve::param_values(&model);
    std::fs::write(&initial, io::weights_to_safetensors(&model, &p0).unwrap()).unwrap();
    let other = ok(&glassbox(
        &dir,
        &[
            "predict",
            &file,
            "--weights",
            initial.to_str().unwrap(),
            "--at",
            at,
        ],
    ));
    assert_ne!(got, other);
}

#[test]
fn spiral_equals_predict() {
    matches_predict("spiral", "0:2:21");
}

#[test]
fn lorenz_equals_predict() {
    matches_predict("lorenz", "0:1:11");
}

#[test]
fn van_der_pol_equals_predict() {
    matches_predict("van_der_pol", "0:1:11");
}

/// Models `predict` cannot run (no `train` clause; a term the trainer lacks): equal to
/// `glassbox solve` with the model's solver, also `auto` with its Rosenbrock half (linked
/// Jacobian kernels) on the stiff Robertson problem.
#[test]
fn other_odes_equal_solve() {
    for (name, at) in [
        ("robertson", "0:100:6"),
        ("reaction_diffusion", "0:1:5"),
        ("lotka_volterra_ude", "0:2:11"),
    ] {
        let dir = tmp(name);
        let file = example(&format!("{name}.gbx"));
        let exe = build(&dir, &file, &[]);
        let got = ok(&run_in(&dir, &exe, &["--at", at]));
        let want = ok(&glassbox(&dir, &["solve", &file, "--at", at]));
        assert_close(&got, &want);
        if name == "robertson" {
            // The stiff half ran, on the linked Jacobian kernel.
            let o = run_in(&dir, &exe, &["--at", at, "--stats", "-o", "r.csv"]);
            let stats = ok(&o);
            let jacobians = stats
                .lines()
                .find_map(|l| l.strip_prefix("jacobians"))
                .and_then(|v| v.trim().parse::<u64>().ok());
            assert!(jacobians.is_some_and(|j| j > 0), "{stats}");
        }
    }
}

/// The `solve` clause's step-size controller travels into the binary: the same steps (NFE,
/// accepted, rejected) and values as `glassbox solve` under a PID setting with `max_dt`.
#[test]
fn step_control_options_reach_the_binary() {
    let dir = tmp("control");
    let file = dir.join("decay.gbx");
    std::fs::write(
        &file,
        "model decay\nstate x = 1, y = 0\ndx/dt = -x + y\ndy/dt = -x - y\n\
         solve tsit5(rtol = 1e-6, pcoeff = 0.3, icoeff = 0.4, dcoeff = 0.1, max_dt = 0.05) \
         over [0, 1]\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let exe = build(&dir, &file, &[]);
    let steps = |stats: &str| {
        let line = |key: &str| {
            stats
                .lines()
                .find(|l| l.starts_with(key))
                .map(str::to_string)
        };
        (line("nfe "), line("steps "))
    };
    let got = ok(&run_in(&dir, &exe, &["--stats", "-o", "a.csv"]));
    let want = ok(&glassbox(&dir, &["solve", &file, "--stats", "-o", "b.csv"]));
    assert_eq!(steps(&got), steps(&want));
    // max_dt = 0.05 over [0, 1]: at least 20 steps (the first ones, still ramping up, are
    // shorter).
    let accepted = steps(&got)
        .1
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok());
    assert!(accepted.is_some_and(|n| n >= 20), "{got}");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_close(&read("a.csv"), &read("b.csv"));
}

/// The first `rows` rows of the digits data without their label: the binary's `--input`.
fn digits_inputs(dir: &Path, name: &str, rows: usize) -> String {
    let csv: String = std::fs::read_to_string(root().join("examples/data/digits.csv"))
        .unwrap()
        .lines()
        .take(rows)
        .map(|l| l.split(',').take(64).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    std::fs::write(dir.join(name), csv).unwrap();
    name.to_string()
}

/// The lines of `--stats` that say how the forward solves ran (path, rows, NFE): the binary's
/// and `glassbox predict`'s must agree; the solve time and memory may not.
fn forward_lines(stderr: &[u8]) -> Vec<String> {
    text(stderr)
        .lines()
        .filter(|l| {
            ["forward ", "rows ", "nfe "]
                .iter()
                .any(|w| l.starts_with(w))
        })
        .map(str::to_string)
        .collect()
}

/// A classifier binary's `--input rows` CSV equals `glassbox predict --input`'s byte for byte,
/// and both `--stats` say the forward ran as `path` says (`batched solves (... step
/// control)` or `per-row solves`) with the same NFE.
fn classifies_as_predict(dir: &Path, exe: &Path, (file, w): (&str, &str), rows: usize, path: &str) {
    let x = digits_inputs(dir, &format!("x{rows}.csv"), rows);
    let bin = run_in(dir, exe, &["--input", &x, "--stats"]);
    let got = ok(&bin);
    let pred = glassbox(
        dir,
        &["predict", file, "--weights", w, "--input", &x, "--stats"],
    );
    let want = ok(&pred);
    assert!(got.starts_with("class,logit_0,"), "{got}");
    assert_eq!(got.lines().count(), rows + 1, "{got}");
    // Per row: the same kernels' code, solver and CSV writer; batched: the same batched code
    // (`train::predict_batched`) on the same batched kernels' code. The same bytes either way.
    assert_eq!(got, want, "{rows} rows");
    let (b, p) = (forward_lines(&bin.stderr), forward_lines(&pred.stderr));
    assert_eq!(b.len(), 3, "{}", text(&bin.stderr));
    assert!(b[0].contains(path), "{rows} rows: {b:?}");
    assert_eq!(b, p);
}

/// A classifier: each `--input` row's class and logits, exactly `glassbox predict --input`'s
/// CSV (same weights, perturbed from the initial ones so that no class is a tie), per row for
/// a few rows and batched (digits' field has GEMM-sized layers) for more, as `predict`
/// chooses; a bad input file is a diagnostic.
#[test]
fn digits_classifies_each_input_row() {
    let dir = tmp("digits");
    let file = example("digits.gbx");
    let model = load(&file);
    let p: Vec<f64> = solve::param_values(&model)
        .iter()
        .enumerate()
        .map(|(i, v)| v * 1.01 + 1e-3 * ((i % 7) as f64 - 3.0))
        .collect();
    let weights = dir.join("w.safetensors");
    std::fs::write(&weights, io::weights_to_safetensors(&model, &p).unwrap()).unwrap();
    let w = weights.to_str().unwrap();
    let exe = build(&dir, &file, &["--weights", w]);
    classifies_as_predict(&dir, &exe, (&file, w), 3, "per-row solves");
    let batched = "batched solves (per_row step control)";
    // 130 rows: a full block of `BATCH_ROWS` and a short one.
    classifies_as_predict(&dir, &exe, (&file, w), 130, batched);

    let x = digits_inputs(&dir, "x.csv", 3);
    // The logits are read at the end of the solve: --at is refused, not ignored.
    let o = run_in(&dir, &exe, &["--input", &x, "--at", "0:1:5"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("--at"), "{}", text(&o.stderr));
    // The initial state is the encoder's output: --y0 is refused, not silently used.
    let o = run_in(&dir, &exe, &["--input", &x, "--y0", "1,2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("--y0"), "{}", text(&o.stderr));
    // Without --input there is nothing to classify: a diagnostic, not a panic.
    let o = run_in(&dir, &exe, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("--input"), "{}", text(&o.stderr));
    // A bad input file, among enough good rows for the batched path: a diagnostic naming the
    // line, exit status 1, never a panic.
    let good = std::fs::read_to_string(dir.join("x130.csv")).unwrap();
    let row = "1,".repeat(63) + "1";
    for (name, bad, want) in [
        ("short.csv", format!("{good}1,2,3\n"), "line 131: 3 values"),
        (
            "nan.csv",
            format!("{good}{}\n", row.replacen('1', "NaN", 1)),
            "line 131",
        ),
        (
            "words.csv",
            format!("{good}{}\n", row.replacen('1', "one", 1)),
            "line 131",
        ),
        ("empty.csv", String::new(), "holds no samples"),
    ] {
        std::fs::write(dir.join(name), bad).unwrap();
        let o = run_in(&dir, &exe, &["--input", name]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    let o = run_in(&dir, &exe, &["--input", "missing.csv"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("missing.csv"),
        "{}",
        text(&o.stderr)
    );
}

/// `batch = joint` (one step size for a block's rows): always batched, in the binary as in
/// `glassbox predict`, with the same bytes, for a handful of rows and for more than a block.
#[test]
fn a_joint_classifier_solves_batched_as_predict() {
    let dir = tmp("digits_joint");
    let src = std::fs::read_to_string(example("digits.gbx"))
        .unwrap()
        .replace("solve tsit5(", "solve tsit5(batch = joint, ")
        .replace(
            "data/digits.csv",
            &root()
                .join("examples/data/digits.csv")
                .display()
                .to_string(),
        );
    assert!(src.contains("batch = joint"));
    let file = dir.join("digits_joint.gbx");
    std::fs::write(&file, src).unwrap();
    let file = file.to_str().unwrap();
    let model = load(file);
    let p: Vec<f64> = solve::param_values(&model)
        .iter()
        .enumerate()
        .map(|(i, v)| v * 0.99 - 1e-3 * ((i % 5) as f64 - 2.0))
        .collect();
    let weights = dir.join("w.safetensors");
    std::fs::write(&weights, io::weights_to_safetensors(&model, &p).unwrap()).unwrap();
    let w = weights.to_str().unwrap();
    let exe = build(&dir, file, &["--weights", w]);
    let joint = "batched solves (joint step control)";
    classifies_as_predict(&dir, &exe, (file, w), 3, joint);
    classifies_as_predict(&dir, &exe, (file, w), 130, joint);
}

/// SDE models without a usable `train` clause (the spiral SDE example without its data and
/// training lines): every path equals `glassbox solve` with the same `--seed` and `--paths`
/// (bit for bit: the same kernels and solver), another seed gives other paths, and the
/// defaults are `solve`'s.
#[test]
fn spiral_sde_equals_solve() {
    let dir = tmp("spiral_sde");
    let src = std::fs::read_to_string(example("spiral_sde.gbx")).unwrap();
    let untrained: String = src
        .lines()
        .filter(|l| {
            !["data ", "minimize ", "train "]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let file = dir.join("spiral_sde.gbx").display().to_string();
    std::fs::write(&file, untrained).unwrap();
    let exe = build(&dir, &file, &[]);
    let flags = ["--seed", "7", "--paths", "3", "--at", "0:1:11"];
    let got = ok(&run_in(&dir, &exe, &flags));
    let mut args = vec!["solve", file.as_str()];
    args.extend(flags);
    let want = ok(&glassbox(&dir, &args));
    assert_close(&got, &want);
    assert_eq!(got, want);
    assert!(got.starts_with("path,t,u[0],u[1]\n"), "{got}");
    assert_eq!(got.lines().filter(|l| l.starts_with("2,")).count(), 11);
    let other = ok(&run_in(
        &dir,
        &exe,
        &["--seed", "8", "--paths", "3", "--at", "0:1:11"],
    ));
    assert_ne!(got, other);
    assert_eq!(
        ok(&run_in(&dir, &exe, &[])),
        ok(&glassbox(&dir, &["solve", &file]))
    );
    // JSON: `solve`'s, but for the timings.
    let json = |dir: &Path, exe: &Path, args: &[&str]| {
        ok(&run_in(dir, exe, args));
        std::fs::read_to_string(dir.join("p.json"))
            .unwrap()
            .lines()
            .filter(|l| !l.contains("_ms\""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let flags = [
        "--seed", "2", "--paths", "2", "--at", "0:1:3", "-o", "p.json",
    ];
    let got = json(&dir, &exe, &flags);
    let solve = Path::new(env!("CARGO_BIN_EXE_glassbox"));
    let mut args = vec!["solve", file.as_str()];
    args.extend(flags);
    assert_eq!(got, json(&dir, solve, &args));
    assert!(got.contains("\"seed\": 2"), "{got}");
    // Bad input is a diagnostic.
    for bad in [&["--paths", "0"][..], &["--input", "x.csv"]] {
        let o = run_in(&dir, &exe, bad);
        assert_eq!(o.status.code(), Some(1), "{bad:?}");
        assert!(
            text(&o.stderr).contains("glassbox::bad_argument"),
            "{bad:?}"
        );
    }
}

/// Milstein needs the diffusion's JVP: linked as a third kernel, it is called (3 evaluations
/// a step: drift, diffusion, JVP) and the paths equal `glassbox solve`'s.
#[test]
fn milstein_links_the_diffusion_jvp() {
    let dir = tmp("milstein");
    let file = dir.join("gbm.gbx");
    std::fs::write(
        &file,
        "model gbm\nstate x = 1.0, y = 0.5\nparam mu = 0.3, sigma = 0.8\n\
         dx = mu * x dt + sigma * x * dW\ndy = -y dt + sigma * sin(y) * dW\n\
         solve milstein(dt = 0.01) over [0, 1]\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let exe = build(&dir, file, &[]);
    let flags = ["--seed", "3", "--paths", "2"];
    let got = ok(&run_in(&dir, &exe, &flags));
    let mut args = vec!["solve", file];
    args.extend(flags);
    assert_eq!(got, ok(&glassbox(&dir, &args)));
    let stats = ok(&run_in(&dir, &exe, &["--stats", "-o", "p.csv"]));
    assert!(stats.contains("nfe               300"), "{stats}");
}

/// A trained SDE model (`ou_fit`) runs as `glassbox predict` runs it: the mean over the train
/// plan's paths, with the weights given.
#[test]
fn ou_fit_equals_predict() {
    matches_predict("ou_fit", "0:1:6");
}

/// An SDE model with `input`s is refused at build time, pointing at the input; nothing is
/// written.
#[test]
fn sde_models_with_inputs_are_refused() {
    let dir = tmp("sde_input");
    let file = dir.join("noisy.gbx");
    std::fs::write(
        &file,
        "model noisy\ninput a\nstate x = 1.0\ndx = -a * x dt + 0.1 * dW\n\
         solve euler_maruyama(dt = 0.01) over [0, 1]\n",
    )
    .unwrap();
    let o = glassbox(&dir, &["build", file.to_str().unwrap(), "-o", "x"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("glassbox::build_unsupported"), "{err}");
    assert!(err.contains("an input"), "{err}");
    assert!(!dir.join("x").exists());
}

#[test]
fn a_missing_c_compiler_is_named() {
    let dir = tmp("nocc");
    let o = Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .args(["build", &example("lorenz.gbx"), "-o", "x"])
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .env("CC", "/nonexistent/cc")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("glassbox::linker_missing"), "{err}");
    assert!(err.contains("/nonexistent/cc"), "{err}");
    assert!(err.contains("apt install gcc"), "{err}");
}

/// `--help`, bad input, JSON, `--y0`, `--stats` and the dynamic libraries of one binary.
#[test]
fn the_binary_explains_itself_and_refuses_bad_input() {
    let dir = tmp("cli");
    let file = example("lorenz.gbx");
    let exe = build(&dir, &file, &[]);

    let help = ok(&run_in(&dir, &exe, &["--help"]));
    for want in [
        "lorenz",
        "x, y, z",
        "tsit5",
        "rtol 1e-6",
        "lorenz.gbx",
        "--y0",
    ] {
        assert!(help.contains(want), "`{want}` missing from:\n{help}");
    }

    for (args, code, want) in [
        (&["--y0", "1,2"][..], 1, "has 2 values for 3 state columns"),
        (&["--y0", "1,x,3"][..], 1, "is not a finite number"),
        (&["--at", "0:1:zz"][..], 1, "is not a finite number"),
        (&["--at", "0:1:1"][..], 1, "whole number"),
        (&["--seed", "3"][..], 1, "ODE model"),
        (&["--paths", "3"][..], 1, "ODE model"),
        (&["--input", "x.csv"][..], 1, "declares no `input`"),
        (&["--bogus"][..], 2, "--bogus"),
    ] {
        let o = run_in(&dir, &exe, args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = run_in(&dir, &exe, &["-o", "/nonexistent/dir/out.csv"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("glassbox::io_error"));

    // --y0 replaces the model's initial state: equal to solve from that state.
    let got = ok(&run_in(&dir, &exe, &["--at", "0:1:6", "--y0", "2,1,0.5"]));
    let edited = dir.join("lorenz_y0.gbx");
    let src = std::fs::read_to_string(&file)
        .unwrap()
        .replace(
            "state x = 1.0, y = 0.0, z = 0.0",
            "state x = 2, y = 1, z = 0.5",
        )
        .replace(
            "data/lorenz.csv",
            &root()
                .join("examples/data/lorenz.csv")
                .display()
                .to_string(),
        );
    std::fs::write(&edited, src).unwrap();
    let want = ok(&glassbox(
        &dir,
        &["solve", edited.to_str().unwrap(), "--at", "0:1:6"],
    ));
    assert_close(&got, &want);

    // JSON has the CSV's numbers and the solver's statistics.
    let csv = ok(&run_in(&dir, &exe, &["--at", "0:1:6"]));
    ok(&run_in(
        &dir,
        &exe,
        &["--at", "0:1:6", "-o", "out.json", "--stats"],
    ));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out.json")).unwrap()).unwrap();
    let (_, rows) = parse_csv(&csv);
    let sample = &json["samples"][0];
    assert_eq!(sample["method"], "tsit5");
    assert!(sample["stats"]["nfe"].as_u64().unwrap() > 0);
    // (serde_json's default float parsing may be one ulp off.)
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-15 * a.abs().max(b.abs());
    for (i, row) in rows.iter().enumerate() {
        assert!(close(sample["t"][i].as_f64().unwrap(), row[0]));
        for (j, v) in row[1..].iter().enumerate() {
            assert!(close(sample["u"][i][j].as_f64().unwrap(), *v));
        }
    }

    // Only the C library, libm and the dynamic loader at run time.
    if let Ok(o) = Command::new("ldd").arg(&exe).output()
        && o.status.success()
    {
        for line in text(&o.stdout).lines() {
            let lib = line.trim();
            assert!(
                ["linux-vdso", "libc.so", "libm.so", "ld-linux"]
                    .iter()
                    .any(|ok| lib.starts_with(ok)
                        || lib.starts_with(&format!("/lib64/{ok}"))
                        || lib.contains(&format!("/{ok}"))),
                "unexpected dependency `{lib}`"
            );
        }
    }
}

/// A classifier's object file holds its batched field, encoder and head, and code generation
/// reports their specs (the batch plan's extents; digits' 33→64 layer a GEMM); a model without
/// a head gets none. `Meta::read` trusts only its own format: another one, or none recorded
/// (a binary from before the batched kernels), is named, and bytes that are no description
/// are damaged. No link: the object is emitted in memory.
#[test]
fn classifier_objects_carry_batched_kernels_and_meta_has_a_format() {
    use glassbox::app::build::{Meta, plan};
    use glassbox::jit::object;

    let emitted = |name: &str| {
        let path = example(name);
        let file = std::sync::Arc::new(SourceFile::new(
            path.clone(),
            std::fs::read_to_string(&path).unwrap(),
        ));
        let parts = plan(&load(&path), &file, None, &DiskLoader).unwrap();
        let kernels = object::Kernels {
            field: &parts.field,
            derivs: parts.derivs.as_ref().map(|(j, d)| (j, d)),
            sde: None,
            init: &parts.init,
            head: parts.head.as_ref(),
            batched: parts.batch_control.is_some(),
        };
        let mut batch = None;
        let bytes = object::emit(
            "m",
            &kernels,
            |layout| {
                batch = layout.batch;
                parts.meta.to_bytes()
            },
            &parts.p,
        )
        .unwrap();
        assert!(!bytes.is_empty());
        (parts, batch)
    };
    let (parts, batch) = emitted("digits.gbx");
    assert_eq!(parts.batch_control, Some(solve::BatchControl::PerRow));
    let b = batch.expect("a classifier's batched kernels");
    assert!(b.field.gemms, "digits' field has a 33x64 layer");
    assert!(b.init.gemms, "and a 64x32 encoder");
    assert_eq!(b.field.kernel.out_len, 32);
    assert_eq!((b.init.kernel.out_len, b.head.kernel.out_len), (32, 10));
    for s in [&b.field, &b.init, &b.head] {
        assert_eq!(s.sums_len, 0, "{}", s.kernel.name);
    }
    // A GEMM's result rows live in the buffer area; the 32x10 head is below the GEMM size.
    assert!(b.field.per_sample > 0 && b.init.per_sample > 0);
    assert!(!b.head.gemms);
    let (parts_lorenz, none) = emitted("lorenz.gbx");
    assert!(none.is_none() && parts_lorenz.batch_control.is_none());

    let bytes = parts.meta.to_bytes();
    let meta = Meta::read(&bytes).unwrap();
    assert_eq!(meta.format, Meta::FORMAT);
    let mut json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    json["format"] = serde_json::json!(1);
    let err = Meta::read(json.to_string().as_bytes()).unwrap_err();
    assert!(err.contains("format 1") && err.contains("rebuild"), "{err}");
    json.as_object_mut().unwrap().remove("format");
    let err = Meta::read(json.to_string().as_bytes()).unwrap_err();
    assert!(err.contains("format 0"), "{err}");
    let err = Meta::read(b"not a description").unwrap_err();
    assert!(err.contains("damaged"), "{err}");
}
