//! Kernel benchmarks: each JIT kernel beside a hand-written Rust function of the same math,
//! compiled by rustc into this very binary, measured in the same run.
//!
//! Rows: the spiral MLP (2-50-2 on y³), Lorenz, Robertson, the 32-cell reaction–diffusion
//! stencil — one sample per call on a bound call (`Kernel::bind` + `Bound::run`, the solvers'
//! path: buffers sized once, no per-call checks), with the checked `Kernel::call` and the
//! solver's `JitField::eval` (copies `t`, `u` in and `du` out) as extra rows — and the digits
//! vector field (33-64-32) at batch 128 (`BatchKernel::call`: batch loop in the generated code,
//! dense layers as GEMMs). For each: the field `f` and its VJP w.r.t. `(u, p)` (for digits, the
//! parameter gradient summed over the batch, as training needs it).
//!
//! The hand-written functions are plain Rust: loops over slices, `f64::tanh`, the model's
//! initial weights at the offsets the model's slot table gives (asserted below). The batched
//! digits ones use the same GEMM (`matrixmultiply::dgemm`) for their products: a loop nest would
//! measure rustc's (non-)vectorisation of reductions, not the kernels.
//!
//! Run: `cargo bench --bench kernels`. Criterion measures every function; afterwards a table of
//! JIT/rustc ratios is printed from an interleaved measurement (alternating the two, median of
//! 15 rounds), and the compile time of every example's field and VJP.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use glassbox::ir::lower::{Part, lower};
use glassbox::ir::math::tanh;
use glassbox::ir::{ArgSpec, Function, Shape, vjp};
use glassbox::jit::{
    DEFAULT_CALL_MIN, Dense, Options, compile, compile_batch, compile_with, unbatched_gradients,
};
use glassbox::sema::Model;
use glassbox::solve::{JitField, VectorField};
use glassbox::source::{DiskLoader, SourceFile};

const BATCH: usize = 128;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.gbx"))
}

fn model(path: &Path) -> Model {
    let text = std::fs::read_to_string(path).expect("example readable");
    let file = SourceFile::new(path.display().to_string(), text);
    let checked = glassbox::check_source(&file, &DiskLoader);
    assert!(checked.diags.is_empty(), "{}", path.display());
    checked.model.expect("checked model")
}

fn params(m: &Model) -> Vec<f64> {
    m.params.iter().flat_map(|p| p.init.clone()).collect()
}

fn offset(m: &Model, name: &str) -> usize {
    m.params
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no param {name}"))
        .offset
}

fn field_and_vjp(m: &Model) -> (Function, Function) {
    let f = lower(m, Part::Field).expect("field lowers");
    let g = vjp(&f, &["u", "p"], "v").expect("vjp");
    (f, g)
}

/// A deterministic spread of values in `[lo, hi)`.
fn values(n: usize, lo: f64, hi: f64, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|i| lo + (hi - lo) * (0.5 + 0.5 * (seed + 1.7 * i as f64).sin()))
        .collect()
}

fn assert_close(what: &str, a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1e-300f64, |s, x| s.max(x.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-9 * scale,
            "{what}: element {i}: jit {x} vs hand-written {y}"
        );
    }
}

// ---- hand-written functions ----------------------------------------------------------------
// `tanh` is glassbox's own (`ir::math`, what the kernels call), so both sides do the same math;
// rustc may vectorise its loops over it (baseline SSE2), the JIT calls `glassbox_tanh_n`.

/// `dy/dt = W2·tanh(W1·y³ + b1) + b2`, a 2-50-2 net.
#[inline(never)]
fn spiral_f(u: &[f64], p: &[f64], out: &mut [f64]) {
    let (w1, rest) = p.split_at(100);
    let (b1, rest) = rest.split_at(50);
    let (w2, b2) = rest.split_at(100);
    let y3 = [u[0].powi(3), u[1].powi(3)];
    let mut h = [0.0; 50];
    for (r, h) in h.iter_mut().enumerate() {
        *h = tanh(w1[2 * r] * y3[0] + w1[2 * r + 1] * y3[1] + b1[r]);
    }
    for (i, o) in out.iter_mut().enumerate() {
        let row = &w2[50 * i..50 * (i + 1)];
        *o = row.iter().zip(&h).map(|(w, h)| w * h).sum::<f64>() + b2[i];
    }
}

/// `vᵀ·∂f/∂(u, p)` of `spiral_f`: `[vjp_u (2), vjp_p (252)]`.
#[inline(never)]
fn spiral_vjp(u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
    let (w1, rest) = p.split_at(100);
    let (b1, rest) = rest.split_at(50);
    let w2 = &rest[..100];
    let y3 = [u[0].powi(3), u[1].powi(3)];
    let mut h = [0.0; 50];
    for (r, h) in h.iter_mut().enumerate() {
        *h = tanh(w1[2 * r] * y3[0] + w1[2 * r + 1] * y3[1] + b1[r]);
    }
    let (gu, gp) = out.split_at_mut(2);
    let (gw1, rest) = gp.split_at_mut(100);
    let (gb1, rest) = rest.split_at_mut(50);
    let (gw2, gb2) = rest.split_at_mut(100);
    let mut gy = [0.0; 2];
    for j in 0..50 {
        let d = (w2[j] * v[0] + w2[50 + j] * v[1]) * (1.0 - h[j] * h[j]);
        gb1[j] = d;
        gw1[2 * j] = d * y3[0];
        gw1[2 * j + 1] = d * y3[1];
        gy[0] += w1[2 * j] * d;
        gy[1] += w1[2 * j + 1] * d;
        gw2[j] = v[0] * h[j];
        gw2[50 + j] = v[1] * h[j];
    }
    gb2.copy_from_slice(&v[..2]);
    for i in 0..2 {
        gu[i] = gy[i] * 3.0 * u[i] * u[i];
    }
}

#[inline(never)]
fn lorenz_f(u: &[f64], p: &[f64], out: &mut [f64]) {
    let (x, y, z) = (u[0], u[1], u[2]);
    let (sigma, rho, beta) = (p[0], p[1], p[2]);
    out[0] = sigma * (y - x);
    out[1] = x * (rho - z) - y;
    out[2] = x * y - beta * z;
}

#[inline(never)]
fn lorenz_vjp(u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
    let (x, y, z) = (u[0], u[1], u[2]);
    let (sigma, rho, beta) = (p[0], p[1], p[2]);
    out[0] = -sigma * v[0] + (rho - z) * v[1] + y * v[2];
    out[1] = sigma * v[0] - v[1] + x * v[2];
    out[2] = -x * v[1] - beta * v[2];
    out[3] = (y - x) * v[0];
    out[4] = x * v[1];
    out[5] = -z * v[2];
}

#[inline(never)]
fn robertson_f(u: &[f64], p: &[f64], out: &mut [f64]) {
    let (y1, y2, y3) = (u[0], u[1], u[2]);
    let (k1, k2, k3) = (p[0], p[1], p[2]);
    out[0] = -k1 * y1 + k3 * y2 * y3;
    out[1] = k1 * y1 - k3 * y2 * y3 - k2 * y2 * y2;
    out[2] = k2 * y2 * y2;
}

#[inline(never)]
fn robertson_vjp(u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
    let (y1, y2, y3) = (u[0], u[1], u[2]);
    let (k1, k2, k3) = (p[0], p[1], p[2]);
    let (a, b) = (v[1] - v[0], v[2] - v[1]);
    out[0] = k1 * a;
    out[1] = -k3 * y3 * a + 2.0 * k2 * y2 * b;
    out[2] = -k3 * y2 * a;
    out[3] = y1 * a;
    out[4] = y2 * y2 * b;
    out[5] = -y2 * y3 * a;
}

/// Discrete Laplacian with reflecting ends (`c[-1] = c[0]`, `c[n] = c[n-1]`).
fn laplacian(c: &[f64], i: usize) -> f64 {
    let left = if i == 0 { c[0] } else { c[i - 1] };
    let right = if i + 1 == c.len() { c[i] } else { c[i + 1] };
    right - 2.0 * c[i] + left
}

#[inline(never)]
fn rd_f(c: &[f64], p: &[f64], out: &mut [f64]) {
    let (d, k) = (p[0], p[1]);
    for (i, o) in out.iter_mut().enumerate() {
        *o = d * laplacian(c, i) + k * c[i] * (1.0 - c[i]);
    }
}

#[inline(never)]
fn rd_vjp(c: &[f64], p: &[f64], v: &[f64], out: &mut [f64]) {
    let (d, k) = (p[0], p[1]);
    let n = c.len();
    let (gc, gp) = out.split_at_mut(n);
    let (mut gd, mut gk) = (0.0, 0.0);
    for i in 0..n {
        // ∂f_i/∂c_i: −2D inside, −D at a reflecting end; neighbours contribute D·v_j.
        let ends = usize::from(i == 0) + usize::from(i + 1 == n);
        let mut g = (-2.0 + ends as f64) * d * v[i] + k * (1.0 - 2.0 * c[i]) * v[i];
        if i > 0 {
            g += d * v[i - 1];
        }
        if i + 1 < n {
            g += d * v[i + 1];
        }
        gc[i] = g;
        gd += v[i] * laplacian(c, i);
        gk += v[i] * c[i] * (1.0 - c[i]);
    }
    gp[0] = gd;
    gp[1] = gk;
}

/// `C[m×n] = A[m×k]·B[k×n]` (element strides per matrix), bounds-checked, on the same GEMM
/// the batched kernels call.
#[allow(clippy::too_many_arguments)]
// The one `unsafe` of this bench (Cargo.toml `[lints]` denies it): `dgemm` takes raw pointers.
#[allow(unsafe_code)]
fn gemm(
    (m, k, n): (usize, usize, usize),
    a: &[f64],
    (rsa, csa): (usize, usize),
    b: &[f64],
    (rsb, csb): (usize, usize),
    c: &mut [f64],
    (rsc, csc): (usize, usize),
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(m > 0 && k > 0 && n > 0);
    assert!(last(m, k, rsa, csa) < a.len());
    assert!(last(k, n, rsb, csb) < b.len());
    assert!(last(m, n, rsc, csc) < c.len());
    // SAFETY: the asserts keep every element the product touches inside its slice, and `c`
    // is borrowed mutably, so it overlaps neither input.
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            0.0,
            c.as_mut_ptr(),
            rsc as isize,
            csc as isize,
        )
    }
}

/// Offsets of the digits field's layers in `p` (checked against the slot table).
struct Digits {
    w1: usize,
    b1: usize,
    w2: usize,
    b2: usize,
}

/// Scratch of the hand-written batched digits functions, allocated once like the kernel's.
struct DigitsScratch {
    z: Vec<f64>,
    h: Vec<f64>,
    g: Vec<f64>,
}

impl DigitsScratch {
    fn new() -> DigitsScratch {
        DigitsScratch {
            z: vec![0.0; BATCH * 33],
            h: vec![0.0; BATCH * 64],
            g: vec![0.0; BATCH * 64],
        }
    }
}

/// `H = tanh(Z·W1ᵀ + b1)` with `Z = [h, t]`, for the batch.
fn digits_hidden(o: &Digits, t: &[f64], u: &[f64], p: &[f64], s: &mut DigitsScratch) {
    for (b, z) in s.z.chunks_mut(33).enumerate() {
        z[..32].copy_from_slice(&u[32 * b..32 * (b + 1)]);
        z[32] = t[b];
    }
    gemm(
        (BATCH, 33, 64),
        &s.z,
        (33, 1),
        &p[o.w1..],
        (1, 33),
        &mut s.h,
        (64, 1),
    );
    let b1 = &p[o.b1..o.b1 + 64];
    for row in s.h.chunks_mut(64) {
        for (h, b) in row.iter_mut().zip(b1) {
            *h = tanh(*h + b);
        }
    }
}

#[inline(never)]
fn digits_f(o: &Digits, t: &[f64], u: &[f64], p: &[f64], s: &mut DigitsScratch, out: &mut [f64]) {
    digits_hidden(o, t, u, p, s);
    gemm(
        (BATCH, 64, 32),
        &s.h,
        (64, 1),
        &p[o.w2..],
        (1, 64),
        out,
        (32, 1),
    );
    let b2 = &p[o.b2..o.b2 + 32];
    for row in out.chunks_mut(32) {
        for (y, b) in row.iter_mut().zip(b2) {
            *y += b;
        }
    }
}

/// Per sample `vjp_u` into `out`; `Σ_b vjp_p` into `sums` (zero outside the field's layers).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn digits_vjp(
    o: &Digits,
    t: &[f64],
    u: &[f64],
    p: &[f64],
    v: &[f64],
    s: &mut DigitsScratch,
    out: &mut [f64],
    sums: &mut [f64],
) {
    digits_hidden(o, t, u, p, s);
    // G = V·W2, then D = G ⊙ (1 − H²) in place.
    gemm(
        (BATCH, 32, 64),
        v,
        (32, 1),
        &p[o.w2..],
        (64, 1),
        &mut s.g,
        (64, 1),
    );
    for (g, h) in s.g.iter_mut().zip(&s.h) {
        *g *= 1.0 - h * h;
    }
    sums.fill(0.0);
    gemm(
        (64, BATCH, 33),
        &s.g,
        (1, 64),
        &s.z,
        (33, 1),
        &mut sums[o.w1..],
        (33, 1),
    );
    gemm(
        (32, BATCH, 64),
        v,
        (1, 32),
        &s.h,
        (64, 1),
        &mut sums[o.w2..],
        (64, 1),
    );
    for (drow, vrow) in s.g.chunks(64).zip(v.chunks(32)) {
        for (acc, d) in sums[o.b1..o.b1 + 64].iter_mut().zip(drow) {
            *acc += d;
        }
        for (acc, x) in sums[o.b2..o.b2 + 32].iter_mut().zip(vrow) {
            *acc += x;
        }
    }
    // vjp_u = D·W1[:, ..32].
    gemm(
        (BATCH, 64, 32),
        &s.g,
        (64, 1),
        &p[o.w1..],
        (33, 1),
        out,
        (32, 1),
    );
}

// ---- the rows --------------------------------------------------------------------------------

/// One benchmark row: a JIT call and a rustc call of the same function on the same buffers.
/// Rows without a target show a variant's cost (the checked call, the solver's field).
struct Row {
    name: String,
    target: Option<f64>,
    jit: Box<dyn FnMut()>,
    rustc: Box<dyn FnMut()>,
}

/// `f(u, p, out)`, and `vjp(u, p, v, out)` with `out = [vjp_u, vjp_p]`.
type HandF = fn(&[f64], &[f64], &mut [f64]);
type HandVjp = fn(&[f64], &[f64], &[f64], &mut [f64]);

/// A scalar model's f and VJP rows; checks first that the two agree.
fn scalar_rows(
    name: &str,
    hand_f: HandF,
    hand_vjp: HandVjp,
    check_layout: impl Fn(&Model),
) -> Vec<Row> {
    let m = model(&example(name));
    check_layout(&m);
    let (f, g) = field_and_vjp(&m);
    let kf = compile(&f, name).expect("field compiles");
    let kg = compile(&g, name).expect("vjp compiles");
    let t = vec![0.3];
    let u = values(m.state_size, 0.05, 0.5, 1.0);
    let p = params(&m);
    let v = values(m.state_size, -1.0, 1.0, 2.0);

    let mut out_jit = vec![0.0; kf.output_len()];
    let mut out_rs = vec![0.0; kf.output_len()];
    kf.call(&[&t, &u, &p], &mut out_jit).expect("call");
    hand_f(&u, &p, &mut out_rs);
    assert_close(&format!("{name} f"), &out_jit, &out_rs);
    let mut g_jit = vec![0.0; kg.output_len()];
    let mut g_rs = vec![0.0; kg.output_len()];
    kg.call(&[&t, &u, &p, &v], &mut g_jit).expect("call");
    hand_vjp(&u, &p, &v, &mut g_rs);
    assert_close(&format!("{name} vjp"), &g_jit, &g_rs);

    let mut bf = kf.bind_with(&[&t, &u, &p]).expect("binds");
    let mut bg = kg.bind_with(&[&t, &u, &p, &v]).expect("binds");
    bf.run();
    bg.run();
    assert_eq!(bf.out(), &out_jit[..], "{name} f: bound equals checked");
    assert_eq!(bg.out(), &g_jit[..], "{name} vjp: bound equals checked");

    let mut field = JitField::new(&m, &[]).expect("field compiles");
    let mut du = vec![0.0; m.state_size];
    field.eval(t[0], &u, &mut du);
    assert_eq!(du, out_jit, "{name}: JitField equals the kernel");

    let hand_f_row = |u: &[f64], p: &[f64]| {
        let (u, p) = (u.to_vec(), p.to_vec());
        let mut out = vec![0.0; u.len()];
        Box::new(move || black_box(hand_f)(black_box(&u), black_box(&p), black_box(&mut out)))
            as Box<dyn FnMut()>
    };
    let hand_vjp_row = |u: &[f64], p: &[f64], v: &[f64], len: usize| {
        let (u, p, v) = (u.to_vec(), p.to_vec(), v.to_vec());
        let mut out = vec![0.0; len];
        Box::new(move || {
            black_box(hand_vjp)(
                black_box(&u),
                black_box(&p),
                black_box(&v),
                black_box(&mut out),
            )
        }) as Box<dyn FnMut()>
    };
    let g_len = g_rs.len();
    let (t2, u2, p2, v2) = (t.clone(), u.clone(), p.clone(), v.clone());
    let (t3, u3) = (t[0], u.clone());
    let field_rustc = hand_f_row(&u, &p);
    let checked_f_rustc = hand_f_row(&u, &p);
    let checked_vjp_rustc = hand_vjp_row(&u, &p, &v, g_len);
    vec![
        Row {
            name: format!("{name} f"),
            target: Some(1.5),
            jit: Box::new(move || black_box(&mut bf).run()),
            rustc: hand_f_row(&u, &p),
        },
        Row {
            name: format!("{name} vjp"),
            target: Some(1.5),
            jit: Box::new(move || black_box(&mut bg).run()),
            rustc: hand_vjp_row(&u, &p, &v, g_len),
        },
        Row {
            name: format!("{name} f, checked `Kernel::call`"),
            target: None,
            jit: Box::new(move || {
                kf.call(black_box(&[&t, &u, &p]), black_box(&mut out_jit))
                    .expect("call")
            }),
            rustc: checked_f_rustc,
        },
        Row {
            name: format!("{name} vjp, checked `Kernel::call`"),
            target: None,
            jit: Box::new(move || {
                kg.call(black_box(&[&t2, &u2, &p2, &v2]), black_box(&mut g_jit))
                    .expect("call")
            }),
            rustc: checked_vjp_rustc,
        },
        Row {
            name: format!("{name} f, `JitField::eval`"),
            target: None,
            jit: Box::new(move || {
                field.eval(black_box(t3), black_box(&u3), black_box(&mut du));
            }),
            rustc: field_rustc,
        },
    ]
}

fn digits_rows() -> Vec<Row> {
    let m = model(&example("digits"));
    let o = Digits {
        w1: offset(&m, "f.W1"),
        b1: offset(&m, "f.b1"),
        w2: offset(&m, "f.W2"),
        b2: offset(&m, "f.b2"),
    };
    let (f, g) = field_and_vjp(&m);
    let kf = compile_batch(&f, "digits", &[]).expect("field compiles");
    let kg = compile_batch(&g, "digits", &unbatched_gradients(&g)).expect("vjp compiles");
    assert!(kf.uses_gemm() && kg.uses_gemm());
    let t = values(BATCH, 0.0, 1.0, 3.0);
    let u = values(BATCH * 32, -1.0, 1.0, 4.0);
    let x = values(BATCH * 64, 0.0, 16.0, 5.0);
    let v = values(BATCH * 32, -1.0, 1.0, 6.0);
    let p = params(&m);

    let mut s = DigitsScratch::new();
    let mut y_jit = vec![0.0; BATCH * 32];
    let mut y_rs = vec![0.0; BATCH * 32];
    kf.call(&[&t, &u, &p, &x], BATCH, &mut y_jit, &mut [])
        .expect("call");
    digits_f(&o, &t, &u, &p, &mut s, &mut y_rs);
    assert_close("digits f", &y_jit, &y_rs);
    let mut gu_jit = vec![0.0; BATCH * 32];
    let mut gp_jit = vec![0.0; p.len()];
    let (mut gu_rs, mut gp_rs) = (gu_jit.clone(), gp_jit.clone());
    kg.call(&[&t, &u, &p, &x, &v], BATCH, &mut gu_jit, &mut gp_jit)
        .expect("call");
    digits_vjp(&o, &t, &u, &p, &v, &mut s, &mut gu_rs, &mut gp_rs);
    assert_close("digits vjp_u", &gu_jit, &gu_rs);
    assert_close("digits vjp_p (summed)", &gp_jit, &gp_rs);

    let o2 = Digits { ..o };
    let (t2, u2, p2, x2, v2) = (t.clone(), u.clone(), p.clone(), x.clone(), v.clone());
    let (t3, u3, p3) = (t.clone(), u.clone(), p.clone());
    let (t4, u4, p4, v4) = (t.clone(), u.clone(), p.clone(), v.clone());
    let mut s3 = DigitsScratch::new();
    vec![
        Row {
            name: format!("digits f (batch {BATCH})"),
            target: Some(1.2),
            jit: Box::new(move || {
                kf.call(
                    black_box(&[&t, &u, &p, &x]),
                    BATCH,
                    black_box(&mut y_jit),
                    &mut [],
                )
                .expect("call")
            }),
            rustc: Box::new(move || {
                digits_f(
                    &o,
                    black_box(&t3),
                    black_box(&u3),
                    black_box(&p3),
                    &mut s3,
                    black_box(&mut y_rs),
                )
            }),
        },
        Row {
            name: format!("digits vjp (batch {BATCH})"),
            target: Some(1.2),
            jit: Box::new(move || {
                kg.call(
                    black_box(&[&t2, &u2, &p2, &x2, &v2]),
                    BATCH,
                    black_box(&mut gu_jit),
                    black_box(&mut gp_jit),
                )
                .expect("call")
            }),
            rustc: Box::new(move || {
                digits_vjp(
                    &o2,
                    black_box(&t4),
                    black_box(&u4),
                    black_box(&p4),
                    black_box(&v4),
                    &mut s,
                    black_box(&mut gu_rs),
                    black_box(&mut gp_rs),
                )
            }),
        },
    ]
}

fn rows() -> Vec<Row> {
    let mut rows = scalar_rows("spiral", spiral_f, spiral_vjp, |m| {
        let at: Vec<usize> = ["f.W1", "f.b1", "f.W2", "f.b2"]
            .iter()
            .map(|n| offset(m, n))
            .collect();
        assert_eq!(at, [0, 100, 150, 250]);
    });
    rows.extend(scalar_rows("lorenz", lorenz_f, lorenz_vjp, |m| {
        let at: Vec<usize> = ["sigma", "rho", "beta"]
            .iter()
            .map(|n| offset(m, n))
            .collect();
        assert_eq!(at, [0, 1, 2]);
    }));
    rows.extend(scalar_rows("robertson", robertson_f, robertson_vjp, |m| {
        let at: Vec<usize> = ["k1", "k2", "k3"].iter().map(|n| offset(m, n)).collect();
        assert_eq!(at, [0, 1, 2]);
    }));
    rows.extend(scalar_rows("reaction_diffusion", rd_f, rd_vjp, |m| {
        let at: Vec<usize> = ["D", "k"].iter().map(|n| offset(m, n)).collect();
        assert_eq!(at, [0, 1]);
    }));
    rows.extend(digits_rows());
    rows
}

// ---- measurement -----------------------------------------------------------------------------

fn bench_kernels(c: &mut Criterion) {
    for mut row in rows() {
        let mut group = c.benchmark_group(row.name.clone());
        group.bench_function("jit", |b| b.iter(&mut row.jit));
        group.bench_function("rustc", |b| b.iter(&mut row.rustc));
        group.finish();
    }
}

/// Seconds per call of `f` over `n` calls.
fn per_call(f: &mut dyn FnMut(), n: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() / n as f64
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The ratio table: the two functions of a row alternate, 15 rounds of about 10 ms each.
fn ratio_table() {
    println!("\n| row | JIT | rustc | JIT/rustc | target | met |");
    println!("|---|---|---|---|---|---|");
    for mut row in rows() {
        let once = per_call(&mut row.jit, 100).max(1e-9);
        let n = ((0.01 / once) as u64).max(10);
        let (mut jit, mut rustc) = (Vec::new(), Vec::new());
        for _ in 0..15 {
            jit.push(per_call(&mut row.jit, n));
            rustc.push(per_call(&mut row.rustc, n));
        }
        let (j, r) = (median(jit), median(rustc));
        let ratio = j / r;
        let (target, met) = match row.target {
            Some(target) => (
                format!("≤ {target}"),
                if ratio <= target { "yes" } else { "no" },
            ),
            None => ("—".to_string(), "—"),
        };
        println!(
            "| {} | {} | {} | {:.2} | {target} | {met} |",
            row.name,
            human(j),
            human(r),
            ratio,
        );
    }
}

fn human(secs: f64) -> String {
    if secs < 1e-6 {
        format!("{:.1} ns", secs * 1e9)
    } else {
        format!("{:.2} µs", secs * 1e6)
    }
}

/// Compile time of every example's field and VJP (and the batched digits kernels).
fn compile_times() {
    println!("\n| example | field | VJP |");
    println!("|---|---|---|");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "gbx"))
        .collect();
    files.sort();
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    for path in files {
        let m = model(&path);
        let (f, g) = field_and_vjp(&m);
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let kf = compile(&f, &name).expect("field compiles");
        let kg = compile(&g, &name).expect("vjp compiles");
        println!(
            "| {name} | {} | {} |",
            ms(kf.compile_time()),
            ms(kg.compile_time())
        );
        if name == "digits" {
            let bf = compile_batch(&f, &name, &[]).expect("batched field");
            let bg = compile_batch(&g, &name, &unbatched_gradients(&g)).expect("batched vjp");
            println!(
                "| digits, batched | {} | {} |",
                ms(bf.compile_time()),
                ms(bg.compile_time())
            );
        }
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(500))
        .configure_from_args()
}

/// 50 arguments spread over the range a hidden layer sees (both branches of `ir::math::tanh`).
fn tanh_args() -> Vec<f64> {
    (0..50).map(|i| (i as f64 - 24.5) * 0.17).collect()
}

/// A named timed closure.
type Timed = (&'static str, Box<dyn FnMut()>);

/// `tanh` of 50 values: glassbox's slice entry (what a kernel calls once per layer), its scalar
/// version in a loop, and libm's.
fn tanh_versions() -> Vec<Timed> {
    let x = tanh_args();
    let mut out = vec![0.0; x.len()];
    let (x2, mut out2, x3, mut out3) = (x.clone(), out.clone(), x.clone(), out.clone());
    vec![
        (
            "tanh_slice (glassbox_tanh_n)",
            Box::new(move || glassbox::jit::tanh_slice(black_box(&x), black_box(&mut out))),
        ),
        (
            "ir::math::tanh, scalar loop",
            Box::new(move || {
                for (o, v) in black_box(&mut out2).iter_mut().zip(black_box(&x2)) {
                    *o = tanh(*v);
                }
            }),
        ),
        (
            "libm tanh, scalar loop",
            Box::new(move || {
                for (o, v) in black_box(&mut out3).iter_mut().zip(black_box(&x3)) {
                    *o = v.tanh();
                }
            }),
        ),
    ]
}

fn bench_tanh(c: &mut Criterion) {
    let mut group = c.benchmark_group("tanh x50");
    for (name, mut f) in tanh_versions() {
        group.bench_function(name, |b| b.iter(&mut f));
    }
    group.finish();
}

/// The `tanh` versions interleaved (15 rounds of about 10 ms each), median per call of 50.
fn tanh_table() {
    println!("\n| tanh of 50 values | per call | per value |");
    println!("|---|---|---|");
    let mut versions = tanh_versions();
    let mut times = vec![Vec::new(); versions.len()];
    for _ in 0..15 {
        for ((_, f), t) in versions.iter_mut().zip(&mut times) {
            t.push(per_call(f.as_mut(), 20_000));
        }
    }
    for ((name, _), t) in versions.iter().zip(times) {
        let m = median(t);
        println!("| {name} | {} | {} |", human(m), human(m / 50.0));
    }
}

/// A kernel of one product, `a` unbatched and `b` batched (as in `tests/jit/dense.rs`).
fn product(op: Dense, m: usize, n: usize) -> Function {
    let (la, lb) = match op {
        Dense::MatVec | Dense::MatVecT => (m * n, n),
        Dense::Outer => (m, n),
    };
    let mut f = Function::new(vec![
        ArgSpec::new("a", la, false),
        ArgSpec::new("b", lb, true),
    ]);
    let b = f.input("b", 0, Shape::Vector(lb)).expect("b");
    let r = match op {
        Dense::MatVec => {
            let w = f.input("a", 0, Shape::Matrix(m, n)).expect("a");
            f.graph.matvec(w, b)
        }
        Dense::MatVecT => {
            let w = f.input("a", 0, Shape::Matrix(n, m)).expect("a");
            let t = f.graph.transpose(w);
            f.graph.matvec(t, b)
        }
        Dense::Outer => {
            let a = f.input("a", 0, Shape::Vector(m)).expect("a");
            f.graph.outer(a, b)
        }
    };
    f.push_output("r", r);
    f
}

/// Median time per bound call of `f` compiled with each of `options`, interleaved (15 rounds).
fn interleaved(f: &Function, args: &[Vec<f64>], options: &[Options]) -> Vec<f64> {
    let mut bound: Vec<_> = options
        .iter()
        .map(|&o| {
            let k = compile_with(f, "dense", o).expect("compiles");
            let mut b = k.bind();
            for (i, a) in args.iter().enumerate() {
                b.set_arg(i, a).expect("argument");
            }
            b
        })
        .collect();
    let mut times = vec![Vec::new(); bound.len()];
    for _ in 0..15 {
        for (b, t) in bound.iter_mut().zip(&mut times) {
            t.push(per_call(&mut || b.run(), 20_000));
        }
    }
    times.into_iter().map(median).collect()
}

/// Where a dense runtime call pays: each product inline (`call_min: usize::MAX`) and as a call
/// (`call_min: 1`), and the spiral's field and VJP with no calls and with the default
/// threshold (`DEFAULT_CALL_MIN`).
fn dense_table() {
    let inline = Options {
        call_min: usize::MAX,
        ..Options::default()
    };
    let call = Options {
        call_min: 1,
        ..Options::default()
    };
    println!("\n| product | multiplies | inline | dense call | call/inline |");
    println!("|---|---|---|---|---|");
    for op in [Dense::MatVec, Dense::MatVecT, Dense::Outer] {
        for (m, n) in [
            (4, 4),
            (8, 8),
            (50, 2),
            (2, 50),
            (16, 32),
            (64, 33),
            (33, 64),
        ] {
            let f = product(op, m, n);
            let args: Vec<Vec<f64>> = f
                .args
                .iter()
                .enumerate()
                .map(|(i, a)| values(a.len, -1.0, 1.0, i as f64))
                .collect();
            let t = interleaved(&f, &args, &[inline, call]);
            println!(
                "| {op:?} {m}×{n} | {} | {} | {} | {:.2} |",
                m * n,
                human(t[0]),
                human(t[1]),
                t[1] / t[0]
            );
        }
    }
    let m = model(&example("spiral"));
    let p = params(&m);
    let (f, g) = field_and_vjp(&m);
    for (what, func) in [("spiral field", &f), ("spiral VJP", &g)] {
        let args: Vec<Vec<f64>> = func
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| match a.name.as_str() {
                "p" => p.clone(),
                _ => values(a.len, -1.0, 1.0, i as f64),
            })
            .collect();
        let t = interleaved(func, &args, &[inline, Options::default()]);
        println!(
            "| {what}: no calls vs default (≥ {DEFAULT_CALL_MIN}) | — | {} | {} | {:.2} |",
            human(t[0]),
            human(t[1]),
            t[1] / t[0]
        );
    }
}

/// The two-wide vector code (`Options::simd`) against the scalar code, per bound call: the
/// spiral's field and VJP (plain and adding its `∂p`, as training runs it) and the products.
fn simd_table() {
    let scalar = Options {
        simd: false,
        ..Options::default()
    };
    let vector = Options {
        simd: true,
        ..Options::default()
    };
    println!("\n| kernel | scalar | F64X2 | F64X2/scalar |");
    println!("|---|---|---|---|");
    let row = |what: &str, f: &Function, args: &[Vec<f64>], from: usize| {
        let [s, v] = [scalar, vector].map(|o| Options {
            accumulate_from: from,
            ..o
        });
        let t = interleaved(f, args, &[s, v]);
        println!(
            "| {what} | {} | {} | {:.2} |",
            human(t[0]),
            human(t[1]),
            t[1] / t[0]
        );
    };
    for op in [Dense::MatVec, Dense::MatVecT, Dense::Outer] {
        for (m, n) in [(50, 2), (2, 50), (7, 9)] {
            let f = product(op, m, n);
            let args: Vec<Vec<f64>> = (f.args.iter().enumerate())
                .map(|(i, a)| values(a.len, -1.0, 1.0, i as f64))
                .collect();
            row(&format!("{op:?} {m}×{n}"), &f, &args, usize::MAX);
        }
    }
    let m = model(&example("spiral"));
    let p = params(&m);
    let (f, g) = field_and_vjp(&m);
    let n = f.output_len();
    for (what, func, from) in [
        ("spiral field", &f, usize::MAX),
        ("spiral VJP", &g, usize::MAX),
        ("spiral VJP adding ∂p", &g, n),
    ] {
        let args: Vec<Vec<f64>> = (func.args.iter().enumerate())
            .map(|(i, a)| match a.name.as_str() {
                "p" => p.clone(),
                _ => values(a.len, -1.0, 1.0, i as f64),
            })
            .collect();
        row(what, func, &args, from);
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_kernels, bench_tanh
}

fn main() {
    // `KERNELS_TABLE=simd cargo bench --bench kernels`: that table alone.
    if std::env::var("KERNELS_TABLE").is_ok_and(|t| t == "simd") {
        return simd_table();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratio_table();
    tanh_table();
    dense_table();
    simd_table();
    compile_times();
}
