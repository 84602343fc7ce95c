"""Finite-difference gradient checks for tests, written once.

Every check perturbs an array in place, calls ``loss()`` (which must read the
array's current contents and return a scalar), and restores the array's exact
value afterwards. Arrays must be float64: with eps = 1e-6 a float32 central
difference is mostly rounding.

Two kinds of check:

- ``check_gradients``: central differences element by element, over every
  element of each array or over a seeded sample of them, each compared with the
  analytic gradient by ``|analytic - numeric| <= atol + rtol * |numeric|``
  (numpy's ``assert_allclose`` rule), or, with ``rule="approx"``, by
  ``<= max(atol, rtol * |numeric|)`` (``pytest.approx(numeric, rel=rtol,
  abs=atol)``). A failure names the array, the worst index and both values.
- ``check_directional``: one central difference along a random direction D of
  the whole array, ``(L(p + eps D) - L(p - eps D)) / 2 eps``, compared with
  ``sum(grad * D)`` by ``|fd - an| <= rtol * max(1, |fd|, |an|)``; cheap enough
  for layers with many parameters.

    check_gradients(loss, dict(x=x, w=w), dict(x=dx, w=dw), rtol=1e-7, atol=1e-9)
    check_gradients(loss, params, grads, rtol=1e-4, atol=1e-8, sample=3, rng=rng,
                    rule="approx")
    check_directional(loss, x, dx, rng, "x", rtol=1e-6)
"""
import numpy as np

EPS = 1e-6


def _float64(name, array):
    if not isinstance(array, np.ndarray) or array.dtype != np.float64:
        raise TypeError(f"{name}: gradient checks need a float64 ndarray, got "
                        f"{getattr(array, 'dtype', type(array).__name__)}")


def central_difference(loss, array, index, eps=EPS):
    """(loss(a[index] + eps) - loss(a[index] - eps)) / 2 eps, `array` restored."""
    saved = array[index]
    array[index] = saved + eps
    up = loss()
    array[index] = saved - eps
    down = loss()
    array[index] = saved
    return (up - down) / (2 * eps)


def numeric_gradient(loss, array, eps=EPS, indices=None):
    """Central differences of loss() w.r.t. `array`, which is perturbed in place.

    indices: None for every element, else flat indices to probe; the result has
    `array`'s shape and holds zeros where nothing was probed.
    """
    grad = np.zeros_like(array)
    if indices is None:
        for k in np.ndindex(array.shape):
            grad[k] = central_difference(loss, array, k, eps)
    else:
        for i in indices:
            k = np.unravel_index(int(i), array.shape)
            grad[k] = central_difference(loss, array, k, eps)
    return grad


def check_gradients(loss, arrays, grads, *, rtol, atol=0.0, eps=EPS, sample=None, rng=0,
                    rule="allclose"):
    """Assert that grads[name] matches central differences of loss() w.r.t. arrays[name].

    Parameters
    ----------
    loss : callable () -> float, reading the current contents of every array
    arrays : dict name -> np.ndarray [dtype=float64], perturbed in place and restored
    grads : dict name -> np.ndarray, the analytic gradients (same names, same shapes)
    rtol, atol : tolerances, combined as `rule` says (module docstring)
    sample : None to probe every element; n to probe min(n, size) distinct elements of
        each array, drawn by ``rng.choice(size, min(n, size), replace=False)`` in the
        order of `arrays`
    rng : np.random.Generator or int seed, used only with `sample`

    Returns the number of elements probed.
    """
    if rule not in ("allclose", "approx"):
        raise ValueError(f"rule must be 'allclose' or 'approx', got {rule!r}")
    if set(arrays) != set(grads):
        raise AssertionError(f"arrays {sorted(arrays)} and gradients {sorted(grads)} differ")
    if sample is not None and not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    probed = 0
    for name, array in arrays.items():
        _float64(name, array)
        analytic = np.asarray(grads[name])
        assert analytic.shape == array.shape, \
            f"{name}: analytic gradient has shape {analytic.shape}, the array {array.shape}"
        if sample is None:
            flat = np.arange(array.size)
        else:
            flat = rng.choice(array.size, size=min(sample, array.size), replace=False)
        numeric = numeric_gradient(loss, array, eps, flat)
        picked = np.unravel_index(flat, array.shape)
        a, n = analytic[picked], numeric[picked]
        err = np.abs(a - n)
        if rule == "allclose":
            tol = atol + rtol * np.abs(n)
        else:
            tol = np.maximum(atol, rtol * np.abs(n))
        bad = ~(err <= tol)  # NaN fails
        if bad.any():
            worst = int(np.argmax(np.where(bad, err - tol, -np.inf)))
            if np.isnan(err[worst]):
                worst = int(np.flatnonzero(np.isnan(err))[0])
            index = tuple(int(c[worst]) for c in picked)
            raise AssertionError(
                f"{name}{list(index)}: analytic {float(a[worst])!r} vs finite difference {float(n[worst])!r} "
                f"(|diff| {err[worst]:.3g} > tol {tol[worst]:.3g}; rtol={rtol}, atol={atol}, "
                f"rule={rule}); {int(bad.sum())} of {flat.size} probed elements fail")
        probed += flat.size
    return probed


def directional_difference(loss, array, grad, rng, eps=EPS):
    """(finite difference, analytic) along D = rng.standard_normal(array.shape).

    `array` is perturbed in place and restored; returns
    ((L(p + eps D) - L(p - eps D)) / 2 eps, sum(grad * D)).
    """
    d = rng.standard_normal(array.shape)
    saved = array.copy()
    array += eps * d
    up = loss()
    array[...] = saved - eps * d
    down = loss()
    array[...] = saved
    return (up - down) / (2 * eps), float(np.sum(grad * d))


def check_directional(loss, array, grad, rng, name, *, rtol, eps=EPS):
    """Assert |fd - an| <= rtol * max(1, |fd|, |an|) along one random direction."""
    _float64(name, array)
    assert np.shape(grad) == array.shape, \
        f"{name}: analytic gradient has shape {np.shape(grad)}, the array {array.shape}"
    fd, an = directional_difference(loss, array, grad, rng, eps)
    assert abs(fd - an) <= rtol * max(1.0, abs(fd), abs(an)), \
        f"{name}: directional finite difference {float(fd)!r} vs analytic {float(an)!r} (rtol={rtol})"
