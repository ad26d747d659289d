//! One scalar semantics (`glassbox::math`): every builtin and operator, folded by the checker
//! (`const k = f(x)`), evaluated by `ir::eval` on a parameter (`du/dt = f(q)`), folded by the
//! IR's constructors (`du/dt = f(<literal>)`), and run by a JIT kernel, gives the same bits on
//! ±0, ±∞, NaN, subnormals and ordinary values. NaN is compared as "both NaN".
//!
//! The builtins come from `Builtin::ALL` (a new builtin is covered without touching this file);
//! the operators are the language's five elementwise ones plus prefix `-`.

use glassbox::ir::lower::{Part, lower};
use glassbox::ir::{Function, eval};
use glassbox::jit::{Options, compile_with};
use glassbox::sema::{Builtin, Model};
use glassbox::source::{MemoryLoader, SourceFile};

const VALUES: [f64; 22] = [
    0.0,
    -0.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    5e-324,
    -2.2e-308,
    f64::MIN_POSITIVE,
    1e-8,
    0.5,
    -0.5,
    0.625,
    1.0,
    -1.0,
    2.0,
    3.0,
    -3.0,
    2.5,
    25.0,
    -710.0,
    800.0,
    1e300,
];

/// The language's elementwise binary operators.
const OPERATORS: [&str; 5] = ["+", "-", "*", "/", "^"];

/// `v` as a glassbox expression whose value has exactly `v`'s bits (NaN: some NaN).
fn spell(v: f64) -> String {
    let s = if v.is_nan() {
        "0/0".to_string()
    } else if v.is_infinite() {
        "1/0".to_string()
    } else {
        // `{:e}` is the shortest spelling that reads back as the same `f64`.
        format!("{:e}", v.abs())
    };
    if v.is_sign_negative() && !v.is_nan() {
        format!("(-{s})")
    } else {
        format!("({s})")
    }
}

/// Source text of an expression, given the spellings of its two operands.
type Spelling = Box<dyn Fn(&str, &str) -> String>;

/// An expression over two operands `a`, `b`, and the number of elements it gives.
struct Template {
    what: String,
    size: usize,
    expr: Spelling,
}

fn template(what: &str, size: usize, expr: impl Fn(&str, &str) -> String + 'static) -> Template {
    let (what, expr) = (what.to_string(), Box::new(expr));
    Template { what, size, expr }
}

/// Every builtin (the elementwise ones on a scalar and on a vector) and prefix minus.
fn builtins() -> Vec<Template> {
    let mut out = Vec::new();
    for &(name, f) in Builtin::ALL.iter() {
        if f.is_elementwise() {
            out.push(template(name, 1, move |a, _| format!("{name}({a})")));
            let vector = move |a: &str, b: &str| format!("{name}([{a}, {b}])");
            out.push(template(&format!("{name} of a vector"), 2, vector));
        } else if f.arity() == 2 {
            let dot = move |a: &str, b: &str| format!("{name}([{a}, {b}], [{b}, {a}])");
            out.push(template(name, 1, dot));
        } else {
            out.push(template(name, 1, move |a, b| format!("{name}([{a}, {b}])")));
        }
    }
    out.push(template("prefix -", 1, |a, _| format!("-{a}")));
    out
}

fn operators() -> Vec<Template> {
    OPERATORS
        .iter()
        .map(|&op| template(op, 1, move |a, b| format!("{a} {op} {b}")))
        .collect()
}

/// One expression in several spellings; each must give the bits `ir::eval` gives for `param`.
struct Case {
    what: String,
    /// `const` name: the checker's fold of the literals.
    folded: String,
    /// State whose derivative is the expression of the params (the oracle).
    param: String,
    /// States whose derivative is the expression of literals (folded before evaluation) and
    /// of a param and a literal (the IR constructors' rewrites, the JIT's inline `x^3`).
    others: Vec<String>,
}

/// A model where `q` is `VALUES[i]` and `r{j}` is `VALUES[j]`: every builtin at
/// `(VALUES[i], VALUES[i + 1])`, every operator at `(VALUES[i], VALUES[j])` for all `j`.
fn model_source(i: usize) -> (String, Vec<Case>) {
    let n = VALUES.len();
    let mut src = format!("model fold_eval_{i}\nparam q = {}\n", spell(VALUES[i]));
    for (j, &v) in VALUES.iter().enumerate() {
        src += &format!("param r{j} = {}\n", spell(v));
    }
    let mut cases = Vec::new();
    let mut add = |src: &mut String, t: &Template, j: usize| {
        let k = cases.len();
        let (x, y, r) = (spell(VALUES[i]), spell(VALUES[j]), format!("r{j}"));
        let e = &t.expr;
        *src += &format!("const k{k} = {}\n", e(&x, &y));
        let mut states: Vec<String> = Vec::new();
        for (s, body) in [e("q", &r), e(&x, &y), e("q", &y), e(&x, &r)]
            .iter()
            .enumerate()
        {
            let name = format!("s{k}_{s}");
            let decl = if t.size == 1 {
                name.clone()
            } else {
                format!("{name}[{}]", t.size)
            };
            *src += &format!("state {decl}\nd{name}/dt = {body}\n");
            states.push(name);
        }
        cases.push(Case {
            what: format!("{} at ({:e}, {:e})", t.what, VALUES[i], VALUES[j]),
            folded: format!("k{k}"),
            param: states.remove(0),
            others: states,
        });
    };
    for t in builtins() {
        add(&mut src, &t, (i + 1) % n);
    }
    for t in operators() {
        for j in 0..n {
            add(&mut src, &t, j);
        }
    }
    (src, cases)
}

fn check(src: &str) -> Model {
    let file = SourceFile::new("fold_eval.gbx", src);
    let checked = glassbox::check_source(&file, &MemoryLoader(Default::default()));
    let messages: Vec<&str> = checked.diags.iter().map(|d| d.message.as_str()).collect();
    assert!(messages.is_empty(), "{messages:?}\n{src}");
    checked.model.expect("no diagnostics means a model")
}

fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn bits(xs: &[f64]) -> String {
    let each: Vec<String> = xs
        .iter()
        .map(|x| format!("{x:e} ({:#x})", x.to_bits()))
        .collect();
    each.join(", ")
}

/// The field's outputs by name (`d{state}/dt`), sliced out of its flat result.
fn by_output<'a>(f: &Function, flat: &'a [f64], state: &str) -> &'a [f64] {
    let mut at = 0;
    for o in &f.outputs {
        let len = f.graph.shape(o.node).len();
        if o.name == format!("d{state}/dt") {
            return &flat[at..at + len];
        }
        at += len;
    }
    panic!("no output for {state}")
}

#[test]
fn folding_evaluation_and_kernels_agree_bit_for_bit_on_every_builtin() {
    let mut checked = 0;
    for i in 0..VALUES.len() {
        let (src, cases) = model_source(i);
        let m = check(&src);
        let p: Vec<f64> = m.params.iter().flat_map(|p| p.init.clone()).collect();
        // The spellings read back as the values themselves.
        for (j, &v) in VALUES.iter().enumerate() {
            assert!(same(p[j + 1], v), "r{j} is {:e}, not {v:e}", p[j + 1]);
        }
        let f = lower(&m, Part::Field).expect("field lowers");
        let args: Vec<Vec<f64>> = f
            .args
            .iter()
            .map(|a| {
                if a.name == "p" {
                    p.clone()
                } else {
                    vec![0.0; a.len]
                }
            })
            .collect();
        let refs: Vec<&[f64]> = args.iter().map(Vec::as_slice).collect();
        let want = eval(&f, &refs, 1).expect("interpreter runs");
        for options in [
            Options::default(),
            Options {
                unroll: 0,
                call_min: usize::MAX,
                ..Options::default()
            },
        ] {
            let k = compile_with(&f, "fold_eval", options).expect("compiles");
            let mut got = vec![f64::NAN; k.output_len()];
            k.call(&refs, &mut got).expect("buffers fit");
            for (n, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    same(*a, *b),
                    "model {i} ({options:?}), output {n}: jit {a:e} vs eval {b:e}"
                );
            }
        }
        for case in &cases {
            let oracle = by_output(&f, &want, &case.param);
            let folded = &m
                .consts
                .iter()
                .find(|c| c.name == case.folded)
                .expect("const")
                .value;
            let agree = |got: &[f64]| {
                got.len() == oracle.len() && got.iter().zip(oracle).all(|(a, b)| same(*a, *b))
            };
            assert!(
                agree(&folded.data),
                "{}: folded [{}], evaluated [{}]",
                case.what,
                bits(&folded.data),
                bits(oracle)
            );
            for other in &case.others {
                let got = by_output(&f, &want, other);
                assert!(
                    agree(got),
                    "{} ({other}): [{}] vs [{}]",
                    case.what,
                    bits(got),
                    bits(oracle)
                );
            }
            checked += 1;
        }
    }
    assert!(checked > VALUES.len() * (Builtin::ALL.len() + OPERATORS.len() * VALUES.len()));
}

/// The case: `relu(log(-1))` folded to 0 while `relu(q)` with `q = log(-1)` evaluated
/// to NaN. Both are NaN now (`math::Unary::Relu` keeps a NaN).
#[test]
fn relu_of_a_nan_folds_to_what_it_evaluates_to() {
    let m = check(
        "model relu_nan\nconst c = relu(log(-1))\nparam q = log(-1)\nstate u\ndu/dt = relu(q)\n",
    );
    let f = lower(&m, Part::Field).expect("field lowers");
    let p: Vec<f64> = m.params.iter().flat_map(|p| p.init.clone()).collect();
    let evaluated = eval(&f, &[&[0.0], &[0.0], &p], 1).expect("interpreter runs");
    let folded = m.consts[0].value.data[0];
    assert!(evaluated[0].is_nan(), "relu(q) is {:e}", evaluated[0]);
    assert!(folded.is_nan(), "relu(log(-1)) folds to {folded:e}");
}
