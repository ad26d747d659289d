//! Hand-built functions that mirror the real models, as lowering will build them: states in
//! `u` (batched), time in `t` (batched), parameters in `p` (shared), dense layers dense.

use glassbox::ir::{ArgSpec, Function, NodeId, Shape, Unary};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A named test model and a sensible evaluation point (t, u, p).
pub struct Model {
    pub name: &'static str,
    pub f: Function,
    pub t: Vec<f64>,
    pub u: Vec<f64>,
    pub p: Vec<f64>,
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn uniform(rng: &mut ChaCha8Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

fn new_fn(u_len: usize, p_len: usize) -> Function {
    Function::new(vec![
        ArgSpec::new("t", 1, true),
        ArgSpec::new("u", u_len, true),
        ArgSpec::new("p", p_len, false),
    ])
}

/// Parameter count of an MLP with the given layer widths.
pub fn mlp_len(widths: &[usize]) -> usize {
    widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
}

/// `mlp(widths; act = tanh)` on `x`, weights laid out from `offset` of `p` as W1, b1, W2, …
fn mlp(f: &mut Function, net: &str, widths: &[usize], mut offset: usize, x: NodeId) -> NodeId {
    let mut h = x;
    let layers = widths.len() - 1;
    for (k, w) in widths.windows(2).enumerate() {
        let (fan_in, fan_out) = (w[0], w[1]);
        let wm = f
            .slot(
                &format!("{net}.W{}", k + 1),
                "p",
                offset,
                Shape::Matrix(fan_out, fan_in),
            )
            .unwrap();
        offset += fan_in * fan_out;
        let b = f
            .slot(
                &format!("{net}.b{}", k + 1),
                "p",
                offset,
                Shape::Vector(fan_out),
            )
            .unwrap();
        offset += fan_out;
        let z = f.graph.matvec(wm, h);
        let z = f.graph.add(z, b);
        h = if k + 1 < layers {
            f.graph.unary(Unary::Tanh, z)
        } else {
            z
        };
    }
    h
}

/// Parameters for an MLP, scaled by fan-in so activations stay O(1).
fn mlp_params(rng: &mut ChaCha8Rng, widths: &[usize]) -> Vec<f64> {
    let mut p = Vec::new();
    for w in widths.windows(2) {
        let s = 1.0 / (w[0] as f64).sqrt();
        p.extend(uniform(rng, w[0] * w[1], 1.5 * s));
        p.extend(uniform(rng, w[1], 0.5));
    }
    p
}

/// torchdiffeq's spiral: `f(y) = W2·tanh(W1·y³ + b1) + b2`, 2-50-2.
pub fn spiral() -> Model {
    let widths = [2, 50, 2];
    let mut f = new_fn(2, mlp_len(&widths));
    let y = f.slot("y", "u", 0, Shape::Vector(2)).unwrap();
    let three = f.graph.constant(3.0);
    let y3 = f.graph.pow(y, three);
    let out = mlp(&mut f, "f", &widths, 0, y3);
    f.push_output("dy", out);
    let mut r = rng(1);
    Model {
        name: "spiral",
        t: vec![0.3],
        u: vec![1.1, -0.7],
        p: mlp_params(&mut r, &widths),
        f,
    }
}

fn scalars(f: &mut Function, arg: &str, names: &[&str]) -> Vec<NodeId> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| f.slot(n, arg, i, Shape::Scalar).unwrap())
        .collect()
}

pub fn lorenz() -> Model {
    let mut f = new_fn(3, 3);
    let u = scalars(&mut f, "u", &["x", "y", "z"]);
    let p = scalars(&mut f, "p", &["sigma", "rho", "beta"]);
    let g = &mut f.graph;
    let (x, y, z) = (u[0], u[1], u[2]);
    let ymx = g.sub(y, x);
    let dx = g.mul(p[0], ymx);
    let rmz = g.sub(p[1], z);
    let xr = g.mul(x, rmz);
    let dy = g.sub(xr, y);
    let xy = g.mul(x, y);
    let bz = g.mul(p[2], z);
    let dz = g.sub(xy, bz);
    let out = g.concat(&[dx, dy, dz]);
    f.push_output("du", out);
    Model {
        name: "lorenz",
        t: vec![0.0],
        u: vec![1.2, -0.4, 20.0],
        p: vec![10.0, 28.0, 8.0 / 3.0],
        f,
    }
}

pub fn robertson() -> Model {
    let mut f = new_fn(3, 3);
    let u = scalars(&mut f, "u", &["y1", "y2", "y3"]);
    let k = scalars(&mut f, "p", &["k1", "k2", "k3"]);
    let g = &mut f.graph;
    let two = g.constant(2.0);
    let k1y1 = g.mul(k[0], u[0]);
    let y2y3 = g.mul(u[1], u[2]);
    let k3y2y3 = g.mul(k[2], y2y3);
    let y2sq = g.pow(u[1], two);
    let k2y2sq = g.mul(k[1], y2sq);
    let neg = g.neg(k1y1);
    let d1 = g.add(neg, k3y2y3);
    let a = g.sub(k1y1, k3y2y3);
    let d2 = g.sub(a, k2y2sq);
    let out = g.concat(&[d1, d2, k2y2sq]);
    f.push_output("dy", out);
    Model {
        name: "robertson",
        t: vec![0.0],
        u: vec![0.9, 3e-5, 0.1],
        p: vec![0.04, 3e7, 1e4],
        f,
    }
}

/// Lotka–Volterra with a learned correction `u = mlp(2, 16, 16, 2)`.
pub fn lotka_volterra() -> Model {
    let widths = [2, 16, 16, 2];
    let mut f = new_fn(2, 2 + mlp_len(&widths));
    let s = scalars(&mut f, "u", &["x", "y"]);
    let ab = scalars(&mut f, "p", &["alpha", "delta"]);
    let xy = f.graph.concat(&[s[0], s[1]]);
    let nn = mlp(&mut f, "u", &widths, 2, xy);
    let g = &mut f.graph;
    let n0 = g.index(nn, 0);
    let n1 = g.index(nn, 1);
    let ax = g.mul(ab[0], s[0]);
    let dx = g.add(ax, n0);
    let dy0 = g.mul(ab[1], s[1]);
    let dy0 = g.neg(dy0);
    let dy = g.add(dy0, n1);
    f.push_output("dx", dx);
    f.push_output("dy", dy);
    let mut r = rng(2);
    let mut p = vec![1.3, 1.8];
    p.extend(mlp_params(&mut r, &widths));
    Model {
        name: "lotka_volterra",
        t: vec![0.0],
        u: vec![1.0, 0.8],
        p,
        f,
    }
}

/// The digits field: `f(concat(h, t))` with `f = mlp(33, 64, 32)`; depends on time.
pub fn digits() -> Model {
    let widths = [33, 64, 32];
    let mut f = new_fn(32, mlp_len(&widths));
    let h = f.slot("h", "u", 0, Shape::Vector(32)).unwrap();
    let t = f.slot("t", "t", 0, Shape::Scalar).unwrap();
    let z = f.graph.concat(&[h, t]);
    let out = mlp(&mut f, "f", &widths, 0, z);
    f.push_output("dh", out);
    let mut r = rng(3);
    let u = uniform(&mut r, 32, 1.0);
    Model {
        name: "digits",
        t: vec![0.4],
        u,
        p: mlp_params(&mut r, &widths),
        f,
    }
}

/// A small non-autonomous field exercising many unary ops: `sin(t)·u + p0·log(u² + 1) +
/// sigmoid(u)·softplus(p1·u) − sqrt(u² + 1)/(2 + cos(u))`.
pub fn assorted() -> Model {
    let mut f = new_fn(3, 2);
    let u = f.slot("u", "u", 0, Shape::Vector(3)).unwrap();
    let t = f.slot("t", "t", 0, Shape::Scalar).unwrap();
    let p = scalars(&mut f, "p", &["a", "b"]);
    let g = &mut f.graph;
    let one = g.constant(1.0);
    let two = g.constant(2.0);
    let st = g.unary(Unary::Sin, t);
    let a = g.mul(st, u);
    let u2 = g.unary(Unary::Square, u);
    let u21 = g.add(u2, one);
    let l = g.unary(Unary::Log, u21);
    let b = g.mul(p[0], l);
    let sg = g.unary(Unary::Sigmoid, u);
    let pu = g.mul(p[1], u);
    let sp = g.unary(Unary::Softplus, pu);
    let c = g.mul(sg, sp);
    let sq = g.unary(Unary::Sqrt, u21);
    let cu = g.unary(Unary::Cos, u);
    let den = g.add(two, cu);
    let d = g.div(sq, den);
    let ab = g.add(a, b);
    let abc = g.add(ab, c);
    let out = g.sub(abc, d);
    f.push_output("du", out);
    Model {
        name: "assorted",
        t: vec![0.7],
        u: vec![0.5, -1.2, 2.0],
        p: vec![0.3, -0.8],
        f,
    }
}

pub fn all() -> Vec<Model> {
    vec![
        spiral(),
        lorenz(),
        robertson(),
        lotka_volterra(),
        digits(),
        assorted(),
    ]
}
