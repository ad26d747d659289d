//! Every LANGUAGE-SKETCH program checks cleanly, with the expected states, parameter layout and
//! equations. Data files come from an in-memory loader, so the test touches no disk.

use std::collections::HashMap;
use std::path::PathBuf;

use glassbox::sema::{self, *};
use glassbox::source::{MemoryLoader, SourceFile};

fn loader() -> MemoryLoader {
    let mut m = HashMap::new();
    let files: [(&str, &str); 5] = [
        ("models/data/spiral.csv", "t,y1,y2\n0,2,0\n"),
        ("models/data/lv.csv", "t,x,y\n0,1,1\n"),
        (
            "models/data/digits.csv",
            &format!("{}\n", vec!["0"; 65].join(",")),
        ),
        ("models/data/spiral_sde.csv", "path,t,u1,u2\n0,0,2,0\n"),
        (
            "models/lib/phys.gbx",
            "const g = 9.81\nfn damp(v, c) = -c * v\n",
        ),
    ];
    for (p, text) in files {
        m.insert(PathBuf::from(p), text.as_bytes().to_vec());
    }
    MemoryLoader(m)
}

fn check_ok(name: &str, src: &str) -> Model {
    let file = SourceFile::new(format!("models/{name}.gbx"), src);
    let checked = glassbox::check_source(&file, &loader());
    let rendered: Vec<String> = checked
        .diags
        .iter()
        .map(|d| {
            format!(
                "{} {:?} {} ({:?})",
                d.code,
                d.span().map(|s| s.range()),
                d.message,
                d.help
            )
        })
        .collect();
    assert!(
        checked.diags.is_empty(),
        "{name}: unexpected diagnostics:\n{}",
        rendered.join("\n")
    );
    checked.model.expect("no diagnostics means a model")
}

fn learned(m: &Model) -> usize {
    m.params
        .iter()
        .filter(|p| p.learn)
        .map(|p| p.shape.size())
        .sum()
}

const SPIRAL: &str = r#"model spiral

state y[2] = [2.0, 0.0]
net   f = mlp(2, 50, 2; act = tanh)          # stdlib layer, trainable

dy/dt = f(y^3)                               # ^ is elementwise on vectors

data  obs = csv("data/spiral.csv", time = "t", columns = ["y1", "y2"])
solve tsit5(rtol = 1e-7, atol = 1e-9)

minimize l1(y, obs) + decay(100 -> 10) * error_estimate    # ERNODE
train rmsprop(lr = 1e-3), iterations = 2000, batch = windows(20, length = 10)
"#;

const LV: &str = r#"model lotka_volterra_ude

state x = 1.0, y = 1.0
param alpha = 1.3 learn, delta = 1.8           # `learn` marks a trainable parameter
net   u = mlp(2, 16, 16, 2; act = tanh)

dx/dt =  alpha * x + u(x, y)[0]
dy/dt = -delta * y + u(x, y)[1]

data  obs = csv("data/lv.csv", time = "t", columns = ["x", "y"])
minimize mse([x, y], obs) + 1e-3 * kinetic + 0.1 * stiffness
train adam(lr = 1e-2), iterations = 500
"#;

const DIGITS: &str = r#"model digits

input x[64]
label c in 0..10
net enc = linear(64, 32)
net f   = mlp(33, 64, 32; act = tanh)
net dec = linear(32, 10)

state h[32] = enc(x)
dh/dt = f(concat(h, t))
solve tsit5(rtol = 1e-5, atol = 1e-5) over [0, 1]
output logits = dec(h(1))

data digits = csv("data/digits.csv", features = 0..64, label = 64)
minimize cross_entropy(logits, c) + 0.01 * error_estimate(sample = unbiased)   # local
train adam(lr = 1e-3), epochs = 30, batch = 128, split = 0.8
"#;

const SPIRAL_SDE: &str = r#"model spiral_sde

state u[2] = [2.0, 0.0]
net drift = mlp(2, 50, 2; act = tanh)
net noise = linear(2, 2)

du = drift(u^3) dt + noise(u) * dW          # `*` with dW: diagonal noise
solve sosri(rtol = 0.3, atol = 0.3) over [0, 1]

data paths = csv("data/spiral_sde.csv", time = "t", columns = ["u1", "u2"], group = "path")
minimize moments(u, paths; samples = 100) + 0.2 * error_estimate
train adam(lr = 1e-2), iterations = 250
"#;

const ROBERTSON: &str = r#"model robertson

state y1 = 1, y2 = 0, y3 = 0
param k1 = 0.04, k2 = 3e7, k3 = 1e4

dy1/dt = -k1*y1 + k3*y2*y3
dy2/dt =  k1*y1 - k3*y2*y3 - k2*y2^2
dy3/dt =  k2*y2^2

solve auto(rtol = 1e-8, atol = 1e-10) over [0, 1e5]   # detects stiffness, switches method
"#;

#[test]
fn spiral() {
    let m = check_ok("spiral", SPIRAL);
    assert_eq!(m.name, "spiral");
    assert_eq!(m.kind, ModelKind::Ode);
    assert_eq!(m.states.len(), 1);
    assert_eq!(m.states[0].shape, Shape::vector(2));
    assert_eq!(m.state_size, 2);
    assert_eq!(learned(&m), 2 * 50 + 50 + 50 * 2 + 2);
    assert_eq!(m.param_size, 252);
    let names: Vec<&str> = m.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["f.W1", "f.b1", "f.W2", "f.b2"]);
    assert_eq!(m.params[0].shape, Shape::matrix(50, 2));
    assert_eq!(
        (m.params[1].offset, m.params[2].offset, m.params[3].offset),
        (100, 150, 250)
    );
    assert!(m.params[1].init.iter().all(|&b| b == 0.0));
    assert_eq!(m.equations.len(), 1);
    let EquationKind::Ode { rhs } = &m.equations[0].kind else {
        panic!("ODE expected")
    };
    assert!(matches!(rhs.kind, TExprKind::NetApply { net: 0, .. }));
    assert_eq!(rhs.shape, Shape::vector(2));
    let solve = m.solve.as_ref().unwrap();
    assert_eq!(solve.method, Method::Tsit5);
    assert_eq!(solve.options.rtol, Some(1e-7));
    let obj = m.objective.as_ref().unwrap();
    assert_eq!(obj.terms.len(), 2);
    assert_eq!(
        obj.terms[1].coef,
        Coef::Decay {
            from: 100.0,
            to: 10.0
        }
    );
    let train = m.train.as_ref().unwrap();
    assert_eq!(train.stop, Stop::Iterations { n: 2000 });
    assert_eq!(
        train.batch,
        Some(Batch::Windows {
            count: 20,
            length: 10
        })
    );
    assert_eq!(m.data[0].path, PathBuf::from("models/data/spiral.csv"));
}

#[test]
fn lotka_volterra() {
    let m = check_ok("lv", LV);
    assert_eq!(
        m.states.iter().map(|s| s.offset).collect::<Vec<_>>(),
        [0, 1]
    );
    let alpha = &m.params[0];
    assert_eq!(
        (alpha.name.as_str(), alpha.learn, alpha.init.as_slice()),
        ("alpha", true, &[1.3][..])
    );
    assert!(!m.params[1].learn);
    // alpha + u's 2·16+16 + 16·16+16 + 16·2+2 = 1 + 354
    assert_eq!(learned(&m), 1 + 48 + 272 + 34);
    let s = summary(&m);
    assert_eq!((s.params_fixed, s.params_learned, s.equations), (1, 355, 2));
    assert_eq!(s.objective, ["mse", "0.001 * kinetic", "0.1 * stiffness"]);
    let EquationKind::Ode { rhs } = &m.equations[0].kind else {
        panic!()
    };
    assert_eq!(rhs.shape, Shape::Scalar);
}

#[test]
fn digits() {
    let m = check_ok("digits", DIGITS);
    assert_eq!(m.inputs[0].shape, Shape::vector(64));
    assert_eq!(m.labels[0].classes, 10);
    assert!(matches!(
        m.states[0].init.kind,
        TExprKind::NetApply { net: 0, .. }
    ));
    assert_eq!(m.outputs[0].value.shape, Shape::vector(10));
    assert_eq!(
        learned(&m),
        64 * 32 + 32 + (33 * 64 + 64 + 64 * 32 + 32) + 32 * 10 + 10
    );
    assert_eq!(m.train.as_ref().unwrap().split, Some(0.8));
    let obj = m.objective.as_ref().unwrap();
    assert!(matches!(
        obj.terms[1].kind,
        TermKind::Observable {
            observable: Observable::ErrorEstimate,
            sample: Some(Sampling::Unbiased)
        }
    ));
}

#[test]
fn spiral_sde() {
    let m = check_ok("spiral_sde", SPIRAL_SDE);
    assert_eq!(m.kind, ModelKind::Sde);
    let EquationKind::Sde { noise, .. } = &m.equations[0].kind else {
        panic!("SDE expected")
    };
    assert_eq!(*noise, Noise::Diagonal);
    assert_eq!(learned(&m), 252 + 6);
    assert!(matches!(
        m.objective.as_ref().unwrap().terms[0].kind,
        TermKind::Moments { samples: 100, .. }
    ));
}

#[test]
fn robertson() {
    let m = check_ok("robertson", ROBERTSON);
    assert_eq!(m.state_size, 3);
    assert_eq!(learned(&m), 0);
    assert_eq!(summary(&m).params_fixed, 3);
    assert!(matches!(
        m.solve.as_ref().unwrap().times,
        Some(SolveTimes::Over { t0: 0.0, t1: 1e5 })
    ));
    assert!(m.objective.is_none() && m.train.is_none());
}

#[test]
fn functions_imports_consts_and_stdlib() {
    let src = r#"model osc
use "lib/phys.gbx"
use nn
const n = 3
const w = [1, 2, 3] * 2
state x[n] = w[0..n], v[n]
fn sq(a) = a * a
dx/dt = v
dv/dt = damp(v, 0.1) - g * softsign(x) + sq(x)[0]
"#;
    let m = check_ok("osc", src);
    assert_eq!(m.states[0].shape, Shape::vector(3));
    let TExprKind::Const { value } = &m.states[0].init.kind else {
        panic!("folded init")
    };
    assert_eq!(value, &[2.0, 4.0, 6.0]);
    assert_eq!(m.states[1].offset, 3);
    assert_eq!(
        m.consts.iter().find(|c| c.name == "w").unwrap().value.data,
        [2.0, 4.0, 6.0]
    );
}

#[test]
fn seed_changes_only_weights() {
    let file = SourceFile::new("models/spiral.gbx", SPIRAL);
    let (program, _) = glassbox::syntax::parse(&file);
    let l = loader();
    let a = sema::check(
        &program,
        &file,
        &CheckCtx {
            loader: &l,
            seed: 1,
        },
    )
    .0
    .unwrap();
    let b = sema::check(
        &program,
        &file,
        &CheckCtx {
            loader: &l,
            seed: 2,
        },
    )
    .0
    .unwrap();
    assert_ne!(a.params[0].init, b.params[0].init);
    assert_eq!(a.params[0].offset, b.params[0].offset);
    // Adding a net in front leaves `f`'s initial weights alone (they depend on the name only).
    let src2 = SPIRAL.replace("net   f", "net g = linear(3, 3)\nnet   f");
    let file2 = SourceFile::new("models/spiral.gbx", src2);
    let (p2, _) = glassbox::syntax::parse(&file2);
    let c = sema::check(
        &p2,
        &file2,
        &CheckCtx {
            loader: &l,
            seed: 1,
        },
    )
    .0
    .unwrap();
    let f_w1 = c.params.iter().find(|p| p.name == "f.W1").unwrap();
    assert_eq!(f_w1.init, a.params[0].init);
    assert_eq!(f_w1.offset, 12);
}

#[test]
fn stdlib_modules_parse_and_check() {
    for (name, _) in STDLIB {
        let src = format!("model m\nuse {name}\nstate y = 1\ndy/dt = -y\n");
        check_ok(name, &src);
    }
}

#[test]
fn shapes_of_builtins_jacobian_and_small_nets() {
    let src = r#"model s
state y[2] = [1, 0], z = 0
param A[2, 3] = [1, 2, 3; 4, 5, 6]
net g = mlp(2, 4, 1)
dy/dt = A[0, 0..2] * y + A @ [1, 1, 1] - jacobian(y * z, z)
dz/dt = g(y) + dot(y, y) + norm(A[1]) + d(z)/dt
output J = jacobian(A @ concat(y, z), y)
output late = y(2.5)
"#;
    let m = check_ok("s", src);
    assert_eq!(m.outputs[0].value.shape, Shape::matrix(2, 2));
    assert!(matches!(
        m.outputs[1].value.kind,
        TExprKind::StateAt {
            state: 0,
            time: 2.5
        }
    ));
    let EquationKind::Ode { rhs } = &m.equations[1].kind else {
        panic!()
    };
    assert_eq!(rhs.shape, Shape::Scalar);
    assert_eq!(m.params[0].init, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn sde_scalar_noise_and_noiseless_state() {
    let src = "model s\nstate a[2] = 1, b = 0\nda = -a dt + 0.3 dW\ndb = a[0] dt\nsolve euler_maruyama(dt = 0.01) over [0, 1]\n";
    let m = check_ok("s", src);
    let noise: Vec<Noise> = m
        .equations
        .iter()
        .map(|e| match &e.kind {
            EquationKind::Sde { noise, .. } => *noise,
            EquationKind::Ode { .. } => panic!("SDE expected"),
        })
        .collect();
    assert_eq!(noise, [Noise::Scalar, Noise::None]);
    assert_eq!(m.solve.as_ref().unwrap().options.dt, Some(0.01));
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        /// Any edit of a valid program (a cut, or a splice of characters the language uses)
        /// is checked without panicking; an error always comes with a span and a help line.
        #[test]
        fn edits_never_panic(which in 0usize..5, at in 0usize..400, len in 0usize..12,
                             insert in "[a-z0-9_\\[\\]\\(\\)\\.,;=+*/@^ -]{0,6}") {
            let src = [SPIRAL, LV, DIGITS, SPIRAL_SDE, ROBERTSON][which];
            let mut cut = at.min(src.len());
            while !src.is_char_boundary(cut) { cut -= 1; }
            let mut end = (cut + len).min(src.len());
            while !src.is_char_boundary(end) { end -= 1; }
            let edited = format!("{}{}{}", &src[..cut], insert, &src[end..]);
            let file = SourceFile::new("models/edit.gbx", edited);
            let checked = glassbox::check_source(&file, &loader());
            for d in &checked.diags {
                prop_assert!(d.span().is_some(), "{} has no span", d.code);
                prop_assert!(d.help.is_some(), "{} has no help", d.code);
            }
            prop_assert_eq!(checked.model.is_some(), !checked.diags.iter().any(|d| d.is_error()));
        }
    }
}

#[test]
fn real_sized_models_are_within_the_size_limits() {
    // A 784 → 100 → 10 MNIST encoder and a 10^6-element state: far below the 2^24-element
    // limits on one value, all states and all parameters (`glassbox::too_large`).
    let m = check_ok(
        "large",
        "model large\nnet enc = mlp(784, 100, 10)\nstate h[1000000] = 0\ndh/dt = -h\n",
    );
    assert_eq!(m.state_size, 1_000_000);
    assert_eq!(m.param_size, 784 * 100 + 100 + 100 * 10 + 10);
    assert!(m.param_size < sema::MAX_ELEMENTS && m.state_size < sema::MAX_ELEMENTS);
}
