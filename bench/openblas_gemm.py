"""numpy/OpenBLAS sgemm on the shapes of bench/gemm.ts (f32 only: numpy has no bf16).

Run exactly as recorded in bench/RESULTS.md:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/openblas_gemm.py
(unsetting the overrides lets OpenBLAS pick its kernel for this CPU by itself). Prints the
OpenBLAS build/kernel in use, then the median GFLOP/s of REPS runs after a warm-up.
"""
import os
import sys
import time

import numpy as np

REPS = int(os.environ.get("REPS", "7"))
T = 2048


def shapes():
    """(name, M, N, K, transA, transB), the same list as bench/gemm.ts."""
    out = [("square 2048^3 NN", 2048, 2048, 2048, False, False)]
    for k, n in [(768, 768), (768, 2048), (2048, 768)]:
        out.append((f"fwd  y=xW^T  {k}->{n} NT", T, n, k, False, True))
        out.append((f"bwd dX=dY W  {k}->{n} NN", T, k, n, False, False))
        out.append((f"bwd dW=dY^TX {k}->{n} TN", n, k, T, True, False))
    return out


def kernel_info():
    """Which OpenBLAS core the library picked (threadpoolctl if installed, else numpy's config)."""
    try:
        from threadpoolctl import threadpool_info

        return "; ".join(f"{i.get('internal_api')} {i.get('version')} core={i.get('architecture')} threads={i.get('num_threads')}"
                         for i in threadpool_info())
    except ImportError:
        import io
        from contextlib import redirect_stdout

        buf = io.StringIO()
        with redirect_stdout(buf):
            np.show_config()
        lines = [l.strip() for l in buf.getvalue().splitlines() if "openblas" in l.lower() or "configuration" in l.lower()]
        return "threadpoolctl not installed; numpy.show_config(): " + " | ".join(sorted(set(lines))) + core_name()


def core_name():
    """The kernel OpenBLAS picked at run time, asked from the bundled library itself."""
    import ctypes
    import glob

    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for sym in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return f"; {sym}() = {fn().decode()}"
    return "; core name not available"


def measure(m, n, k, ta, tb):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    opa = a.T if ta else a  # a transposed view: BLAS gets the trans flag, no copy
    opb = b.T if tb else b
    c = np.empty((m, n), dtype=np.float32)
    np.matmul(opa, opb, out=c)
    times = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        np.matmul(opa, opb, out=c)
        times.append(time.perf_counter() - t0)
    times.sort()
    return 2 * m * n * k / times[len(times) // 2] / 1e9


def main():
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, cpus={os.cpu_count()}")
    print(kernel_info())
    print(f"median of {REPS}")
    print(f"{'shape':<30}{'f32 GF/s':>10}")
    for name, m, n, k, ta, tb in shapes():
        print(f"{name:<30}{measure(m, n, k, ta, tb):>10.1f}")


if __name__ == "__main__":
    main()
