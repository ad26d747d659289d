//! Every scalar operation on the special IEEE values (±0, ±∞, NaN, subnormals, the kinks of
//! relu/step/sign/max/min), and the safe API's refusals of wrong buffers.

use glassbox::ir::{ArgSpec, Binary, Function, Shape, Unary};
use glassbox::jit::compile;

use crate::check::{agree, call};

const SPECIAL: [f64; 12] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    2.0,
    0.5,
    -2.5,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    5e-324,
    750.0,
];

#[test]
fn scalar_operations_match_on_special_values() {
    let mut f = Function::new(vec![ArgSpec::new("x", 2, true)]);
    let a = f.input("x", 0, Shape::Scalar).unwrap();
    let b = f.input("x", 1, Shape::Scalar).unwrap();
    let mut outs = Vec::new();
    for u in Unary::ALL {
        outs.push(f.graph.unary(u, a));
    }
    for op in Binary::ALL {
        outs.push(f.graph.binary(op, a, b));
    }
    let all = f.graph.concat(&outs);
    f.push_output("o", all);
    for &x in &SPECIAL {
        for &y in &SPECIAL {
            agree(&format!("x = {x}, y = {y}"), &f, &[&[x, y]], 1);
        }
    }
}

fn small() -> Function {
    let mut f = Function::new(vec![
        ArgSpec::new("u", 2, true),
        ArgSpec::new("p", 3, false),
    ]);
    let u = f.input("u", 0, Shape::Vector(2)).unwrap();
    let p = f.input("p", 0, Shape::Vector(2)).unwrap();
    let s = f.graph.mul(u, p);
    f.push_output("s", s);
    f
}

#[test]
fn wrong_buffers_are_errors_not_panics() {
    let k = compile(&small(), "small").expect("compiles");
    assert_eq!(call(&k, &[&[1.0, 2.0], &[3.0, 4.0, 5.0]]), vec![3.0, 8.0]);
    let mut out = [0.0; 2];
    let cases: [(&[&[f64]], usize); 4] = [
        (&[&[1.0, 2.0]], 2),
        (&[&[1.0], &[3.0, 4.0, 5.0]], 2),
        (&[&[1.0, 2.0], &[3.0, 4.0]], 2),
        (&[&[1.0, 2.0], &[3.0, 4.0, 5.0]], 1),
    ];
    for (args, out_len) in cases {
        let e = k.call(args, &mut out[..out_len]).expect_err("refused");
        assert_eq!(e.code, "glassbox::kernel_buffers");
        assert!(e.help.is_some());
    }
    // A batch of 2 needs 2 samples of u but one shared p.
    let mut out4 = [0.0; 4];
    k.call_batch(&[&[1.0, 2.0, 3.0, 4.0], &[1.0, 1.0, 2.0]], 2, &mut out4)
        .expect("batched buffers");
    assert_eq!(out4, [1.0, 2.0, 3.0, 4.0]);
    let e = k
        .call_batch(&[&[1.0, 2.0], &[1.0, 1.0, 2.0]], 2, &mut out4)
        .expect_err("one sample for a batch of two");
    assert_eq!(e.code, "glassbox::kernel_buffers");
    // An empty batch is fine and writes nothing.
    k.call_batch(&[&[], &[1.0, 1.0, 2.0]], 0, &mut [])
        .expect("empty batch");
}

#[test]
fn an_invalid_function_is_an_internal_diagnostic() {
    let mut f = Function::new(vec![ArgSpec::new("u", 2, true)]);
    // Reads past the end of `u`: validation fails before any code exists.
    let x = f.graph.input(0, 1, Shape::Vector(2));
    f.push_output("x", x);
    let e = compile(&f, "broken.field").expect_err("invalid IR");
    assert_eq!(e.code, "glassbox::internal");
    assert!(e.message.contains("broken.field"), "{}", e.message);
}

#[test]
fn kernels_can_move_to_another_thread() {
    fn send<T: Send>(_: &T) {}
    let k = compile(&small(), "small").expect("compiles");
    send(&k);
    let out = std::thread::spawn(move || call(&k, &[&[1.0, 2.0], &[3.0, 4.0, 5.0]]))
        .join()
        .expect("thread ran");
    assert_eq!(out, vec![3.0, 8.0]);
}

#[test]
fn bound_calls_check_once_and_outlive_their_kernel() {
    let k = compile(&small(), "small").expect("compiles");
    let e = k.bind_with(&[&[1.0, 2.0]]).expect_err("one argument short");
    assert_eq!(e.code, "glassbox::kernel_buffers");
    let e = k
        .bind_with(&[&[1.0, 2.0], &[3.0, 4.0]])
        .expect_err("p too short");
    assert_eq!(e.code, "glassbox::kernel_buffers");
    assert!(e.help.is_some());

    let mut b = k.bind();
    assert_eq!(b.arg_count(), 2);
    assert_eq!(b.arg(0), Some(&[0.0, 0.0][..]));
    assert_eq!(b.arg(2), None);
    assert!(b.arg_mut(2).is_none());
    let e = b.set_arg(1, &[1.0]).expect_err("wrong length");
    assert_eq!(e.code, "glassbox::kernel_buffers");
    let e = b.set_arg(5, &[1.0]).expect_err("no such argument");
    assert_eq!(e.code, "glassbox::kernel_buffers");
    assert_eq!(b.out(), &[0.0, 0.0], "zeros before the first run");
    let mut two = [0.0; 2];
    for (arg, values, out_len) in [
        (0, &[1.0][..], 2),
        (2, &[1.0, 2.0][..], 2),
        (0, &[1.0, 2.0], 1),
    ] {
        let e = b
            .run_with(arg, values, &mut two[..out_len])
            .expect_err("refused");
        assert_eq!(e.code, "glassbox::kernel_buffers");
    }

    b.set_arg(0, &[1.0, 2.0]).expect("u");
    b.set_arg(1, &[3.0, 4.0, 5.0]).expect("p");
    // Two bound calls of one kernel have separate buffers; both keep the code alive.
    let mut c = k
        .bind_with(&[&[2.0, 2.0], &[1.0, 1.0, 1.0]])
        .expect("binds");
    drop(k);
    b.run();
    c.run();
    assert_eq!(b.out(), &[3.0, 8.0]);
    assert_eq!(c.out(), &[2.0, 2.0]);
    let out = std::thread::spawn(move || {
        b.arg_mut(0).expect("u")[1] = -1.0;
        b.run();
        b.out().to_vec()
    })
    .join()
    .expect("thread ran");
    assert_eq!(out, vec![3.0, -4.0]);
}

#[test]
fn every_vector_tanh_gives_the_scalar_bits() {
    use glassbox::ir::math::tanh;
    use glassbox::jit::tanh_slice_versions;
    let mut rng = crate::check::rng(3);
    let mut xs = crate::check::random(&mut rng, 4000, -25.0, 25.0);
    xs.extend(crate::check::random(&mut rng, 4000, -0.7, 0.7));
    xs.extend(SPECIAL);
    xs.extend(SPECIAL.map(|x| -x));
    let versions = tanh_slice_versions();
    assert!(versions.iter().any(|(name, _)| *name == "baseline"));
    // Every length up to two AVX-512 vectors (the remainder loops) and the whole set.
    let lens: Vec<usize> = (1..=17).chain([xs.len()]).collect();
    for (name, f) in versions {
        for &n in &lens {
            let mut out = vec![0.0; n];
            f(&xs[..n], &mut out);
            for (x, t) in xs.iter().zip(&out) {
                assert_eq!(
                    t.to_bits(),
                    tanh(*x).to_bits(),
                    "{name}, n = {n}, x = {x:e}"
                );
            }
        }
    }
}

#[test]
fn a_vector_tanh_kernel_matches_the_interpreter() {
    // A tensor tanh is one call of the slice symbol (`glassbox_tanh_n`); scalars keep theirs.
    let n = SPECIAL.len();
    let mut f = Function::new(vec![ArgSpec::new("x", n, true)]);
    let x = f.input("x", 0, Shape::Vector(n)).unwrap();
    let t = f.graph.unary(Unary::Tanh, x);
    let two = f.graph.constant(2.0);
    let x2 = f.graph.mul(x, two);
    let t2 = f.graph.unary(Unary::Tanh, x2);
    let s = f.graph.add(t, t2);
    f.push_output("s", s);
    agree("tanh of the special values", &f, &[&SPECIAL], 1);
    let reversed: Vec<f64> = SPECIAL.iter().rev().map(|v| -v).collect();
    agree("tanh of their negatives", &f, &[&reversed], 3);
}
