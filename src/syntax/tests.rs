//! Parser and formatter tests: the sketch programs, precedence, layout, round trips, hostile input.

use std::sync::Arc;

use super::ast::*;
use super::{format, parse};
use crate::diag::Diag;
use crate::source::SourceFile;

const SKETCHES: &[(&str, &str)] = &[
    ("spiral", include_str!("testdata/spiral.gbx")),
    (
        "lotka_volterra_ude",
        include_str!("testdata/lotka_volterra_ude.gbx"),
    ),
    ("digits", include_str!("testdata/digits.gbx")),
    ("spiral_sde", include_str!("testdata/spiral_sde.gbx")),
    ("robertson", include_str!("testdata/robertson.gbx")),
];

fn file(text: &str) -> Arc<SourceFile> {
    SourceFile::new("test.gbx", text)
}

fn parse_ok(text: &str) -> Program {
    let (p, diags) = parse(&file(text));
    assert!(
        diags.is_empty(),
        "unexpected diagnostics for {text:?}: {diags:#?}"
    );
    p
}

fn parse_err(text: &str) -> Vec<Diag> {
    let (_, diags) = parse(&file(text));
    assert!(!diags.is_empty(), "expected a diagnostic for {text:?}");
    diags
}

/// The expression of a one-line `minimize` item.
fn ex(src: &str) -> Expr {
    let p = parse_ok(&format!("minimize {src}"));
    match p.items.into_iter().next().map(|i| i.kind) {
        Some(ItemKind::Minimize(e)) => e,
        other => panic!("not a minimize item: {other:?}"),
    }
}

/// A compact s-expression of an expression, for structural assertions.
fn sx(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Num { text, .. } => text.clone(),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Name(n) => n.clone(),
        ExprKind::Vector(v) => format!("[{}]", v.iter().map(sx).collect::<Vec<_>>().join(" ")),
        ExprKind::Matrix(rows) => format!(
            "[{}]",
            rows.iter()
                .map(|r| r.iter().map(sx).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        ExprKind::Range { start, end } => format!(
            "(.. {} {})",
            start.as_deref().map_or("_".into(), sx),
            end.as_deref().map_or("_".into(), sx)
        ),
        ExprKind::Unary { expr, .. } => format!("(neg {})", sx(expr)),
        ExprKind::Binary { op, lhs, rhs } => {
            let o = match op {
                BinOp::Add => "+",
                BinOp::Sub => "-",
                BinOp::Mul => "*",
                BinOp::Div => "/",
                BinOp::Pow => "^",
                BinOp::MatMul => "@",
            };
            format!("({o} {} {})", sx(lhs), sx(rhs))
        }
        ExprKind::Call(c) => call_sx(c),
        ExprKind::Index { base, index } => format!(
            "(idx {} {})",
            sx(base),
            index.iter().map(sx).collect::<Vec<_>>().join(" ")
        ),
        ExprKind::Decay { from, to } => format!("(decay {} {})", sx(from), sx(to)),
        ExprKind::TimeDeriv(e) => format!("(d/dt {})", sx(e)),
    }
}

fn call_sx(c: &Call) -> String {
    let args: Vec<String> = c
        .args
        .iter()
        .map(|a| match &a.name {
            Some(n) => format!("{}={}", n.name, sx(&a.value)),
            None => sx(&a.value),
        })
        .collect();
    format!("(call {} {})", c.callee.name, args.join(" "))
}

#[test]
fn every_sketch_parses_and_round_trips() {
    for (name, src) in SKETCHES {
        let p = parse_ok(src);
        assert!(p.items.len() >= 5, "{name}: only {} items", p.items.len());
        let out = format(&p);
        let (q, diags) = parse(&file(&out));
        assert!(
            diags.is_empty(),
            "{name}: formatted text fails: {diags:#?}\n{out}"
        );
        assert_eq!(p, q, "{name}: parse(format(p)) != p\n{out}");
        assert_eq!(format(&q), out, "{name}: format is not idempotent");
    }
}

#[test]
fn spiral_shape() {
    let p = parse_ok(SKETCHES[0].1);
    let kinds: Vec<&ItemKind> = p.items.iter().map(|i| &i.kind).collect();
    assert!(matches!(kinds[0], ItemKind::Model(m) if m.name == "spiral"));
    let ItemKind::State(s) = kinds[1] else {
        panic!("{:?}", kinds[1])
    };
    assert_eq!(s[0].name.name, "y");
    assert_eq!(sx(&s[0].shape.as_ref().expect("shape")[0]), "2");
    assert_eq!(sx(s[0].init.as_ref().expect("init")), "[2.0 0.0]");
    let ItemKind::Net(n) = kinds[2] else {
        panic!("{:?}", kinds[2])
    };
    assert_eq!(call_sx(&n[0].ctor), "(call mlp 2 50 2 act=tanh)");
    let ItemKind::Equation(Equation::Ode { state, rhs }) = kinds[3] else {
        panic!("{:?}", kinds[3])
    };
    assert_eq!(state.name, "y");
    assert_eq!(sx(rhs), "(call f (^ y 3))");
    let ItemKind::Solve(sc) = kinds[5] else {
        panic!("{:?}", kinds[5])
    };
    assert_eq!(call_sx(&sc.method), "(call tsit5 rtol=1e-7 atol=1e-9)");
    assert!(sc.span_kind.is_none());
    let ItemKind::Minimize(m) = kinds[6] else {
        panic!("{:?}", kinds[6])
    };
    assert_eq!(
        sx(m),
        "(+ (call l1 y obs) (* (decay 100 10) error_estimate))"
    );
    let ItemKind::Train(t) = kinds[7] else {
        panic!("{:?}", kinds[7])
    };
    assert_eq!(call_sx(&t.optimizer), "(call rmsprop lr=1e-3)");
    assert_eq!(t.settings.len(), 2);
    assert_eq!(sx(&t.settings[1].value), "(call windows 20 length=10)");
    // Comments are kept, trailing ones flagged as such.
    assert_eq!(p.comments.len(), 3);
    assert!(p.comments.iter().all(|c| !c.own_line));
    assert_eq!(p.comments[2].text, " ERNODE");
}

#[test]
fn sde_parts() {
    let p = parse_ok(SKETCHES[3].1);
    let sde = p
        .items
        .iter()
        .find_map(|i| match &i.kind {
            ItemKind::Equation(e @ Equation::Sde { .. }) => Some(e.clone()),
            _ => None,
        })
        .expect("an SDE");
    let Equation::Sde {
        state,
        drift,
        diffusion,
    } = sde
    else {
        unreachable!()
    };
    assert_eq!(state.name, "u");
    assert_eq!(sx(&drift), "(call drift (^ u 3))");
    assert_eq!(sx(&diffusion.expect("diffusion")), "(call noise u)");
    // `* dW` and plain `dW` are the same; no diffusion at all is allowed.
    let a = parse_ok("du = -u dt + 0.5 * u * dW");
    let b = parse_ok("du = -u dt + (0.5 * u) dW");
    assert_eq!(a.items, b.items);
    let c = parse_ok("du = -u dt");
    assert!(matches!(
        &c.items[0].kind,
        ItemKind::Equation(Equation::Sde {
            diffusion: None,
            ..
        })
    ));
    assert_eq!(format(&a), "du = -u dt + 0.5 * u * dW\n");
    let d = parse_ok("dx = a + b dt + c - d dW");
    assert_eq!(format(&d), "dx = (a + b) dt + (c - d) * dW\n");
}

#[test]
fn state_span_excludes_the_d() {
    let p = parse_ok("dy1/dt = -y1");
    let ItemKind::Equation(Equation::Ode { state, .. }) = &p.items[0].kind else {
        panic!()
    };
    assert_eq!(state.name, "y1");
    assert_eq!(state.span.range(), 1..3);
}

#[test]
fn precedence() {
    let cases = [
        ("-x^2", "(neg (^ x 2))"),
        ("2^-1", "(^ 2 (neg 1))"),
        ("a^b^c", "(^ a (^ b c))"),
        ("a - b - c", "(- (- a b) c)"),
        ("a / b * c", "(* (/ a b) c)"),
        ("a + b * c", "(+ a (* b c))"),
        ("-a * b", "(* (neg a) b)"),
        ("W @ x + b", "(+ (@ W x) b)"),
        ("2^-1 * 3", "(* (^ 2 (neg 1)) 3)"),
        ("-k1*y1 + k3*y2*y3", "(+ (* (neg k1) y1) (* (* k3 y2) y3))"),
        ("k2*y2^2", "(* k2 (^ y2 2))"),
        ("u(x, y)[0]", "(idx (call u x y) 0)"),
        ("W[1, 2]", "(idx W 1 2)"),
        ("y[0..2]", "(idx y (.. 0 2))"),
        ("y[..2] + y[1..]", "(+ (idx y (.. _ 2)) (idx y (.. 1 _)))"),
        ("-x[0]", "(neg (idx x 0))"),
        ("(a + b)^2", "(^ (+ a b) 2)"),
        ("d(x^2)/dt", "(d/dt (^ x 2))"),
        ("d(x) + dx", "(+ (call d x) dx)"),
        ("decay(100 -> 10)", "(decay 100 10)"),
        ("decay(x)", "(call decay x)"),
        ("a - -b", "(- a (neg b))"),
        ("[1, 2; 3, 4]", "[1 2; 3 4]"),
        ("[a, b]", "[a b]"),
        ("[]", "[]"),
        ("h(1)", "(call h 1)"),
        ("t", "t"),
        (
            "moments(u, paths; samples = 100)",
            "(call moments u paths samples=100)",
        ),
        (
            "error_estimate(sample = unbiased)",
            "(call error_estimate sample=unbiased)",
        ),
        ("0..10", "(.. 0 10)"),
        ("1..", "(.. 1 _)"),
        ("..", "(.. _ _)"),
        ("\"a\\\"b\\\\c\"", "\"a\\\"b\\\\c\""),
    ];
    for (src, want) in cases {
        assert_eq!(sx(&ex(src)), want, "{src}");
    }
}

#[test]
fn numbers() {
    for (src, value) in [
        ("2", 2.0),
        ("2.0", 2.0),
        ("1e-7", 1e-7),
        (".5", 0.5),
        ("1.5E+3", 1500.0),
        ("3e7", 3e7),
    ] {
        let e = ex(src);
        let ExprKind::Num { value: v, text } = &e.kind else {
            panic!("{src}: {e:?}")
        };
        assert_eq!(*v, value, "{src}");
        assert_eq!(text, src);
    }
    let d = parse_err("const big = 1e999");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].code, "glassbox::number_out_of_range");
    assert_eq!(d[0].span().map(|s| s.range()), Some(12..17));
}

#[test]
fn declarations() {
    let p = parse_ok(
        "param W[2, 2] learn\nparam alpha = 1.3 learn, delta = 1.8\nconst g = 9.81\n\
         input x[64]\nlabel c in 0..10\nfn sq(x) = x * x\noutput logits = dec(h(1))\n\
         use \"lib/other.gbx\"\nuse nn\nsolve tsit5\nsolve auto(rtol = 1e-8) at [0, 1, 2]\n\
         data d = csv(\"x.csv\", features = 0..64, label = 64)\nstate x = 1.0, y = 1.0",
    );
    let k: Vec<&ItemKind> = p.items.iter().map(|i| &i.kind).collect();
    let ItemKind::Param(w) = k[0] else { panic!() };
    assert!(w[0].learn && w[0].value.is_none());
    assert_eq!(w[0].shape.as_ref().map(Vec::len), Some(2));
    let ItemKind::Param(ad) = k[1] else { panic!() };
    assert!(ad[0].learn && !ad[1].learn);
    assert!(matches!(k[2], ItemKind::Const(c) if sx(&c[0].value) == "9.81"));
    assert!(matches!(k[3], ItemKind::Input(i) if i[0].shape.is_some()));
    assert!(matches!(k[4], ItemKind::Label(l) if sx(&l[0].classes) == "(.. 0 10)"));
    assert!(matches!(k[5], ItemKind::Fn(f) if f.params.len() == 1 && sx(&f.body) == "(* x x)"));
    assert!(matches!(k[6], ItemKind::Output(o) if sx(&o[0].value) == "(call dec (call h 1))"));
    assert!(matches!(k[7], ItemKind::Use(UseTarget::Path { path, .. }) if path == "lib/other.gbx"));
    assert!(matches!(k[8], ItemKind::Use(UseTarget::Module(m)) if m.name == "nn"));
    assert!(matches!(k[9], ItemKind::Solve(s) if !s.method.parens && s.span_kind.is_none()));
    assert!(matches!(k[10], ItemKind::Solve(s) if matches!(s.span_kind, Some(SolveSpan::At(_)))));
    assert!(matches!(k[11], ItemKind::Data(d) if d[0].source.args.len() == 3));
    assert!(matches!(k[12], ItemKind::State(s) if s.len() == 2));
}

#[test]
fn crlf_comments_and_multiline_items() {
    let src =
        "// header\r\nmodel m\r\n\r\nstate y[2] = [1,\r\n   2]  # init\r\nminimize y # the end\r\n";
    let p = parse_ok(src);
    assert_eq!(p.items.len(), 3);
    assert_eq!(p.comments.len(), 3);
    assert_eq!(p.comments[0].text, " header");
    assert!(p.comments[0].own_line);
    assert_eq!(p.comments[1].text, " init");
    assert!(!p.comments[1].own_line);
    assert_eq!(p.blank_before_items, vec![1]);
    assert_eq!(
        format(&p),
        "# header\nmodel m\n\nstate y[2] = [1, 2]  # init\nminimize y  # the end\n"
    );
    let lf = parse_ok(&src.replace("\r\n", "\n"));
    assert_eq!(p, lf);
}

#[test]
fn format_is_canonical() {
    let src = "model   m\nnet f=mlp(2,50,2;act=tanh)\ndx/dt=-x^2+ 2^-1*(a+b)\nminimize   -(a*b) + (a^b)^c + (-a)^2";
    let out = format(&parse_ok(src));
    assert_eq!(
        out,
        "model m\nnet f = mlp(2, 50, 2; act = tanh)\ndx/dt = -x^2 + 2^-1 * (a + b)\n\
         minimize -(a * b) + (a^b)^c + (-a)^2\n"
    );
}

#[test]
fn empty_and_trivia_only_files() {
    assert_eq!(parse_ok(""), Program::default());
    let p = parse_ok("\n\n# just a comment\n\n");
    assert!(p.items.is_empty());
    assert_eq!(p.comments.len(), 1);
    assert_eq!(format(&p), "# just a comment\n");
}

/// Run `f` on a thread with a 2 MiB stack (the test harness's default, made explicit so the
/// bound holds whatever RUST_MIN_STACK says).
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the parser overflowed or panicked on a 2 MiB stack");
}

fn codes(diags: &[Diag]) -> Vec<&'static str> {
    diags.iter().map(|d| d.code).collect()
}

#[test]
fn deep_nesting_is_reported_before_pest() {
    on_small_stack(|| {
        let n = 100_000;
        let src = format!("minimize {}x{}", "(".repeat(n), ")".repeat(n));
        let diags = parse_err(&src);
        assert_eq!(codes(&diags), ["glassbox::nesting_too_deep"]);
        // The first bracket beyond the bound: the 65th `(`.
        let at = "minimize ".len() + super::MAX_NESTING;
        assert_eq!(diags[0].span().map(|s| s.range()), Some(at..at + 1));
        let brackets = format!("state y = {}1{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(codes(&parse_err(&brackets)), ["glassbox::nesting_too_deep"]);
    });
}

#[test]
fn nesting_at_the_bound_parses_and_formats() {
    on_small_stack(|| {
        let d = super::MAX_NESTING;
        let src = format!("minimize {}x + 1{}", "(".repeat(d), ")".repeat(d));
        let p = parse_ok(&src);
        assert_eq!(format(&p), "minimize x + 1\n");
        let src = format!("minimize {}x{}", "f(".repeat(d), ")".repeat(d));
        let p = parse_ok(&src);
        assert_eq!(parse_ok(&format(&p)), p);
    });
}

#[test]
fn operator_count_is_bounded() {
    on_small_stack(|| {
        let max = super::MAX_OPERATORS;
        // Right-associative and prefix chains are the deep ones for a Pratt parser.
        let pow = format!("minimize x{}", "^x".repeat(max));
        let p = parse_ok(&pow);
        assert_eq!(parse_ok(&format(&p)), p);
        let neg = format!("minimize {}x", "-".repeat(max));
        let p = parse_ok(&neg);
        assert_eq!(parse_ok(&format(&p)), p);
        let long = format!("minimize x{}", "+x".repeat(max + 1));
        let diags = parse_err(&long);
        assert_eq!(codes(&diags), ["glassbox::expression_too_long"]);
        let at = "minimize x".len() + 2 * max;
        assert_eq!(diags[0].span().map(|s| s.range()), Some(at..at + 1));
        let huge = format!("minimize x{}", "^x".repeat(200_000));
        assert_eq!(codes(&parse_err(&huge)), ["glassbox::expression_too_long"]);
    });
}

#[test]
fn two_megabyte_lines() {
    on_small_stack(|| {
        let n = 2 << 20;
        let comment = format!(
            "model m\n# {}\nminimize x  // {}\n",
            "é".repeat(n / 2),
            "x".repeat(n)
        );
        let p = parse_ok(&comment);
        assert_eq!(p.items.len(), 2);
        assert_eq!(p.comments.len(), 2);
        for garbage in [
            "(+*x[".repeat(n / 5),
            "x ".repeat(n / 2),
            "@#\"".repeat(n / 3),
        ] {
            let (_, diags) = parse(&file(&garbage));
            assert!(!diags.is_empty());
            assert!(diags.iter().all(|d| d.span().is_some()));
        }
        let valid = format!("minimize {}", "[1, 2], ".repeat(n / 8));
        let (_, diags) = parse(&file(&valid));
        assert!(!diags.is_empty());
    });
}

#[test]
fn garbage_never_panics() {
    use rand::{Rng, SeedableRng};
    on_small_stack(|| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let alphabet: Vec<char> =
            "()[];,=+-*/^@.._#\"\\\n\r\t dtdWxy0123456789eE->state model learn"
                .chars()
                .collect();
        for round in 0..400 {
            let len = rng.random_range(0..200);
            let text: String = if round % 2 == 0 {
                let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                match super::decode("g.gbx", bytes.clone()) {
                    Ok(f) => f.text.clone(),
                    Err(d) => {
                        assert_eq!(d.code, "glassbox::not_utf8");
                        String::from_utf8_lossy(&bytes).into_owned()
                    }
                }
            } else {
                (0..len)
                    .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                    .collect()
            };
            let f = file(&text);
            let (p, diags) = parse(&f);
            for d in &diags {
                let s = d.span().expect("every parse diagnostic has a span");
                assert!(s.end <= text.len() && s.start <= s.end, "{d:?}");
                assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
                assert!(d.help.is_some(), "{d:?}");
            }
            // Whatever parsed formats to text that parses back to the same items.
            let out = format(&p);
            let (q, _) = parse(&file(&out));
            assert_eq!(p.items, q.items, "{text:?}\n{out}");
        }
    });
}

#[test]
fn decode_reports_the_bad_byte() {
    let ok = super::decode("a.gbx", b"model m\n".to_vec()).expect("utf-8");
    assert_eq!(ok.text, "model m\n");
    let err = super::decode("a.gbx", b"model m\nstate \xff = 1\n".to_vec()).expect_err("not utf-8");
    assert_eq!(err.code, "glassbox::not_utf8");
    assert!(
        err.message.contains("byte 14") && err.message.contains("line 2"),
        "{}",
        err.message
    );
    assert_eq!(err.span().map(|s| s.range()), Some(14..14));
}

#[test]
fn recovery_reports_every_broken_item() {
    let src =
        "model m\nstate x 1.0\nparam k = 2\ndx/dt = \nconst c = (1 + 2\nminimize x\nstat y = 2\n";
    let (p, diags) = parse(&file(src));
    assert_eq!(
        codes(&diags),
        [
            "glassbox::missing_equals",
            "glassbox::parse_error",
            "glassbox::unclosed_bracket",
            "glassbox::unknown_item"
        ]
    );
    assert_eq!(p.items.len(), 3);
    let at = |needle: &str| src.find(needle).expect("needle");
    let spans: Vec<_> = diags.iter().map(|d| d.span().map(|s| s.range())).collect();
    let one = at("1.0");
    let eq = at("= \n");
    let paren = at("(1");
    let stat = at("stat ");
    assert_eq!(spans[0], Some(one..one + 3));
    assert_eq!(spans[1], Some(eq..eq + 1));
    assert_eq!(spans[2], Some(paren..paren + 1));
    assert_eq!(spans[3], Some(stat..stat + 4));
    assert!(
        diags[3]
            .help
            .as_deref()
            .is_some_and(|h| h.contains("`state`"))
    );
    assert!(
        diags[1].message.contains("expected an expression"),
        "{}",
        diags[1].message
    );
}

#[test]
fn reserved_words_are_not_names() {
    for (src, word) in [
        ("state dt = 1", "dt"),
        ("param in = 2", "in"),
        ("minimize dW + 1", "dW"),
    ] {
        let d = parse_err(src);
        assert_eq!(codes(&d), ["glassbox::reserved_word"], "{src}");
        let at = src.find(word).expect("word");
        assert_eq!(
            d[0].span().map(|s| s.range()),
            Some(at..at + word.len()),
            "{src}"
        );
    }
}

/// What a broken item is recorded as: `(source, keyword, declared names, sde)`. Each name's
/// span must cover exactly that name in the source.
#[test]
fn broken_items_record_their_names() {
    let cases: &[(&str, Option<&str>, &[&str], bool)] = &[
        ("state x = (1.0, y = 2", Some("state"), &["x", "y"], false),
        ("param a = 1 learn b = 2", Some("param"), &["a", "b"], false),
        (
            "param w[3] = , k learn, q",
            Some("param"),
            &["w", "k", "q"],
            false,
        ),
        ("label c in 0..10 10", Some("label"), &["c"], false),
        (
            "net f = mlp(2, 16, 2; act = tanh",
            Some("net"),
            &["f", "act"],
            false,
        ),
        (
            "data obs = csv(\"a.csv\" time = \"t\")",
            Some("data"),
            &["obs"],
            false,
        ),
        ("output o = f(a, b) )", Some("output"), &["o"], false),
        (
            "state s = \"oops, t2 = 1",
            Some("state"),
            &["s", "t2"],
            false,
        ),
        ("fn sq(x) = x * * x", Some("fn"), &["sq"], false),
        ("dx/dt = -x +", None, &["x"], false),
        ("du = -u dt + 0.5 u", None, &["u"], true),
        ("solve tsit5(rtol = )", Some("solve"), &[], false),
        ("train adam, iterations 5", Some("train"), &[], false),
        ("use \"lib.gbx", Some("use"), &[], false),
        // A misspelt keyword declares what the keyword it resembles would have.
        ("stat x = 1.0, v = 0.0", Some("state"), &["x", "v"], false),
        ("fnn sq(x) = x", Some("fn"), &["sq"], false),
        // A word resembling no keyword: only names that look declared count.
        ("zzz q = 1, r + 2", Some("zzz"), &["q"], false),
        ("zzz q + 1", Some("zzz"), &[], false),
        // Reserved words and numbers are never names.
        ("state dt = 1, 2x = 3", Some("state"), &[], false),
    ];
    for &(src, keyword, names, sde) in cases {
        let (p, diags) = parse(&file(src));
        assert_eq!(diags.len(), 1, "{src}: {diags:#?}");
        assert!(p.items.is_empty(), "{src}");
        let [b] = p.broken.as_slice() else {
            panic!("{src}: {:#?}", p.broken)
        };
        assert_eq!(b.keyword.as_deref(), keyword, "{src}");
        let got: Vec<&str> = b.names.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(got, names, "{src}");
        for n in &b.names {
            assert_eq!(&src[n.span.range()], n.name, "{src}");
        }
        assert_eq!(b.sde, sde, "{src}");
        assert_eq!(b.span.range(), 0..src.len(), "{src}");
    }
}

#[test]
fn a_clean_file_has_no_broken_items() {
    for (name, text) in SKETCHES {
        assert!(parse_ok(text).broken.is_empty(), "{name}");
    }
    let (p, _) = parse(&file("state x = 1\nparam = 2\ndx/dt = -x"));
    assert_eq!(p.items.len(), 2);
    assert_eq!(p.broken.len(), 1);
}
