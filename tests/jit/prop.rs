//! Random expression DAGs (the generator style of `tests/ir/prop.rs`, with every op of the node
//! set): the kernel equals the interpreter bit for bit, per sample and batched, unrolled and as
//! loops. No domain restrictions are needed: NaN and ±∞ must agree too.

use glassbox::ir::{ArgSpec, Binary, Function, NodeId, Shape, Unary};
use proptest::prelude::*;

use crate::check::{agree, random, rng};

const UNARY: [Unary; 15] = Unary::ALL;

const BINARY: [Binary; 7] = Binary::ALL;

fn pick(pool: &[NodeId], k: u16) -> NodeId {
    pool[k as usize % pool.len()]
}

/// Builds a function of `t` (scalar), `u` (vector n) and `p` (an n×n matrix and two scalars).
fn build(n: usize, program: &[(u8, u16, u16)]) -> Function {
    let mut f = Function::new(vec![
        ArgSpec::new("t", 1, true),
        ArgSpec::new("u", n, true),
        ArgSpec::new("p", n * n + 2, false),
    ]);
    let u = f.input("u", 0, Shape::Vector(n)).unwrap();
    let t = f.input("t", 0, Shape::Scalar).unwrap();
    let w = f.input("p", 0, Shape::Matrix(n, n)).unwrap();
    let a = f.input("p", n * n, Shape::Scalar).unwrap();
    let u0 = f.input("u", 0, Shape::Scalar).unwrap();
    let pv = f.input("p", n * n + 2 - n, Shape::Vector(n)).unwrap();
    let (mut s, mut v, mut m) = (vec![t, a, u0], vec![u, pv], vec![w]);
    for &(op, i, j) in program {
        let (x, y) = (pick(&v, i), pick(&v, j));
        let (sa, sb) = (pick(&s, i), pick(&s, j));
        let (ma, mb) = (pick(&m, i), pick(&m, j));
        let g = &mut f.graph;
        let un = UNARY[i as usize % UNARY.len()];
        let bin = BINARY[j as usize % BINARY.len()];
        match op % 16 {
            0 => v.push(g.unary(un, x)),
            1 => s.push(g.unary(un, sa)),
            2 => v.push(g.binary(bin, x, y)),
            3 => v.push(g.binary(bin, x, sa)),
            4 => s.push(g.binary(bin, sa, sb)),
            5 => v.push(g.matvec(ma, x)),
            6 => s.push(g.dot(x, y)),
            7 => s.push(g.sum(x)),
            8 => s.push(g.index(x, j as usize % n)),
            9 => {
                let c = g.concat(&[sa, x, sb]);
                v.push(g.slice(c, j as usize % 3, n));
            }
            10 => m.push(g.outer(x, y)),
            11 => m.push(g.matmul(ma, mb)),
            12 => m.push(g.transpose(ma)),
            13 => m.push(g.binary(bin, ma, mb)),
            14 => {
                let flat = g.reshape(ma, Shape::Vector(n * n));
                v.push(g.slice(flat, i as usize % n, n));
            }
            _ => v.push(g.broadcast(sa, Shape::Vector(n))),
        }
    }
    let (lv, ls, lm) = (*v.last().unwrap(), *s.last().unwrap(), *m.last().unwrap());
    f.push_output("v", lv);
    f.push_output("s", ls);
    f.push_output("m", lm);
    f
}

fn program() -> impl Strategy<Value = Vec<(u8, u16, u16)>> {
    prop::collection::vec((any::<u8>(), any::<u16>(), any::<u16>()), 1..16)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn random_dags_compile_to_the_interpreters_values(
        prog in program(),
        n in prop::sample::select(vec![2usize, 3, 7]),
        seed in 0u64..1000,
    ) {
        let f = build(n, &prog);
        let mut r = rng(seed);
        let t = random(&mut r, 1, -2.0, 2.0);
        let u = random(&mut r, n, -2.0, 2.0);
        let p = random(&mut r, n * n + 2, -2.0, 2.0);
        agree(&format!("{prog:?}"), &f, &[&t, &u, &p], 2);
    }
}
