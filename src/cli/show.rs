//! `glassbox show`: the simplified vector field and the objects derived from it, printed by
//! the IR printers (text or LaTeX), or as the raw IR nodes (`--ir`) and the Cranelift IR of the
//! compiled kernel (`--clif`) for people who investigate performance.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::app::show::{self, View};
use crate::ir::{Function, Op, Shape, operands};
use crate::kit::{emit, load_source};
use crate::source::DiskLoader;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The model file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The vector-Jacobian product vᵀ·∂f/∂(u, p): what the adjoint calls each step.
    #[arg(long, group = "what")]
    pub vjp: bool,
    /// The Jacobian-vector product (∂f/∂u)·w.
    #[arg(long, group = "what")]
    pub jvp: bool,
    /// The dense Jacobian ∂f/∂u.
    #[arg(long, group = "what")]
    pub jacobian: bool,
    /// The K-th time derivative along the flow (K = 2: J·f + ∂f/∂t).
    #[arg(long, group = "what", value_name = "K", value_parser = clap::value_parser!(u8).range(1..=8))]
    pub dt: Option<u8>,
    /// Print LaTeX (the body of an `align*` environment) instead of plain text.
    #[arg(long, group = "form")]
    pub latex: bool,
    /// Print the IR nodes (id, operation, shape) instead of the math.
    #[arg(long, group = "form")]
    pub ir: bool,
    /// Print the Cranelift IR of the compiled kernel instead of the math.
    #[arg(long, group = "form")]
    pub clif: bool,
}

/// The flags' choice of what to print.
fn view(args: &ShowArgs) -> View {
    if args.vjp {
        View::Vjp
    } else if args.jvp {
        View::Jvp
    } else if args.jacobian {
        View::Jacobian
    } else if let Some(k) = args.dt {
        View::TimeDerivative(k)
    } else {
        View::Field
    }
}

pub fn run(args: &ShowArgs) -> ExitCode {
    let file = match load_source(&args.file) {
        Ok(f) => f,
        Err(d) => {
            emit(&[d]);
            return ExitCode::FAILURE;
        }
    };
    let checked = crate::check_source(&file, &DiskLoader);
    emit(&checked.diags);
    let Some(model) = checked.model else {
        return ExitCode::FAILURE;
    };
    match show::derived(&model, view(args)) {
        Ok(parts) if !(args.ir || args.clif) => {
            print!("{}", show::render(&parts, args.latex));
            ExitCode::SUCCESS
        }
        Ok(parts) => {
            for (i, (title, f)) in parts.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                if args.ir {
                    println!("# {title}");
                    print!("{}", print_nodes(f));
                    continue;
                }
                let name = format!("{}.{}", model.name, view(args).kernel_name());
                match crate::jit::compile(f, &name) {
                    Ok(k) => {
                        println!("; {title}");
                        println!(
                            "; compiled in {:.2} ms",
                            k.compile_time().as_secs_f64() * 1e3
                        );
                        print!("{}", k.clif());
                    }
                    Err(d) => {
                        emit(&[d.in_file(&file)]);
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(d) => {
            emit(&[d.in_file(&file)]);
            ExitCode::FAILURE
        }
    }
}

/// One line per live node: `%id = op operands : shape`, then the arguments and outputs.
fn print_nodes(f: &Function) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for (i, a) in f.args.iter().enumerate() {
        let batched = if a.batched { ", batched" } else { "" };
        let _ = writeln!(s, "arg {i} {}[{}]{batched}", a.name, a.len);
    }
    let live = f.live();
    for (id, node) in f.graph.nodes() {
        if !live[id.index()] {
            continue;
        }
        let ids = |xs: &[crate::ir::NodeId]| {
            xs.iter()
                .map(|x| format!("%{}", x.0))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let op = match &node.op {
            Op::Const(bits) => format!("const {:?}", f64::from_bits(*bits)),
            Op::Input { arg, offset } => {
                let name = f.args.get(*arg).map_or("?", |a| a.name.as_str());
                format!("input {name}[{offset}..]")
            }
            Op::Unary(u, x) => format!("{} %{}", u.name(), x.0),
            Op::Binary(b, x, y) => format!("{} %{}, %{}", b.name(), x.0, y.0),
            Op::Slice { x, start } => format!("slice %{} from {start}", x.0),
            Op::Index { x, i } => format!("index %{} at {i}", x.0),
            other => {
                let name = match other {
                    Op::Broadcast(_) => "broadcast",
                    Op::Sum(_) => "sum",
                    Op::Dot(..) => "dot",
                    Op::MatVec(..) => "matvec",
                    Op::MatMul(..) => "matmul",
                    Op::Transpose(_) => "transpose",
                    Op::Outer(..) => "outer",
                    Op::Concat(_) => "concat",
                    _ => "reshape",
                };
                format!("{name} {}", ids(&operands(other)))
            }
        };
        let shape = match node.shape {
            Shape::Scalar => "scalar".to_string(),
            Shape::Vector(n) => format!("[{n}]"),
            Shape::Matrix(m, n) => format!("[{m}×{n}]"),
        };
        let _ = writeln!(s, "%{} = {op} : {shape}", id.0);
    }
    for o in &f.outputs {
        let _ = writeln!(s, "output {} = %{}", o.name, o.node.0);
    }
    s
}
