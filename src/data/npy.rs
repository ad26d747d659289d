//! NPY files (NumPy's `np.save` format, versions 1–3), read by hand: the format is a magic
//! string, a header length, a Python-literal dict (`descr`, `fortran_order`, `shape`) and the
//! raw elements. Written here rather than taken from `ndarray-npy` so that every malformed byte
//! becomes a `glassbox::data_npy_format` diagnostic with the reason, and no dependency is added.
//!
//! Supported: little-endian `f4 f8 i1 i2 i4 i8 u1 u2 u4 u8`, C or Fortran order, 1-D (`n` rows
//! of one column) or 2-D (`rows × columns`) arrays. Invariant: the result has exactly
//! `product(shape)` elements, and a file with more or fewer data bytes is rejected.

use ndarray::{Array2, ShapeBuilder};

use super::frame::{Cells, Ctx, Frame};
use crate::diag::Diag;

const MAGIC: &[u8] = b"\x93NUMPY";
const HELP: &str = "write the array with `numpy.save` as little-endian float64, float32, int64 or \
                    int32, 1-D or 2-D";

fn bad(ctx: &Ctx, why: impl std::fmt::Display) -> Diag {
    ctx.diag(
        "glassbox::data_npy_format",
        format!("{}: not a supported NPY array: {why}", ctx.file()),
        HELP,
    )
}

/// Parse an NPY file into a frame of numbers, one row per array row.
pub(crate) fn parse(bytes: &[u8], ctx: &Ctx) -> Result<Frame<'static>, Diag> {
    let a = array(bytes, ctx)?;
    Ok(Frame {
        names: None,
        ncols: a.ncols(),
        rows: (1..=a.nrows()).collect(),
        cells: Cells::Numbers(a),
        unit: "row",
    })
}

fn array(bytes: &[u8], ctx: &Ctx) -> Result<Array2<f64>, Diag> {
    if bytes.is_empty() {
        return Err(super::csv::empty(ctx, "is empty"));
    }
    if !bytes.starts_with(MAGIC) {
        return Err(bad(
            ctx,
            "the file does not start with the NPY magic `\\x93NUMPY`",
        ));
    }
    let major = bytes.get(6).copied();
    let (len, start): (Option<usize>, usize) = match major {
        Some(1) => (
            bytes
                .get(8..10)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize),
            10,
        ),
        Some(2 | 3) => (
            bytes
                .get(8..12)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize),
            12,
        ),
        Some(v) => return Err(bad(ctx, format!("unknown format version {v}"))),
        None => return Err(bad(ctx, "the file ends inside the preamble")),
    };
    let header = len.and_then(|len| {
        bytes
            .get(start..start.checked_add(len)?)
            .map(|h| (h, start + len))
    });
    let Some((header, data_start)) = header else {
        return Err(bad(ctx, "the file ends inside the header"));
    };
    let header = String::from_utf8_lossy(header);
    let h = parse_header(&header).map_err(|why| bad(ctx, why))?;
    let dtype = Dtype::parse(&h.descr).map_err(|why| bad(ctx, why))?;
    let (rows, cols) = match h.shape.as_slice() {
        [n] => (*n, 1),
        [r, c] => (*r, *c),
        [] => return Err(bad(ctx, "a 0-dimensional (scalar) array")),
        s => return Err(bad(ctx, format!("a {}-dimensional array", s.len()))),
    };
    let data = bytes.get(data_start..).unwrap_or(&[]);
    let want = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(dtype.size).map(|b| (n, b)));
    let Some((count, nbytes)) = want else {
        return Err(bad(ctx, format!("the shape ({rows}, {cols}) is too large")));
    };
    if data.len() != nbytes {
        return Err(bad(
            ctx,
            format!(
                "the shape ({rows}, {cols}) of {} needs {nbytes} data bytes, the file has {}",
                h.descr,
                data.len()
            ),
        ));
    }
    if count == 0 {
        return Err(super::csv::empty(ctx, "holds an empty array"));
    }
    let values: Vec<f64> = data
        .chunks_exact(dtype.size)
        .map(|c| dtype.read(c))
        .collect();
    let shaped = if h.fortran {
        Array2::from_shape_vec((rows, cols).f(), values)
    } else {
        Array2::from_shape_vec((rows, cols), values)
    };
    // The length was checked above; a mismatch here would be a bug, still not a panic.
    shaped.map_err(|e| bad(ctx, e))
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Float,
    Int,
    Uint,
}

#[derive(Clone, Copy, Debug)]
struct Dtype {
    kind: Kind,
    size: usize,
}

impl Dtype {
    fn parse(descr: &str) -> Result<Dtype, String> {
        let mut chars = descr.chars();
        let order = chars.next();
        let kind = match chars.next() {
            Some('f') => Kind::Float,
            Some('i') => Kind::Int,
            Some('u') => Kind::Uint,
            _ => return Err(format!("unsupported element type `{descr}`")),
        };
        let size: usize = chars
            .as_str()
            .parse()
            .map_err(|_| format!("unsupported element type `{descr}`"))?;
        let ok_size = match kind {
            Kind::Float => matches!(size, 4 | 8),
            Kind::Int | Kind::Uint => matches!(size, 1 | 2 | 4 | 8),
        };
        if !ok_size {
            return Err(format!("unsupported element type `{descr}`"));
        }
        match order {
            Some('<') => {}
            Some('|') if size == 1 => {}
            Some('>') if size > 1 => {
                return Err(format!("big-endian elements (`{descr}`)"));
            }
            _ => return Err(format!("unsupported element type `{descr}`")),
        }
        Ok(Dtype { kind, size })
    }

    /// One element from exactly `size` little-endian bytes.
    fn read(self, c: &[u8]) -> f64 {
        let mut b = [0u8; 8];
        for (d, s) in b.iter_mut().zip(c) {
            *d = *s;
        }
        // Sign-extend signed integers narrower than 8 bytes.
        let signed =
            |bits: u32| ((u64::from_le_bytes(b) << (64 - bits)) as i64 >> (64 - bits)) as f64;
        match (self.kind, self.size) {
            (Kind::Float, 4) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            (Kind::Float, _) => f64::from_le_bytes(b),
            (Kind::Int, n) => signed(8 * n as u32),
            (Kind::Uint, _) => u64::from_le_bytes(b) as f64,
        }
    }
}

struct Header {
    descr: String,
    fortran: bool,
    shape: Vec<usize>,
}

#[derive(Debug, PartialEq)]
enum Tok {
    Punct(char),
    Str(String),
    Int(usize),
    Word(String),
}

fn tokens(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        match c {
            _ if c.is_whitespace() => {}
            '{' | '}' | '(' | ')' | ':' | ',' => out.push(Tok::Punct(c)),
            '\'' | '"' => {
                let mut text = String::new();
                loop {
                    match it.next() {
                        Some((_, q)) if q == c => break,
                        Some((_, ch)) => text.push(ch),
                        None => return Err("an unterminated string in the header".into()),
                    }
                }
                out.push(Tok::Str(text));
            }
            _ if c.is_ascii_digit() => {
                let mut end = i + c.len_utf8();
                while let Some((j, d)) = it.peek().copied()
                    && d.is_ascii_digit()
                {
                    end = j + 1;
                    it.next();
                }
                let digits = s.get(i..end).unwrap_or("");
                // numpy may write `3L` on Python 2.
                if let Some((_, 'L')) = it.peek() {
                    it.next();
                }
                out.push(Tok::Int(
                    digits
                        .parse()
                        .map_err(|_| format!("the dimension `{digits}` is too large"))?,
                ));
            }
            _ if c.is_ascii_alphabetic() => {
                let mut w = c.to_string();
                while let Some((_, d)) = it.peek().copied()
                    && d.is_ascii_alphanumeric()
                {
                    w.push(d);
                    it.next();
                }
                out.push(Tok::Word(w));
            }
            _ => return Err(format!("an unexpected `{c}` in the header")),
        }
    }
    Ok(out)
}

/// The header dict: `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_header(s: &str) -> Result<Header, String> {
    let toks = tokens(s)?;
    let mut it = toks.into_iter().peekable();
    let malformed = || "a malformed header dict".to_string();
    if it.next() != Some(Tok::Punct('{')) {
        return Err(malformed());
    }
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        let key = match it.next() {
            Some(Tok::Punct('}')) => break,
            Some(Tok::Str(k)) => k,
            _ => return Err(malformed()),
        };
        if it.next() != Some(Tok::Punct(':')) {
            return Err(malformed());
        }
        match (key.as_str(), it.next()) {
            ("descr", Some(Tok::Str(d))) => descr = Some(d),
            ("descr", _) => return Err("a structured element type (only plain numbers)".into()),
            ("fortran_order", Some(Tok::Word(w))) if w == "True" || w == "False" => {
                fortran = Some(w == "True");
            }
            ("shape", Some(Tok::Punct('('))) => {
                let mut dims = Vec::new();
                loop {
                    match it.next() {
                        Some(Tok::Punct(')')) => break,
                        Some(Tok::Int(n)) => dims.push(n),
                        Some(Tok::Punct(',')) => {}
                        _ => return Err(malformed()),
                    }
                }
                shape = Some(dims);
            }
            _ => return Err(malformed()),
        }
        match it.next() {
            Some(Tok::Punct(',')) => {}
            Some(Tok::Punct('}')) => break,
            _ => return Err(malformed()),
        }
    }
    match (descr, fortran, shape) {
        (Some(descr), Some(fortran), Some(shape)) => Ok(Header {
            descr,
            fortran,
            shape,
        }),
        _ => Err("the header lacks `descr`, `fortran_order` or `shape`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_dicts() {
        let h = parse_header("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }   \n")
            .unwrap();
        assert_eq!(
            (h.descr.as_str(), h.fortran, h.shape),
            ("<f8", false, vec![3, 4])
        );
        let h = parse_header("{'descr': '<i4', 'fortran_order': True, 'shape': (5,), }").unwrap();
        assert_eq!((h.fortran, h.shape), (true, vec![5]));
        assert!(parse_header("{'descr': '<f8', 'shape': (3,)}").is_err());
        assert!(
            parse_header("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (3,)}")
                .is_err()
        );
        assert!(parse_header("{'shape': (99999999999999999999999,)").is_err());
    }

    #[test]
    fn element_types() {
        let i2 = Dtype::parse("<i2").unwrap();
        assert_eq!(i2.read(&(-3i16).to_le_bytes()), -3.0);
        let i1 = Dtype::parse("|i1").unwrap();
        assert_eq!(i1.read(&[0xff]), -1.0);
        let u4 = Dtype::parse("<u4").unwrap();
        assert_eq!(u4.read(&u32::MAX.to_le_bytes()), u32::MAX as f64);
        let f4 = Dtype::parse("<f4").unwrap();
        assert_eq!(f4.read(&1.5f32.to_le_bytes()), 1.5);
        for bad in [">f8", "<f2", "<c16", "|f8", "<U10", "", "<", "<i3"] {
            assert!(Dtype::parse(bad).is_err(), "{bad}");
        }
    }
}
