"""How far Winograd F(m x m, 3 x 3) rounds from the float64 truth, next to the direct method.

Issue 18 asks for Winograd on 3x3 stride-1 layers where it is faster *and* accurate (float32:
max |y - ref| <= 1e-5 * max |ref|). Its error grows with the tile m (the transforms' constants
grow) and with the interpolation points; this measures it before any kernel is written:

    python tools/winograd_error.py [--channels 64,256,1024,2048] [--size 12] [--block 16]

For each m in (2, 4, 6) and each point set, the transforms come from the Toom-Cook
construction (A^T and G from the points, B^T solved exactly in float64 and checked), and the
whole algorithm runs in the dtype under test with numpy: V = B^T d B per input tile, U = G g
G^T per filter, M = sum over input channels of U * V (one float32 dot product per position,
as a GEMM computes it), Y = A^T M A. The direct method is cconv.conv2d (algorithm igemm).
The truth is cconv.testing.conv2d_ref in float64. Printed: max |y - ref| / max |ref| per
case; numpy's summation order differs from a kernel's, so read the magnitudes, not digits.
"""
import argparse
import itertools
from fractions import Fraction

import numpy as np

import cconv
from cconv.testing import conv2d_ref

# Interpolation points (infinity is always added). Small integers and their halves keep the
# transforms' constants, and so the rounding, small: the usual choice for each m.
POINTS = {
    2: [(0, 1, -1)],
    4: [(0, 1, -1, 2, -2), (0, 1, -1, Fraction(1, 2), -Fraction(1, 2))],
    6: [(0, 1, -1, 2, -2, Fraction(1, 2), -Fraction(1, 2)),
        (0, 1, -1, 2, -2, 3, -3)],
}


def transforms(points, m, r=3):
    """(A^T, G, B^T) of F(m, r) for these finite points plus infinity, in float64."""
    n = m + r - 1
    assert len(points) == n - 1
    pts = [Fraction(p) for p in points]
    AT = np.zeros((m, n))
    G = np.zeros((n, r))
    for j, a in enumerate(pts):
        f = 1
        for b in pts:
            if b != a:
                f *= a - b
        for i in range(m):
            AT[i, j] = float(a ** i)
        for k in range(r):
            G[j, k] = float(a ** k / f)
    AT[m - 1, n - 1] = 1
    G[n - 1, r - 1] = 1
    # B^T from the identity the algorithm must satisfy for every d and g:
    #   sum_j AT[i, j] G[j, k] BT[j, q] = [q == i + k]
    rows, rhs = [], []
    for i, k, q in itertools.product(range(m), range(r), range(n)):
        row = np.zeros((n, n))
        row[:, q] = AT[i, :] * G[:, k]
        rows.append(row.ravel())
        rhs.append(1.0 if q == i + k else 0.0)
    BT = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0].reshape(n, n)
    residual = np.abs(np.array(rows) @ BT.ravel() - np.array(rhs)).max()
    assert residual < 1e-9, f"points {points}: no exact B^T (residual {residual})"
    return AT, G, np.round(BT, 12)


def winograd(x, w, AT, G, BT, dtype, block=0):
    """conv2d(x, w, padding=1) by F(m, 3) in `dtype`: x (C, H, W), w (K, C, 3, 3). block: sum
    the GEMM's products `block` input channels at a time, then the blocks' sums one after the
    other, as the kernel does (0: one matmul)."""
    m, n = AT.shape
    C, H, W = x.shape
    th, tw = -(-H // m), -(-W // m)
    xp = np.zeros((C, th * m + 2, tw * m + 2), dtype)
    xp[:, 1:H + 1, 1:W + 1] = x
    AT, G, BT = (a.astype(dtype) for a in (AT, G, BT))
    # Input tiles (C, th, tw, n, n), overlapping by 2.
    tiles = np.lib.stride_tricks.sliding_window_view(xp, (n, n), axis=(1, 2))[:, ::m, ::m]
    V = np.einsum("ij,cyxjk,lk->ilcyx", BT, tiles, BT).astype(dtype)      # (n, n, C, th, tw)
    U = np.einsum("ij,ocjk,lk->iloc", G, w.astype(dtype), G).astype(dtype)  # (n, n, K, C)
    V = V.reshape(n, n, C, th * tw)
    if block:
        M = np.matmul(U[..., :block], V[:, :, :block]).astype(dtype)
        for c in range(block, C, block):
            M += np.matmul(U[..., c:c + block], V[:, :, c:c + block]).astype(dtype)
    else:
        M = np.matmul(U, V).astype(dtype)                                 # (n, n, K, tiles)
    Y = np.einsum("ij,jlot,kl->oikt", AT, M, AT).astype(dtype)            # (K, m, m, tiles)
    Y = Y.reshape(-1, m, m, th, tw).transpose(0, 3, 1, 4, 2).reshape(-1, th * m, tw * m)
    return Y[:, :H, :W]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", default="64,256,1024,2048")
    parser.add_argument("--size", type=int, default=12, help="image height and width")
    parser.add_argument("--out-channels", type=int, default=16)
    parser.add_argument("--block", type=int, default=0,
                        help="input channels per partial sum (the kernel's SUB; 0: one sum)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'C_in':>5s} {'dtype':8s} {'direct':>9s} " + " ".join(
        f"{f'F({m}) ' + ','.join(str(p) for p in pts[3:]) or f'F({m})':>16s}"
        for m, sets in POINTS.items() for pts in sets))
    for C in (int(c) for c in args.channels.split(",")):
        x = rng.standard_normal((C, args.size, args.size))
        w = rng.standard_normal((args.out_channels, C, 3, 3)) / np.sqrt(9 * C)
        ref = conv2d_ref(x[None], w, padding=1)[0]
        scale = np.abs(ref).max()
        for dtype in (np.float32, np.float64):
            direct = cconv.conv2d(x[None].astype(dtype), w.astype(dtype), padding=1,
                                  algorithm="igemm")[0]
            cells = [np.abs(direct - ref).max() / scale]
            for m, sets in POINTS.items():
                for pts in sets:
                    y = winograd(x.astype(dtype), w, *transforms(pts, m), dtype,
                                 args.block)
                    cells.append(np.abs(y - ref).max() / scale)
            print(f"{C:5d} {np.dtype(dtype).name:8s} " + " ".join(f"{c:9.2e}" if i == 0
                                                                  else f"{c:16.2e}"
                                                                  for i, c in enumerate(cells)))


if __name__ == "__main__":
    main()
