//! Shapes and the broadcasting rules of the language.
//!
//! A value is a scalar, a vector `[n]` or a matrix `[m, n]` (row-major). `Error` is the shape of
//! an expression that already produced a diagnostic: every rule accepts it silently and returns
//! `Error`, so one mistake never cascades into follow-on shape errors.

use std::fmt;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Shape {
    Scalar,
    Vector {
        n: usize,
    },
    Matrix {
        rows: usize,
        cols: usize,
    },
    /// Poisoned: the expression already failed; silences follow-on errors.
    Error,
}

impl Shape {
    pub fn vector(n: usize) -> Shape {
        Shape::Vector { n }
    }

    pub fn matrix(rows: usize, cols: usize) -> Shape {
        Shape::Matrix { rows, cols }
    }

    /// Number of scalar elements (0 for `Error`); saturating, so a product of two sizes the
    /// checker refuses (`MAX_ELEMENTS`) cannot overflow.
    pub fn size(self) -> usize {
        match self {
            Shape::Scalar => 1,
            Shape::Vector { n } => n,
            Shape::Matrix { rows, cols } => rows.saturating_mul(cols),
            Shape::Error => 0,
        }
    }

    pub fn is_error(self) -> bool {
        self == Shape::Error
    }

    /// Shape from declared dimensions: `[]` scalar, `[n]` vector, `[m, n]` matrix.
    pub fn from_dims(dims: &[usize]) -> Option<Shape> {
        match dims {
            [] => Some(Shape::Scalar),
            [n] => Some(Shape::vector(*n)),
            [m, n] => Some(Shape::matrix(*m, *n)),
            _ => None,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Scalar => write!(f, "scalar"),
            Shape::Vector { n } => write!(f, "vector[{n}]"),
            Shape::Matrix { rows, cols } => write!(f, "matrix[{rows}, {cols}]"),
            Shape::Error => write!(f, "<error>"),
        }
    }
}

/// Elementwise broadcasting (`+ - * / ^`): a scalar combines with anything, equal shapes combine
/// elementwise, nothing else does. `None` means the shapes are incompatible.
pub fn broadcast(a: Shape, b: Shape) -> Option<Shape> {
    match (a, b) {
        (Shape::Error, _) | (_, Shape::Error) => Some(Shape::Error),
        (Shape::Scalar, s) | (s, Shape::Scalar) => Some(s),
        (x, y) if x == y => Some(x),
        _ => None,
    }
}

/// The matrix product `@`: `[m, n] @ [n]` is `[m]`, `[m, n] @ [n, k]` is `[m, k]`.
pub fn matmul(a: Shape, b: Shape) -> Option<Shape> {
    match (a, b) {
        (Shape::Error, _) | (_, Shape::Error) => Some(Shape::Error),
        (Shape::Matrix { rows, cols }, Shape::Vector { n }) if cols == n => {
            Some(Shape::vector(rows))
        }
        (Shape::Matrix { rows, cols }, Shape::Matrix { rows: r2, cols: c2 }) if cols == r2 => {
            Some(Shape::matrix(rows, c2))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_rules() {
        let v2 = Shape::vector(2);
        let v3 = Shape::vector(3);
        assert_eq!(broadcast(Shape::Scalar, v3), Some(v3));
        assert_eq!(broadcast(v3, Shape::Scalar), Some(v3));
        assert_eq!(broadcast(v3, v3), Some(v3));
        assert_eq!(broadcast(v2, v3), None);
        assert_eq!(broadcast(v2, Shape::matrix(2, 2)), None);
        assert_eq!(broadcast(v2, Shape::Error), Some(Shape::Error));
    }

    #[test]
    fn matmul_rules() {
        assert_eq!(
            matmul(Shape::matrix(3, 2), Shape::vector(2)),
            Some(Shape::vector(3))
        );
        assert_eq!(
            matmul(Shape::matrix(3, 2), Shape::matrix(2, 4)),
            Some(Shape::matrix(3, 4))
        );
        assert_eq!(matmul(Shape::matrix(3, 2), Shape::vector(3)), None);
        assert_eq!(matmul(Shape::vector(2), Shape::vector(2)), None);
        assert_eq!(Shape::matrix(2, 3).to_string(), "matrix[2, 3]");
    }
}
