//! Stdlib nets (`mlp`, `linear`): written in Rust because their constructors are variadic.
//!
//! A net's layer `i` (1-based) owns two params in the model's flat vector: `NAME.W{i}`
//! (`n_i × n_{i-1}`, row-major) and `NAME.b{i}` (`n_i`), allocated in declaration order right
//! where the net is declared. Initial values are deterministic from the context's seed and the
//! parameter's *name* alone (ChaCha8 seeded with an FNV-1a hash of both), so adding or removing
//! one net never changes another's initial weights.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::checker::{Checker, GlobalKind};
use super::model::*;
use super::options::Want;
use crate::diag::did_you_mean;
use crate::syntax::ast::NetDecl;

/// The input size a net expects (`n0`): the total size of its (concatenated) arguments.
pub fn net_input_size(net: &Net) -> usize {
    net.input_size()
}

fn fnv1a(seed: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.to_le_bytes().iter().chain(name.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Initial values of a weight matrix `rows × cols` (fan_out × fan_in) named `name`.
pub fn init_values(init: Init, name: &str, rows: usize, cols: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(fnv1a(seed, name));
    let n = rows * cols;
    let (fan_in, fan_out) = (cols.max(1) as f64, rows.max(1) as f64);
    match init {
        Init::Glorot => {
            let a = (6.0 / (fan_in + fan_out)).sqrt();
            (0..n).map(|_| rng.random_range(-a..a)).collect()
        }
        Init::He => normal_values(&mut rng, (2.0 / fan_in).sqrt(), n),
        Init::Normal { sigma } => normal_values(&mut rng, sigma, n),
    }
}

fn normal_values(rng: &mut ChaCha8Rng, sigma: f64, n: usize) -> Vec<f64> {
    match Normal::new(0.0, sigma) {
        Ok(d) => (0..n).map(|_| d.sample(rng)).collect(),
        Err(_) => vec![0.0; n],
    }
}

const ACTS: [(&str, Activation); 5] = [
    ("tanh", Activation::Tanh),
    ("relu", Activation::Relu),
    ("sigmoid", Activation::Sigmoid),
    ("softplus", Activation::Softplus),
    ("identity", Activation::Identity),
];

impl Checker<'_> {
    pub fn net_decl(&mut self, d: &NetDecl) {
        if self.owned(&d.name).is_none() {
            return;
        }
        let ctor = &d.ctor;
        let kind = match ctor.callee.name.as_str() {
            "mlp" => NetKind::Mlp,
            "linear" => NetKind::Linear,
            other => {
                let help = match did_you_mean(other, ["mlp", "linear"]) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "the stdlib nets are `mlp(n0, n1, ..., nk; act = tanh)` and `linear(n_in, n_out)`".into(),
                };
                self.error(
                    "glassbox::unknown_net",
                    ctor.callee.span,
                    format!("there is no net constructor `{other}`"),
                    "unknown constructor",
                    help,
                );
                return;
            }
        };
        let known: &[&str] = if kind == NetKind::Mlp {
            &["act", "init"]
        } else {
            &["init"]
        };
        let (pos, named) = self.named_options(&ctor.args, usize::MAX, known, &ctor.callee.name);
        let mut sizes = Vec::new();
        let mut ok = true;
        for a in &pos {
            match self.const_int(&a.value, "a layer size") {
                Some(0) => {
                    ok = false;
                    self.error(
                        "glassbox::bad_net",
                        a.span,
                        "a layer size must be at least 1",
                        "zero-sized layer",
                        "give every layer a positive size",
                    );
                }
                Some(n) => sizes.push(n),
                None => ok = false,
            }
        }
        let (min, max, shape_help) = match kind {
            NetKind::Mlp => (
                2,
                usize::MAX,
                "`mlp(n0, n1, ..., nk)` takes the input size, hidden sizes and output size",
            ),
            NetKind::Linear => (
                2,
                2,
                "`linear(n_in, n_out)` takes an input and an output size",
            ),
        };
        if ok && (pos.len() < min || pos.len() > max) {
            let span = pos.get(max).map_or(ctor.span, |a| a.span);
            self.error(
                "glassbox::bad_net",
                span,
                format!(
                    "`{}` takes {} layer sizes, got {}",
                    ctor.callee.name,
                    if max == 2 {
                        "2".to_string()
                    } else {
                        "at least 2".to_string()
                    },
                    pos.len()
                ),
                "wrong number of sizes",
                shape_help,
            );
            ok = false;
        }
        let act = match named.get("act") {
            Some((n, e)) => {
                let words: Vec<&str> = ACTS.iter().map(|(w, _)| *w).collect();
                let w = self.option_word(&n.name, e, &words);
                ACTS.iter().find(|(a, _)| Some(*a) == w).map(|(_, a)| *a)
            }
            None => Some(if kind == NetKind::Mlp {
                Activation::Tanh
            } else {
                Activation::Identity
            }),
        };
        let init = match named.get("init") {
            None => Some(Init::Glorot),
            Some((n, e)) => self.net_init(&n.name, e),
        };
        let (Some(act), Some(init)) = (act, init) else {
            return;
        };
        if !ok {
            return;
        }
        // Counted (without overflow) before `init_values` allocates the weights.
        let weights = sizes.windows(2).try_fold(0usize, |acc, w| {
            let layer = w[0].checked_mul(w[1])?.checked_add(w[1])?;
            acc.checked_add(layer)
        });
        let what = format!("net `{}`", d.name.name);
        if !self.param_room(weights, &what, ctor.span) {
            return;
        }
        let net = self.m.nets.len();
        let mut layers = Vec::new();
        for (i, w) in sizes.windows(2).enumerate() {
            let (n_in, n_out) = (w[0], w[1]);
            let wname = format!("{}.W{}", d.name.name, i + 1);
            let bname = format!("{}.b{}", d.name.name, i + 1);
            let weight = self.add_param(
                wname.clone(),
                Shape::matrix(n_out, n_in),
                true,
                init_values(init, &wname, n_out, n_in, self.ctx.seed),
                ParamOrigin::NetWeight { net, layer: i + 1 },
                d.name.span,
            );
            let bias = self.add_param(
                bname,
                Shape::vector(n_out),
                true,
                vec![0.0; n_out],
                ParamOrigin::NetBias { net, layer: i + 1 },
                d.name.span,
            );
            layers.push(Layer { weight, bias });
        }
        self.m.nets.push(Net {
            name: d.name.name.clone(),
            kind,
            sizes,
            act,
            init,
            layers,
            span: d.name.span,
        });
        self.set_global(&d.name, GlobalKind::Net(net));
    }

    fn net_init(&mut self, name: &str, e: &crate::syntax::ast::Expr) -> Option<Init> {
        use crate::syntax::ast::ExprKind;
        if let ExprKind::Call(c) = &e.kind
            && c.callee.name == "normal"
        {
            let Some(arg) = c.args.first().filter(|_| c.args.len() == 1) else {
                self.error(
                    "glassbox::bad_option_value",
                    e.span,
                    "`normal` takes one argument, the standard deviation",
                    "expected `normal(σ)`",
                    "write `init = normal(0.1)`",
                );
                return None;
            };
            let sigma = self.option_number("normal", &arg.value, Want::Positive)?;
            return Some(Init::Normal { sigma });
        }
        match self.option_word(name, e, &["glorot", "he", "normal"])? {
            "glorot" => Some(Init::Glorot),
            "he" => Some(Init::He),
            _ => {
                self.error(
                    "glassbox::bad_option_value",
                    e.span,
                    "`normal` needs its standard deviation",
                    "expected `normal(σ)`",
                    "write `init = normal(0.1)`",
                );
                None
            }
        }
    }

    /// Allocate a param slot at the end of the flat vector.
    pub fn add_param(
        &mut self,
        name: String,
        shape: Shape,
        learn: bool,
        init: Vec<f64>,
        origin: ParamOrigin,
        span: crate::source::Span,
    ) -> usize {
        let offset = self.m.param_size;
        self.m.param_size += shape.size();
        self.m.params.push(Param {
            name,
            shape,
            offset,
            learn,
            init,
            origin,
            span,
        });
        self.m.params.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_deterministic_and_name_dependent() {
        let a = init_values(Init::Glorot, "f.W1", 50, 2, 7);
        let b = init_values(Init::Glorot, "f.W1", 50, 2, 7);
        let c = init_values(Init::Glorot, "g.W1", 50, 2, 7);
        let d = init_values(Init::Glorot, "f.W1", 50, 2, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(a.len(), 100);
    }

    #[test]
    fn glorot_bound_and_normal_spread() {
        let a = (6.0f64 / 52.0).sqrt();
        let w = init_values(Init::Glorot, "f.W1", 50, 2, 0);
        assert!(w.iter().all(|x| x.abs() <= a));
        // Uniform on ±a has variance a²/3; 100 samples: sample variance within 40%.
        let var = w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64;
        assert!((var / (a * a / 3.0) - 1.0).abs() < 0.4, "var {var}");
        let n = init_values(Init::Normal { sigma: 0.1 }, "g.W1", 100, 100, 0);
        let sd = (n.iter().map(|x| x * x).sum::<f64>() / n.len() as f64).sqrt();
        // 10⁴ samples: the sample sd is within 3% of σ with overwhelming probability.
        assert!((sd / 0.1 - 1.0).abs() < 0.03, "sd {sd}");
    }
}
