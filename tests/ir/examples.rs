//! Every example model, lowered to the IR: its vector field agrees with the equations written
//! by hand, and every derivative pass (VJP, JVP, Jacobian, time derivative along the flow)
//! agrees with central finite differences of the interpreter.

use std::path::PathBuf;

use glassbox::ir::lower::{Part, lower, lower_init};
use glassbox::ir::{Function, jacobian, jvp, time_derivatives, vjp};
use glassbox::sema::{Model, ModelKind};
use glassbox::source::{DiskLoader, SourceFile};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::check::{assert_close, dot, eval1, fd_dir};

/// Finite differences at ε = 1e-6 of O(1) quantities: ~1e-10 rounding plus ~1e-12 truncation
/// (see `check::fd_dir`); relative 1e-6 leaves room for the larger curvature of the nets.
const REL: f64 = 1e-6;
const ABS: f64 = 1e-7;

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "gbx"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "expected every example, got {files:?}");
    files
}

fn model(path: &PathBuf) -> Model {
    let text = std::fs::read_to_string(path).expect("example readable");
    let file = SourceFile::new(path.display().to_string(), text);
    let checked = glassbox::check_source(&file, &DiskLoader);
    assert!(
        checked.diags.is_empty(),
        "{}: {:?}",
        path.display(),
        checked.diags
    );
    checked.model.expect("checked model")
}

fn random(rng: &mut ChaCha8Rng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// A point to differentiate at: time, a state of moderate size, the initial parameters
/// perturbed (so zero biases are not special), and inputs when the model has them.
fn point(f: &Function, m: &Model, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    let mut p: Vec<f64> = m.params.iter().flat_map(|p| p.init.clone()).collect();
    for x in &mut p {
        *x += rng.random_range(-0.05..0.05);
    }
    f.args
        .iter()
        .map(|a| match a.name.as_str() {
            "t" => random(rng, 1, 0.1, 0.9),
            "p" => p.clone(),
            // Robertson's k2·y2² is 3e7·y2²: keep states small so values stay O(1e3) at most.
            "u" => random(rng, a.len, 0.05, 0.5),
            _ => random(rng, a.len, -1.0, 1.0),
        })
        .collect()
}

fn refs(args: &[Vec<f64>]) -> Vec<&[f64]> {
    args.iter().map(Vec::as_slice).collect()
}

/// Relative tolerance scaled to the magnitude of the field (Robertson's terms reach 1e4).
fn scale(values: &[f64]) -> f64 {
    values.iter().fold(1.0_f64, |m, v| m.max(v.abs()))
}

fn check_derivatives(name: &str, f: &Function, m: &Model, rng: &mut ChaCha8Rng) {
    let args = point(f, m, rng);
    let a = refs(&args);
    let n_out = f.output_len();
    let u = f.arg("u").expect("u");
    let p = f.arg("p").expect("p");
    let s = scale(&eval1(f, &a));

    // VJP against finite differences along random directions in u and in p.
    let g = vjp(f, &["u", "p"], "v").expect("vjp");
    let v = random(rng, n_out, -1.0, 1.0);
    let mut with_v = a.clone();
    with_v.push(&v);
    let grads = eval1(&g, &with_v);
    let (gu, gp) = grads.split_at(args[u].len());
    for (arg, grad) in [(u, gu), (p, gp)] {
        let dir = random(rng, args[arg].len(), -1.0, 1.0);
        let fd = dot(&v, &fd_dir(f, &a, arg, &dir));
        assert_close(
            &format!("{name}: vjp along a random direction of arg {arg}"),
            &[dot(grad, &dir)],
            &[fd],
            REL,
            ABS * s,
        );
    }

    // JVP against finite differences, and ⟨v, J·w⟩ from both modes.
    let j = jvp(f, "u", "w").expect("jvp");
    let w = random(rng, args[u].len(), -1.0, 1.0);
    let mut with_w = a.clone();
    with_w.push(&w);
    let jw = eval1(&j, &with_w);
    assert_close(
        &format!("{name}: jvp"),
        &jw,
        &fd_dir(f, &a, u, &w),
        REL,
        ABS * s,
    );
    assert_close(
        &format!("{name}: <v, Jw> from vjp and jvp"),
        &[dot(&v, &jw)],
        &[dot(gu, &w)],
        1e-10,
        1e-12 * s,
    );

    // Dense Jacobian, column by column.
    let jac = eval1(&jacobian(f, "u").expect("jacobian"), &a);
    let n = args[u].len();
    for col in 0..n {
        let mut e = vec![0.0; n];
        e[col] = 1.0;
        let fd = fd_dir(f, &a, u, &e);
        let column: Vec<f64> = (0..n_out).map(|r| jac[r * n + col]).collect();
        assert_close(
            &format!("{name}: jacobian column {col}"),
            &column,
            &fd,
            REL,
            ABS * s,
        );
    }
}

/// d²u/dt² against a central difference of f along the flow: (f(t+ε, u+εf) − f(t−ε, u−εf))/2ε.
fn check_time_derivative(name: &str, f: &Function, m: &Model, rng: &mut ChaCha8Rng) {
    let args = point(f, m, rng);
    let a = refs(&args);
    let (t, u) = (f.arg("t").expect("t"), f.arg("u").expect("u"));
    let fields = time_derivatives(f, 2, Some("t"), "u").expect("time derivatives");
    let second = eval1(&fields[1], &a);
    let du = eval1(f, &a);
    let eps = 1e-6;
    let moved = |sign: f64| {
        let mut b = args.clone();
        b[t][0] += sign * eps;
        for (x, d) in b[u].iter_mut().zip(&du) {
            *x += sign * eps * d;
        }
        eval1(f, &refs(&b))
    };
    let (plus, minus) = (moved(1.0), moved(-1.0));
    let fd: Vec<f64> = plus
        .iter()
        .zip(&minus)
        .map(|(p, q)| (p - q) / (2.0 * eps))
        .collect();
    let s = scale(&du) * scale(&du);
    assert_close(&format!("{name}: d²u/dt²"), &second, &fd, 1e-5, ABS * s);
}

#[test]
fn every_example_lowers_and_its_derivatives_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for path in examples() {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let m = model(&path);
        let field = lower(&m, Part::Field).expect("field lowers");
        assert_eq!(field.output_len(), m.state_size, "{name}");
        check_derivatives(&name, &field, &m, &mut rng);
        check_time_derivative(&name, &field, &m, &mut rng);
        if m.kind == ModelKind::Sde {
            let g = lower(&m, Part::Diffusion).expect("diffusion lowers");
            check_derivatives(&format!("{name} diffusion"), &g, &m, &mut rng);
        }
        let init = lower_init(&m).expect("initial state lowers");
        assert_eq!(init.output_len(), m.state_size, "{name}");
    }
}

fn example(name: &str) -> Model {
    model(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("examples/{name}.gbx")))
}

fn param(m: &Model, name: &str) -> Vec<f64> {
    m.params
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("param {name}"))
        .init
        .clone()
}

#[test]
fn lorenz_field_is_the_lorenz_system() {
    let m = example("lorenz");
    let f = lower(&m, Part::Field).unwrap();
    let p: Vec<f64> = m.params.iter().flat_map(|p| p.init.clone()).collect();
    let (s, r, b) = (
        param(&m, "sigma")[0],
        param(&m, "rho")[0],
        param(&m, "beta")[0],
    );
    assert_eq!((s, r, b), (10.0, 28.0, 8.0 / 3.0));
    let u = [1.5, -2.0, 20.0];
    let du = eval1(&f, &[&[0.0], &u, &p]);
    let expect = [
        s * (u[1] - u[0]),
        u[0] * (r - u[2]) - u[1],
        u[0] * u[1] - b * u[2],
    ];
    assert_close("lorenz", &du, &expect, 1e-15, 0.0);
}

#[test]
fn spiral_field_is_the_mlp_on_the_cubed_state() {
    let m = example("spiral");
    let f = lower(&m, Part::Field).unwrap();
    let p: Vec<f64> = m.params.iter().flat_map(|p| p.init.clone()).collect();
    let (w1, b1, w2, b2) = (
        param(&m, "f.W1"),
        param(&m, "f.b1"),
        param(&m, "f.W2"),
        param(&m, "f.b2"),
    );
    let y: [f64; 2] = [0.7, -1.3];
    let y3 = [y[0].powi(3), y[1].powi(3)];
    let h: Vec<f64> = (0..50)
        .map(|i| (w1[2 * i] * y3[0] + w1[2 * i + 1] * y3[1] + b1[i]).tanh())
        .collect();
    let expect: Vec<f64> = (0..2)
        .map(|o| (0..50).map(|i| w2[o * 50 + i] * h[i]).sum::<f64>() + b2[o])
        .collect();
    let du = eval1(&f, &[&[0.0], &y, &p]);
    assert_close("spiral", &du, &expect, 1e-12, 1e-15);
}

#[test]
fn robertson_field_is_the_robertson_system() {
    let m = example("robertson");
    let f = lower(&m, Part::Field).unwrap();
    let p: Vec<f64> = m.params.iter().flat_map(|p| p.init.clone()).collect();
    let (k1, k2, k3) = (0.04, 3e7, 1e4);
    let y = [0.9, 1e-5, 0.1];
    let du = eval1(&f, &[&[0.0], &y, &p]);
    let expect = [
        -k1 * y[0] + k3 * y[1] * y[2],
        k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] * y[1],
        k2 * y[1] * y[1],
    ];
    assert_close("robertson", &du, &expect, 1e-14, 1e-18);
}

#[test]
fn initial_states_follow_the_declarations() {
    let m = example("spiral");
    let init = lower_init(&m).unwrap();
    let p: Vec<f64> = m.params.iter().flat_map(|p| p.init.clone()).collect();
    let u0 = eval1(&init, &[&[0.0], &[0.0, 0.0], &p]);
    assert_eq!(u0, vec![2.0, 0.0]);

    // digits: h(0) = enc(x), a linear layer of the input image.
    let m = example("digits");
    let init = lower_init(&m).unwrap();
    let p: Vec<f64> = m.params.iter().flat_map(|p| p.init.clone()).collect();
    let x: Vec<f64> = (0..64).map(|i| (i % 17) as f64).collect();
    let h = vec![0.0; 32];
    let h0 = eval1(&init, &[&[0.0], &h, &p, &x]);
    let (w, b) = (param(&m, "enc.W1"), param(&m, "enc.b1"));
    let expect: Vec<f64> = (0..32)
        .map(|r| (0..64).map(|c| w[r * 64 + c] * x[c]).sum::<f64>() + b[r])
        .collect();
    assert_close("digits h0", &h0, &expect, 1e-13, 1e-13);
}

fn model_from(src: &str) -> Model {
    let file = SourceFile::new("inline.gbx", src);
    let checked = glassbox::check_source(&file, &DiskLoader);
    assert!(checked.diags.is_empty(), "{:?}", checked.diags);
    checked.model.expect("checked model")
}

#[test]
fn builtins_indexing_and_jacobian_lower_to_what_they_mean() {
    let m = model_from(
        "model j
state x[2] = [1, 2]
const A = [1, 2; 3, 4]
param k = 0.5
fn energy(z) = sum(z^2) / 2 + k * z[0] * z[1]
dx/dt = -jacobian(energy(x), x) + A @ x * mean(x) - norm(x) * dot(x, x) + A[0, 1] + A[1, 0..2]
",
    );
    let f = lower(&m, Part::Field).unwrap();
    let x = [0.3, -1.7];
    let k = 0.5;
    let du = eval1(&f, &[&[0.0], &x, &[k]]);
    let grad = [x[0] + k * x[1], x[1] + k * x[0]];
    let ax = [x[0] + 2.0 * x[1], 3.0 * x[0] + 4.0 * x[1]];
    let mean = (x[0] + x[1]) / 2.0;
    let xx = x[0] * x[0] + x[1] * x[1];
    let norm = xx.sqrt();
    let row = [3.0, 4.0];
    let expect: Vec<f64> = (0..2)
        .map(|i| -grad[i] + ax[i] * mean - norm * xx + 2.0 + row[i])
        .collect();
    assert_close("builtins", &du, &expect, 1e-14, 1e-15);
}

#[test]
fn regularizer_integrands_are_the_squared_norms_they_name() {
    use glassbox::ir::lower::{Integrand, lower_integrand};
    let m = example("lorenz");
    let p: Vec<f64> = m.params.iter().flat_map(|p| p.init.clone()).collect();
    let (s, r, b) = (10.0, 28.0, 8.0 / 3.0);
    let u = [1.5, -2.0, 20.0];
    let args: [&[f64]; 3] = [&[0.3], &u, &p];
    let value = |w| eval1(&lower_integrand(&m, w).unwrap(), &args)[0];

    let f = [
        s * (u[1] - u[0]),
        u[0] * (r - u[2]) - u[1],
        u[0] * u[1] - b * u[2],
    ];
    let kinetic: f64 = f.iter().map(|x| x * x).sum();
    assert_close(
        "kinetic",
        &[value(Integrand::Kinetic)],
        &[kinetic],
        1e-15,
        0.0,
    );
    assert_close(
        "taylor(1) is the kinetic energy",
        &[value(Integrand::Taylor(1))],
        &[kinetic],
        1e-15,
        0.0,
    );

    let jac = [[-s, s, 0.0], [r - u[2], -1.0, -u[0]], [u[1], u[0], -b]];
    let frob: f64 = jac.iter().flatten().map(|x| x * x).sum();
    assert_close(
        "jacobian_frobenius",
        &[value(Integrand::JacobianFrobenius)],
        &[frob],
        1e-15,
        0.0,
    );

    // d²u/dt² = J·f for the autonomous Lorenz system.
    let second: Vec<f64> = (0..3)
        .map(|i| (0..3).map(|j| jac[i][j] * f[j]).sum())
        .collect();
    let taylor2: f64 = second.iter().map(|x| x * x).sum();
    assert_close(
        "taylor(2)",
        &[value(Integrand::Taylor(2))],
        &[taylor2],
        1e-13,
        0.0,
    );
}
