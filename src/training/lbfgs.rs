//! L-BFGS (limited-memory BFGS, Nocedal & Wright, algorithm 7.4 with a backtracking Armijo
//! line search) for the classifier's smooth, convex training loss. Deterministic: the same
//! problem gives the same iterates bit for bit, which reproducible model files need.

/// A smooth function to minimise: its value at `x`, with its gradient written into `grad`.
pub trait Objective {
    fn eval(&mut self, x: &[f64], grad: &mut [f64]) -> f64;
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Pairs of the curvature history.
    pub memory: usize,
    pub max_iterations: usize,
    /// Stop when the gradient's largest component falls below this.
    pub gradient_tolerance: f64,
    /// Stop when an iteration lowers the value by less than this share of it.
    pub relative_decrease: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            memory: 10,
            max_iterations: 1000,
            gradient_tolerance: 1e-5,
            relative_decrease: 1e-10,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub value: f64,
    pub iterations: usize,
    pub converged: bool,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises `f` from `x` (updated in place).
pub fn minimize(f: &mut impl Objective, x: &mut [f64], options: Options) -> Outcome {
    let n = x.len();
    let mut grad = vec![0.0; n];
    let mut value = f.eval(x, &mut grad);
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut rho: Vec<f64> = Vec::new();
    let mut direction = vec![0.0; n];
    let mut next = vec![0.0; n];
    let mut next_grad = vec![0.0; n];
    let mut alpha = vec![0.0; options.memory];
    let largest = |g: &[f64]| g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for iteration in 0..options.max_iterations {
        if largest(&grad) < options.gradient_tolerance {
            return Outcome {
                value,
                iterations: iteration,
                converged: true,
            };
        }
        // Two-loop recursion: direction = -H·grad.
        direction.copy_from_slice(&grad);
        for i in (0..s_hist.len()).rev() {
            alpha[i] = rho[i] * dot(&s_hist[i], &direction);
            for (d, y) in direction.iter_mut().zip(&y_hist[i]) {
                *d -= alpha[i] * y;
            }
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(s), Some(y)) => dot(s, y) / dot(y, y),
            _ => 1.0 / largest(&grad).max(1.0),
        };
        for d in direction.iter_mut() {
            *d *= gamma;
        }
        for i in 0..s_hist.len() {
            let beta = rho[i] * dot(&y_hist[i], &direction);
            for (d, s) in direction.iter_mut().zip(&s_hist[i]) {
                *d += s * (alpha[i] - beta);
            }
        }
        for d in direction.iter_mut() {
            *d = -*d;
        }
        let mut slope = dot(&grad, &direction);
        if slope >= 0.0 {
            // Not a descent direction (rounding): restart from the gradient.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            for (d, g) in direction.iter_mut().zip(&grad) {
                *d = -g;
            }
            slope = dot(&grad, &direction);
        }
        // Backtracking until the Armijo condition holds.
        let mut step = 1.0;
        let mut next_value;
        let mut tries = 0;
        loop {
            for ((nx, xv), d) in next.iter_mut().zip(x.iter()).zip(&direction) {
                *nx = xv + step * d;
            }
            next_value = f.eval(&next, &mut next_grad);
            if next_value <= value + 1e-4 * step * slope || tries >= 40 {
                break;
            }
            step *= 0.5;
            tries += 1;
        }
        if next_value > value {
            return Outcome {
                value,
                iterations: iteration,
                converged: false,
            };
        }
        let s: Vec<f64> = next.iter().zip(x.iter()).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = next_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        x.copy_from_slice(&next);
        grad.copy_from_slice(&next_grad);
        let decrease = value - next_value;
        value = next_value;
        if sy > 1e-12 {
            if s_hist.len() == options.memory {
                s_hist.remove(0);
                y_hist.remove(0);
                rho.remove(0);
            }
            s_hist.push(s);
            y_hist.push(y);
            rho.push(1.0 / sy);
        }
        if decrease <= options.relative_decrease * value.abs().max(1.0) {
            return Outcome {
                value,
                iterations: iteration + 1,
                converged: true,
            };
        }
    }
    Outcome {
        value,
        iterations: options.max_iterations,
        converged: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock's banana: a hard valley with its minimum at (1, 1).
    struct Rosenbrock;

    impl Objective for Rosenbrock {
        fn eval(&mut self, x: &[f64], g: &mut [f64]) -> f64 {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        }
    }

    #[test]
    fn finds_the_minimum_of_a_hard_valley() {
        let mut x = [-1.2, 1.0];
        let out = minimize(&mut Rosenbrock, &mut x, Options::default());
        assert!(out.converged, "{out:?}");
        assert!(
            (x[0] - 1.0).abs() < 1e-4 && (x[1] - 1.0).abs() < 1e-4,
            "{x:?}"
        );
    }

    /// A quadratic with very different curvatures per axis.
    struct Bowl;

    impl Objective for Bowl {
        fn eval(&mut self, x: &[f64], g: &mut [f64]) -> f64 {
            let mut v = 0.0;
            for (i, (xi, gi)) in x.iter().zip(g.iter_mut()).enumerate() {
                let k = (i + 1) as f64 * 10.0;
                *gi = k * (xi - i as f64);
                v += 0.5 * k * (xi - i as f64).powi(2);
            }
            v
        }
    }

    #[test]
    fn solves_an_ill_conditioned_quadratic_the_same_way_twice() {
        let mut a = vec![5.0; 20];
        let mut b = vec![5.0; 20];
        let first = minimize(&mut Bowl, &mut a, Options::default());
        let second = minimize(&mut Bowl, &mut b, Options::default());
        assert!(first.converged);
        for (i, v) in a.iter().enumerate() {
            assert!((v - i as f64).abs() < 1e-5, "{i}: {v}");
        }
        assert_eq!(first, second);
        assert_eq!(a, b, "bit for bit");
    }
}
