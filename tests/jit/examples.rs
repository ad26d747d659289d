//! Every example model: the field (and diffusion), VJP w.r.t. u and p, JVP, dense Jacobian and
//! second time derivative, compiled and compared with the interpreter; ⟨v, J·w⟩ from the VJP
//! kernel equals it from the JVP kernel.

use std::path::PathBuf;

use glassbox::ir::lower::{Part, lower};
use glassbox::ir::{Function, jacobian, jvp, time_derivatives, vjp};
use glassbox::jit::compile;
use glassbox::sema::{Model, ModelKind};
use glassbox::source::{DiskLoader, SourceFile};
use rand_chacha::ChaCha8Rng;

use crate::check::{agree, call, dot, random, refs, rng};

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "gbx"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 7,
        "expected the seven examples, got {files:?}"
    );
    files
}

pub fn model(path: &PathBuf) -> Model {
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

/// A point: the initial parameters perturbed, small states (Robertson's rates reach 3e7),
/// random inputs and cotangents.
fn point(f: &Function, m: &Model, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    let p: Vec<f64> = m.params.iter().flat_map(|p| p.init.clone()).collect();
    f.args
        .iter()
        .map(|a| match a.name.as_str() {
            "t" => random(rng, 1, 0.1, 0.9),
            "p" => p
                .iter()
                .zip(random(rng, p.len(), -0.05, 0.05))
                .map(|(x, d)| x + d)
                .collect(),
            "u" => random(rng, a.len, 0.05, 0.5),
            _ => random(rng, a.len, -1.0, 1.0),
        })
        .collect()
}

fn check_all(name: &str, field: &Function, m: &Model, rng: &mut ChaCha8Rng) {
    let derived = [
        ("field", field.clone()),
        ("vjp", vjp(field, &["u", "p"], "v").expect("vjp")),
        ("jvp", jvp(field, "u", "w").expect("jvp")),
        ("jacobian", jacobian(field, "u").expect("jacobian")),
        (
            "d2u/dt2",
            time_derivatives(field, 2, Some("t"), "u")
                .expect("time derivatives")
                .pop()
                .expect("second derivative"),
        ),
    ];
    for (what, f) in &derived {
        let args = point(f, m, rng);
        agree(&format!("{name} {what}"), f, &refs(&args), 3);
    }

    // ⟨v, J·w⟩ from the compiled VJP and the compiled JVP.
    let (vjp_f, jvp_f) = (&derived[1].1, &derived[2].1);
    let base = point(field, m, rng);
    let u_len = base[field.arg("u").expect("u")].len();
    let v = random(rng, field.output_len(), -1.0, 1.0);
    let w = random(rng, u_len, -1.0, 1.0);
    let (mut with_v, mut with_w) = (refs(&base), refs(&base));
    with_v.push(&v);
    with_w.push(&w);
    let grads = call(&compile(vjp_f, "vjp").expect("vjp compiles"), &with_v);
    let jw = call(&compile(jvp_f, "jvp").expect("jvp compiles"), &with_w);
    let (a, b) = (dot(&v, &jw), dot(&grads[..u_len], &w));
    let scale = jw.iter().chain(&grads).fold(1.0f64, |s, x| s.max(x.abs()));
    assert!(
        (a - b).abs() <= 1e-10 * scale,
        "{name}: <v, Jw> {a} from jvp vs {b} from vjp"
    );
}

#[test]
fn every_example_compiles_and_agrees_with_the_interpreter() {
    let mut rng = rng(11);
    for path in examples() {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let m = model(&path);
        let field = lower(&m, Part::Field).expect("field lowers");
        check_all(&name, &field, &m, &mut rng);
        if m.kind == ModelKind::Sde {
            let g = lower(&m, Part::Diffusion).expect("diffusion lowers");
            check_all(&format!("{name} diffusion"), &g, &m, &mut rng);
        }
    }
}

#[test]
fn the_kernel_keeps_its_clif_and_compile_time() {
    let m = model(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/spiral.gbx"));
    let field = lower(&m, Part::Field).expect("field lowers");
    let k = compile(&field, "spiral.field").expect("compiles");
    assert!(k.clif().starts_with("function "), "{}", k.clif());
    assert!(
        k.clif().contains("call fn"),
        "tanh is an imported call:\n{}",
        k.clif()
    );
    assert!(k.compile_time().as_nanos() > 0);
    assert_eq!(k.name(), "spiral.field");
    assert_eq!(k.output_len(), 2);
}

#[test]
fn objective_integrands_compile_and_agree_with_the_interpreter() {
    use glassbox::ir::lower::{Integrand, lower_integrand};
    let mut rng = rng(13);
    for path in examples() {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let m = model(&path);
        // The symbolic Jacobian of digits' 32-state field is large; its Frobenius norm is what
        // Hutchinson's estimator is for, so the dense form is checked on the small models.
        let mut which = vec![Integrand::Kinetic, Integrand::Taylor(2)];
        if m.state_size <= 8 {
            which.push(Integrand::JacobianFrobenius);
        }
        for w in which {
            let f = lower_integrand(&m, w).expect("integrand lowers");
            assert_eq!(f.output_len(), 1, "{name} {w:?}: a scalar");
            let args = point(&f, &m, &mut rng);
            agree(&format!("{name} {w:?}"), &f, &refs(&args), 3);
        }
    }
}
