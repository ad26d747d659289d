//! Readable math for a [`Function`]: plain text ([`print_text`]) and LaTeX ([`print_latex`]).
//!
//! A live node used more than once (and not a leaf) is bound to a name, `h1`, `h2`, … in
//! topological order, and printed once as `let h1 = …`; every output is then one equation.
//! Argument regions print by the function's slot table (`f.W1`), else as `u[0]`, `p[3..5]`.
//! Parentheses follow precedence, and are kept for `a + (b + c)`: IEEE addition is not
//! associative, so the printed grouping is the computed one.

use std::fmt::Write;

use super::function::Function;
use super::graph::{Binary, NodeId, Op, Shape, Unary, operands};

/// Precedence levels: a child printed at a lower level than its context needs parentheses.
const SUM: u8 = 1;
const PRODUCT: u8 = 2;
const PREFIX: u8 = 3;
const POWER: u8 = 4;
const ATOM: u8 = 5;

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Text,
    Latex,
}

/// The outputs as equations, with shared subexpressions bound by `let`.
pub fn print_text(f: &Function) -> String {
    render(f, Style::Text)
}

/// The same as LaTeX lines ready for an `align*` environment (`name &= expr \\`).
pub fn print_latex(f: &Function) -> String {
    render(f, Style::Latex)
}

fn render(f: &Function, style: Style) -> String {
    let live = f.live();
    let mut uses = vec![0usize; f.graph.len()];
    for (id, node) in f.graph.nodes() {
        if live[id.index()] {
            for x in operands(&node.op) {
                uses[x.index()] += 1;
            }
        }
    }
    for o in &f.outputs {
        uses[o.node.index()] += 1;
    }
    let mut p = Printer {
        f,
        style,
        done: vec![None; f.graph.len()],
    };
    let mut lines = Vec::new();
    let mut bound = 0;
    for (id, node) in f.graph.nodes() {
        let shared = uses[id.index()] > 1 && !matches!(node.op, Op::Const(_) | Op::Input { .. });
        if !live[id.index()] {
            continue;
        }
        let (text, prec) = p.expr(id);
        if shared {
            bound += 1;
            let name = match style {
                Style::Text => format!("h{bound}"),
                Style::Latex => format!("h_{{{bound}}}"),
            };
            lines.push(match style {
                Style::Text => format!("let {name} = {text}"),
                Style::Latex => format!("{name} &= {text}"),
            });
            p.done[id.index()] = Some((name, ATOM));
        } else {
            p.done[id.index()] = Some((text, prec));
        }
    }
    for o in &f.outputs {
        let (text, _) = p.get(o.node);
        lines.push(match style {
            Style::Text => format!("{} = {text}", o.name),
            Style::Latex => format!("{} &= {text}", latex_name(&o.name, Shape::Scalar, true)),
        });
    }
    match style {
        Style::Text => lines.iter().fold(String::new(), |mut s, l| {
            let _ = writeln!(s, "{l}");
            s
        }),
        Style::Latex => {
            let mut s = lines.join(" \\\\\n");
            s.push('\n');
            s
        }
    }
}

struct Printer<'a> {
    f: &'a Function,
    style: Style,
    /// The printed form of each node already visited, with its precedence.
    done: Vec<Option<(String, u8)>>,
}

impl Printer<'_> {
    fn get(&self, id: NodeId) -> (String, u8) {
        self.done[id.index()]
            .clone()
            .unwrap_or_else(|| ("?".to_string(), ATOM))
    }

    /// The child's text, parenthesised when its precedence is below `min`.
    fn at(&self, id: NodeId, min: u8) -> String {
        let (text, prec) = self.get(id);
        if prec >= min {
            text
        } else {
            match self.style {
                Style::Text => format!("({text})"),
                Style::Latex => format!("\\left({text}\\right)"),
            }
        }
    }

    fn plain(&self, id: NodeId) -> String {
        self.get(id).0
    }

    fn latex(&self) -> bool {
        self.style == Style::Latex
    }

    fn expr(&self, id: NodeId) -> (String, u8) {
        let node = self.f.graph.node(id);
        let l = self.latex();
        match node.op {
            Op::Const(bits) => constant(f64::from_bits(bits), self.style),
            Op::Input { arg, offset } => (self.input(arg, offset, node.shape), ATOM),
            Op::Unary(op, x) => self.unary(op, x),
            Op::Binary(op, a, b) => self.binary(op, a, b),
            Op::Broadcast(s) => {
                let n = node.shape.len();
                if l {
                    (
                        format!("{}\\mathbf{{1}}_{{{n}}}", self.at(s, POWER)),
                        PRODUCT,
                    )
                } else {
                    (format!("fill({}, {n})", self.plain(s)), ATOM)
                }
            }
            Op::Sum(x) => self.call("sum", &[x]),
            Op::Dot(a, b) => {
                if l {
                    let (a, b) = (self.plain(a), self.plain(b));
                    (format!("\\left\\langle {a}, {b}\\right\\rangle"), ATOM)
                } else {
                    self.call("dot", &[a, b])
                }
            }
            Op::MatVec(a, b) | Op::MatMul(a, b) => {
                let dot = if l { " \\cdot " } else { "·" };
                (
                    format!("{}{dot}{}", self.at(a, PRODUCT), self.at(b, PREFIX)),
                    PRODUCT,
                )
            }
            Op::Outer(a, b) => {
                let op = if l { " \\otimes " } else { " ⊗ " };
                (
                    format!("{}{op}{}", self.at(a, PRODUCT), self.at(b, PREFIX)),
                    PRODUCT,
                )
            }
            Op::Transpose(a) => {
                if l {
                    (format!("{{{}}}^{{\\top}}", self.at(a, ATOM)), POWER)
                } else {
                    (format!("{}ᵀ", self.at(a, ATOM)), ATOM)
                }
            }
            Op::Concat(ref parts) => {
                let items: Vec<String> = parts.iter().map(|&p| self.plain(p)).collect();
                if l {
                    let body = items.join(" \\\\ ");
                    (format!("\\begin{{bmatrix}} {body} \\end{{bmatrix}}"), ATOM)
                } else {
                    (format!("[{}]", items.join(", ")), ATOM)
                }
            }
            Op::Slice { x, start } => {
                let end = start + node.shape.len();
                if l {
                    (format!("{{{}}}_{{{start}:{end}}}", self.at(x, ATOM)), ATOM)
                } else {
                    (format!("{}[{start}..{end}]", self.at(x, ATOM)), ATOM)
                }
            }
            Op::Index { x, i } => {
                if l {
                    (format!("{{{}}}_{{{i}}}", self.at(x, ATOM)), ATOM)
                } else {
                    (format!("{}[{i}]", self.at(x, ATOM)), ATOM)
                }
            }
            Op::Reshape(x) => match (node.shape, &self.f.graph.node(x).op) {
                // A matrix assembled from scalars (a Jacobian) prints as a matrix literal.
                (Shape::Matrix(rows, cols), Op::Concat(parts))
                    if parts.len() == rows * cols
                        && parts.iter().all(|&p| self.f.graph.shape(p).is_scalar()) =>
                {
                    let cells: Vec<String> = parts.iter().map(|&p| self.plain(p)).collect();
                    let (cell_sep, row_sep) = if l { (" & ", " \\\\ ") } else { (", ", "; ") };
                    // `max(1)`: a model without states has a 0 × 0 Jacobian, no cells at all.
                    let rows_of_cells = cells.chunks(cols.max(1));
                    let body: Vec<String> = rows_of_cells.map(|r| r.join(cell_sep)).collect();
                    let body = body.join(row_sep);
                    if l {
                        (format!("\\begin{{bmatrix}} {body} \\end{{bmatrix}}"), ATOM)
                    } else {
                        (format!("[{body}]"), ATOM)
                    }
                }
                _ => self.call("reshape", &[x]),
            },
        }
    }

    fn call(&self, name: &str, args: &[NodeId]) -> (String, u8) {
        let items: Vec<String> = args.iter().map(|&a| self.plain(a)).collect();
        let items = items.join(", ");
        match self.style {
            Style::Text => (format!("{name}({items})"), ATOM),
            Style::Latex => {
                let head = match name {
                    "exp" | "log" | "sin" | "cos" | "tan" | "tanh" | "max" | "min" => {
                        format!("\\{name}")
                    }
                    "sigmoid" => "\\sigma".to_string(),
                    other => format!("\\operatorname{{{other}}}"),
                };
                (format!("{head}\\left({items}\\right)"), ATOM)
            }
        }
    }

    fn unary(&self, op: Unary, x: NodeId) -> (String, u8) {
        let l = self.latex();
        match op {
            Unary::Neg => (format!("-{}", self.at(x, PREFIX)), PREFIX),
            Unary::Square => {
                if l {
                    (format!("{{{}}}^{{2}}", self.at(x, ATOM)), POWER)
                } else {
                    (format!("{}^2", self.at(x, ATOM)), POWER)
                }
            }
            Unary::Sqrt if l => (format!("\\sqrt{{{}}}", self.plain(x)), ATOM),
            Unary::Abs if l => (format!("\\left|{}\\right|", self.plain(x)), ATOM),
            Unary::Abs => (format!("|{}|", self.plain(x)), ATOM),
            _ => self.call(op.name(), &[x]),
        }
    }

    fn binary(&self, op: Binary, a: NodeId, b: NodeId) -> (String, u8) {
        let l = self.latex();
        let g = &self.f.graph;
        match op {
            Binary::Add => (
                format!("{} + {}", self.at(a, SUM), self.at(b, PRODUCT)),
                SUM,
            ),
            Binary::Sub => (
                format!("{} - {}", self.at(a, SUM), self.at(b, PRODUCT)),
                SUM,
            ),
            Binary::Mul => {
                let hadamard = !g.shape(a).is_scalar() && !g.shape(b).is_scalar();
                let sym = match (l, hadamard) {
                    (true, true) => " \\odot ",
                    (true, false) => " \\cdot ",
                    (false, true) => " ⊙ ",
                    (false, false) => "*",
                };
                (
                    format!("{}{sym}{}", self.at(a, PRODUCT), self.at(b, PREFIX)),
                    PRODUCT,
                )
            }
            Binary::Div => {
                if l {
                    (
                        format!("\\frac{{{}}}{{{}}}", self.plain(a), self.plain(b)),
                        ATOM,
                    )
                } else {
                    (
                        format!("{}/{}", self.at(a, PRODUCT), self.at(b, PREFIX)),
                        PRODUCT,
                    )
                }
            }
            Binary::Pow => {
                if l {
                    (
                        format!("{{{}}}^{{{}}}", self.at(a, ATOM), self.plain(b)),
                        POWER,
                    )
                } else {
                    (format!("{}^{}", self.at(a, ATOM), self.at(b, ATOM)), POWER)
                }
            }
            Binary::Max => self.call("max", &[a, b]),
            Binary::Min => self.call("min", &[a, b]),
        }
    }

    /// An argument region: its slot name, an element or range of a slot, or of the argument.
    fn input(&self, arg: usize, offset: usize, shape: Shape) -> String {
        let f = self.f;
        let len = shape.len();
        let exact = f
            .slots
            .iter()
            .find(|s| s.arg == arg && s.offset == offset && s.shape == shape);
        if let Some(s) = exact {
            return self.name(&s.name, s.shape);
        }
        if let Some(tiles) = self.tiling(arg, offset, len) {
            let names: Vec<String> = tiles.iter().map(|s| self.name(&s.name, s.shape)).collect();
            return if self.latex() {
                format!("\\left[{}\\right]", names.join(", "))
            } else {
                format!("[{}]", names.join(", "))
            };
        }
        let within = f.slots.iter().find(|s| {
            s.arg == arg && s.offset <= offset && offset + len <= s.offset + s.shape.len()
        });
        let (base, base_shape, rel) = match within {
            Some(s) => (s.name.as_str(), s.shape, offset - s.offset),
            None => {
                let spec = &f.args[arg];
                if offset == 0 && len == spec.len && !shape.is_scalar() {
                    return self.name(&spec.name, shape);
                }
                (spec.name.as_str(), Shape::Vector(spec.len), offset)
            }
        };
        let base = self.name(base, base_shape);
        let l = self.latex();
        match (shape, base_shape) {
            (Shape::Scalar, Shape::Matrix(_, n)) if l => {
                format!("{{{base}}}_{{{},{}}}", rel / n, rel % n)
            }
            (Shape::Scalar, Shape::Matrix(_, n)) => format!("{base}[{}, {}]", rel / n, rel % n),
            (Shape::Scalar, _) if l => format!("{{{base}}}_{{{rel}}}"),
            (Shape::Scalar, _) => format!("{base}[{rel}]"),
            _ if l => format!("{{{base}}}_{{{rel}:{}}}", rel + len),
            _ => format!("{base}[{rel}..{}]", rel + len),
        }
    }

    /// Several whole slots laid end to end exactly over `offset..offset + len` (a net applied
    /// to the whole state `[x, y]`), so the printout names them rather than the argument.
    fn tiling(&self, arg: usize, offset: usize, len: usize) -> Option<Vec<&crate::ir::Slot>> {
        let mut tiles = Vec::new();
        let mut at = offset;
        while at < offset + len {
            let next = self
                .f
                .slots
                .iter()
                .find(|s| s.arg == arg && s.offset == at && !s.shape.is_empty())?;
            at += next.shape.len();
            tiles.push(next);
        }
        (at == offset + len && tiles.len() > 1).then_some(tiles)
    }

    fn name(&self, name: &str, shape: Shape) -> String {
        match self.style {
            Style::Text => name.to_string(),
            Style::Latex => latex_name(name, shape, false),
        }
    }
}

fn constant(c: f64, style: Style) -> (String, u8) {
    let prec = if c < 0.0 || c.is_sign_negative() {
        PREFIX
    } else {
        ATOM
    };
    let text = match style {
        Style::Text => format!("{c}"),
        Style::Latex => {
            let a = c.abs();
            if c.is_nan() {
                "\\mathrm{NaN}".to_string()
            } else if c.is_infinite() {
                if c > 0.0 { "\\infty" } else { "-\\infty" }.to_string()
            } else if a != 0.0 && !(1e-3..1e5).contains(&a) {
                let e = a.log10().floor() as i32;
                let m = c / 10f64.powi(e);
                let m = format!("{}", (m * 1e12).round() / 1e12);
                if m == "1" {
                    format!("10^{{{e}}}")
                } else {
                    format!("{m} \\times 10^{{{e}}}")
                }
            } else {
                format!("{c}")
            }
        }
    };
    let prec = if style == Style::Latex && text.contains("\\times") {
        PRODUCT.min(prec)
    } else {
        prec
    };
    (text, prec)
}

const GREEK: [&str; 24] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi",
    "omega", "Omega",
];

/// `f.W1` (matrix) → `\mathbf{W}_{f,1}`; `k2` → `k_{2}`; `sigma` → `\sigma`; other long
/// names → `\mathrm{…}`. Vectors and matrices are bold. Only letters, digits and `_`/`.` are
/// kept, so the result is always valid LaTeX.
fn latex_name(name: &str, shape: Shape, roman: bool) -> String {
    let (prefix, base) = match name.rsplit_once('.') {
        Some((p, b)) => (Some(p), b),
        None => (None, name),
    };
    let clean = |s: &str| -> String { s.chars().filter(|c| c.is_ascii_alphanumeric()).collect() };
    let base = clean(base);
    let letters: String = base
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let digits = &base[letters.len()..];
    let mut sub: Vec<String> = Vec::new();
    if let Some(p) = prefix {
        sub.push(clean(p));
    }
    let head = if roman || letters.is_empty() {
        let esc = name.replace('_', "\\_");
        let esc: String = esc
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\\' | '.'))
            .collect();
        return format!("\\mathrm{{{esc}}}");
    } else if GREEK.contains(&letters.as_str()) {
        format!("\\{letters}")
    } else if letters.len() == 1 {
        letters.clone()
    } else {
        format!("\\mathrm{{{letters}}}")
    };
    if !digits.is_empty() {
        sub.push(digits.to_string());
    }
    let head = if shape.is_scalar() {
        head
    } else {
        format!("\\mathbf{{{head}}}")
    };
    if sub.is_empty() {
        head
    } else {
        format!("{head}_{{{}}}", sub.join(","))
    }
}
