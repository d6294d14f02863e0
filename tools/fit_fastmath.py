#!/usr/bin/python3
"""Fits the polynomial coefficients of src/ops/fastmath.h (exp and erf for
float) and reports their worst error in float arithmetic, in ulp.

Near-minimax fits: least squares on Chebyshev nodes, then Lawson iterations
(reweighting towards the points of largest error). Run: /usr/bin/python3 tools/fit_fastmath.py
"""
import math
import numpy as np
import mpmath as mp

mp.mp.dps = 40


def lawson(xs, target, basis, weight, iters=60):
    """Coefficients c minimising max |weight·(basis(xs)·c - target)|."""
    A = np.array([basis(x) for x in xs], dtype=np.float64)
    t = np.array(target, dtype=np.float64)
    w = np.array(weight, dtype=np.float64)
    lw = np.ones(len(xs)) / len(xs)
    for _ in range(iters):
        sw = np.sqrt(lw) * w
        c, *_ = np.linalg.lstsq(A * sw[:, None], t * sw, rcond=None)
        err = np.abs((A @ c - t) * w)
        lw = lw * err
        lw /= lw.sum()
    return c, np.max(np.abs((A @ c - t) * w))


def cheb(a, b, n):
    k = np.arange(n)
    return 0.5 * (a + b) + 0.5 * (b - a) * np.cos(np.pi * (k + 0.5) / n)


def ulp_err(got, ref):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    return np.max(np.abs(got - ref) / ulp)


f32 = np.float32


def horner32(c, x):
    p = f32(c[-1])
    for ci in reversed(c[:-1]):
        p = f32(f32(p * x) + f32(ci))
    return p


# ---- exp: exp(r) = 1 + r + r^2·P(r), |r| <= ln2/2, P of degree 5
half = math.log(2) / 2
rs = cheb(-half, half, 400)
tgt = [float((mp.exp(mp.mpf(r)) - 1 - r) / r**2) for r in rs]
wgt = [r * r / math.exp(r) for r in rs]  # relative error of exp(r)
exp_c, e = lawson(rs, tgt, lambda r: [r**i for i in range(6)], wgt)
print("exp P coefficients (r^0..r^5):", ", ".join("%.9e" % v for v in exp_c), " rel err %.2e" % e)


def exp32(x):
    x = f32(x)
    n = f32(np.rint(f32(x * f32(1.44269504))))
    r = f32(x - f32(n * f32(0.693359375)))
    r = f32(r - f32(n * f32(-2.12194440e-4)))
    p = horner32([f32(v) for v in exp_c], r)
    e = f32(f32(f32(p * f32(r * r)) + r) + f32(1))
    return f32(e * f32(2.0) ** int(n))


xs = np.linspace(-87.3, 88.7, 200001).astype(np.float32)
got = np.array([exp32(x) for x in xs[::7]])
ref = np.array([float(mp.exp(mp.mpf(float(x)))) for x in xs[::7]])
print("exp worst error in float: %.2f ulp" % ulp_err(got, ref))

# ---- erf, |x| < 1: erf(x) = x·Q(x^2), Q of degree 6
SPLIT = 1.0
xs1 = cheb(1e-4, SPLIT, 400)
tgt = [float(mp.erf(mp.mpf(x)) / x) for x in xs1]
wgt = [x / float(mp.erf(x)) for x in xs1]
erf_small, e = lawson(xs1, tgt, lambda x: [x ** (2 * i) for i in range(7)], wgt)
print("erf small Q coefficients (x^0, x^2, ..):", ", ".join("%.9e" % v for v in erf_small), " rel err %.2e" % e)

# ---- erf, 1 <= x < 4: erf(x) = 1 - exp(R(x)), R approximating log(erfc(x)), degree 10
xs2 = cheb(SPLIT, 4.0, 600)
tgt = [float(mp.log(mp.erfc(mp.mpf(x)))) for x in xs2]
wgt = [float(mp.erfc(x)) for x in xs2]  # abs error of erf = erfc·|dR|
DEG = 10
erf_big, e = lawson(xs2, tgt, lambda x: [x**i for i in range(DEG + 1)], wgt)
print("erf big R coefficients (x^0..x^%d):" % DEG, ", ".join("%.9e" % v for v in erf_big), " abs err %.2e" % e)


def erf32(x):
    x = f32(x)
    a = f32(abs(x))
    if a < SPLIT:
        return f32(x * horner32([f32(v) for v in erf_small], f32(x * x)))
    if a >= 4:
        return f32(math.copysign(1.0, x))
    v = f32(f32(1) - exp32(horner32([f32(v) for v in erf_big], a)))
    return f32(math.copysign(float(v), x))


xs = np.linspace(-4.5, 4.5, 60001).astype(np.float32)
got = np.array([erf32(x) for x in xs])
ref = np.array([float(mp.erf(mp.mpf(float(x)))) for x in xs])
print("erf worst error in float: %.2f ulp, %.2e abs" % (ulp_err(got, ref), np.max(np.abs(got - ref))))
err = np.abs(got - ref) / np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
for i in np.argsort(err)[-5:]:
    print("  worst at x=%.6f: %.2f ulp" % (xs[i], err[i]))
