"""Facts about this installation for `suite info`: versions, CPU, threads, caches, GPU."""
import os
import platform
import sys


def _version(module_name):
    try:
        module = __import__(module_name)
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return None
    return getattr(module, "__version__", "unknown")


def cpu_features():
    """The SIMD features LLVM will target on this CPU (what makes the gate loops fast)."""
    try:
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features()
        wanted = ("avx", "avx2", "fma", "avx512f", "avx512vl", "avx512bw", "neon", "sve")
        return sorted(name for name in wanted if features.get(name))
    except Exception:  # noqa: BLE001
        return []


def cpu_model():
    """The CPU's model name (/proc/cpuinfo on Linux; platform's answer elsewhere): benchmarks name their CPU."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_cores():
    """The BLAS libraries loaded in this process and the CPU kernel each picked ("Haswell", "SkylakeX", ...): a
    ratio against torch depends on it (threadpoolctl's view; [] when it is not installed)."""
    try:
        import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, the one np.dot inside @njit calls)
        import threadpoolctl
    except Exception:  # noqa: BLE001
        return []
    return [{"library": i.get("prefix"), "version": i.get("version"), "core": i.get("architecture"),
             "threads": i.get("num_threads")} for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]


def machine():
    """What a benchmark prints about where it ran: CPU model, SIMD features, cores, BLAS kernels."""
    return {"cpu": cpu_model(), "simd": cpu_features(), "cores": os.cpu_count(), "blas": blas_cores(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}


def cuda_status():
    """(usable, reason): whether a CUDA GPU can run our @cuda.jit kernels (suite.device; the simulator is no GPU)."""
    from suite.device_choice import gpu_status

    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False, "NUMBA_ENABLE_CUDASIM=1 (simulator, not a GPU)"
    return gpu_status()


def collect():
    import numba
    from numba.core.config import NUMBA_NUM_THREADS

    import suite

    from suite.device_choice import GPU_APPS

    cuda_ok, cuda_reason = cuda_status()
    cache_dir = os.environ.get("NUMBA_CACHE_DIR") or "(beside each module, in __pycache__)"  # set by kernels/
    return {
        "suite": suite.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numba": numba.__version__,
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_features": cpu_features(),
        "numba_threads": NUMBA_NUM_THREADS,
        "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"),
        "numba_cache_dir": cache_dir,
        "cuda_usable": cuda_ok,
        "cuda": cuda_reason,
        "gpu_commands": [f"{app} {cmd}" for app, cmds in GPU_APPS.items() for cmd in cmds],
    }
