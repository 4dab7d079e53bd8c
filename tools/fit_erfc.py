"""Print the polynomial coefficients of activation.h's erfc (the exact GELU): for z >= 0,

    erfc(z) = t * exp(-z*z + g(t)),   t = 2 / (2 + z),

with g a polynomial in s = A*t + B (t in [tmin, 1] mapped onto [-1, 1]), interpolated at
Chebyshev nodes in 50-digit arithmetic (mpmath) and printed in the monomial basis of s, for
float32 (z up to 10.1: erfc is below half the least subnormal beyond) and float64 (27.3).

    python tools/fit_erfc.py
"""
import mpmath as mp

mp.mp.dps = 50
CASES = {"f32": (mp.mpf("10.1"), 11), "f64": (mp.mpf("27.3"), 26)}


def g(t):
    z = 2 / t - 2
    return mp.log(mp.erfc(z) / t) + z * z


def fit(zmax, degree):
    """(monomial coefficients of g in s, lowest first; A; B; max error on a fine grid)."""
    tmin = mp.mpf(2) / (2 + zmax)
    mid, half = (1 + tmin) / 2, (1 - tmin) / 2
    n = degree + 1
    nodes = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)]
    vals = [g(mid + half * s) for s in nodes]
    cheb = [2 * mp.fsum(vals[k] * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / n)
                        for k in range(n)) / n for j in range(n)]
    cheb[0] /= 2
    basis = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]
    while len(basis) < n:
        nxt = [mp.mpf(0)] + [2 * v for v in basis[-1]]
        for i, v in enumerate(basis[-2]):
            nxt[i] -= v
        basis.append(nxt)
    mono = [mp.mpf(0)] * n
    for j in range(n):
        for i, v in enumerate(basis[j]):
            mono[i] += cheb[j] * v
    err = mp.mpf(0)
    for k in range(500):
        s = -1 + 2 * mp.mpf(k) / 499
        p = mp.mpf(0)
        for c in reversed(mono):
            p = p * s + c
        err = max(err, abs(p - g(mid + half * s)))
    return mono, 1 / half, -mid / half, err


if __name__ == "__main__":
    for dt, (zmax, degree) in CASES.items():
        mono, a, b, err = fit(zmax, degree)
        print(f"{dt}: zmax {zmax}, degree {degree}, max |error| of g {mp.nstr(err, 3)}")
        print(f"  A = {mp.nstr(a, 20)}, B = {mp.nstr(b, 20)}")
        print("  " + ", ".join(mp.nstr(c, 20) for c in reversed(mono)))
