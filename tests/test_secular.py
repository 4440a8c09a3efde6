"""The O(d^2) diagonal-minus-rank-one eigen-solver, against dense LAPACK and against mpmath at 50 digits."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalinglaw.exact.secular import eig_diag_minus_rank_one


def _power_law_problem(d: int, a: float = 1.5, gamma: float = 0.3):
    """SGD on Gaussian data: K = diag(2 gamma lam - 2 gamma^2 lam^2) - gamma^2 lam lam^T."""
    lam = np.arange(1, d + 1, dtype=float) ** -a
    kappa = 2 * gamma * lam - 2 * gamma**2 * lam**2
    return kappa, gamma**2, lam


def _check_decomposition(kappa, beta, h, k, U, tol=1e-12):
    K = np.diag(kappa) - beta * np.outer(h, h)
    n = kappa.size
    assert np.all(np.diff(k) >= 0)
    assert np.max(np.abs(U.T @ U - np.eye(n))) < tol * max(1, n) ** 0.5 * 10
    assert np.max(np.abs(K @ U - U * k)) < tol * max(1.0, np.max(np.abs(kappa)))


@pytest.mark.parametrize("d", [1, 2, 10, 200])
def test_matches_dense_eigh(d):
    kappa, beta, h = _power_law_problem(d)
    k, U = eig_diag_minus_rank_one(kappa, beta, h)
    ref = np.linalg.eigvalsh(np.diag(kappa) - beta * np.outer(h, h))
    np.testing.assert_allclose(k, ref, rtol=1e-10, atol=1e-14 * np.max(kappa))
    _check_decomposition(kappa, beta, h, k, U)


def test_small_eigenvalues_have_full_relative_accuracy():
    # d = 60 with a = 5: eigenvalues span ~1e-8 relative to the top, where eigh only guarantees ~1e-8 relative
    # at the bottom; the secular solver must be accurate to ~1e-13 relative everywhere (checked at 50 digits).
    d = 60
    kappa, beta, h = _power_law_problem(d, a=5.0, gamma=0.6)
    k, _ = eig_diag_minus_rank_one(kappa, beta, h)
    mpmath.mp.dps = 50
    K = mpmath.matrix(d, d)
    for i in range(d):
        for j in range(d):
            K[i, j] = (mpmath.mpf(kappa[i]) if i == j else 0) - mpmath.mpf(beta) * mpmath.mpf(h[i]) * mpmath.mpf(h[j])
    exact = sorted(float(x) for x in mpmath.eigsy(K, eigvals_only=True))
    np.testing.assert_allclose(k, exact, rtol=1e-13, atol=0)
    assert exact[0] / exact[-1] < 1e-7  # the test exercises a wide spread


def test_unsorted_input_and_zero_weights():
    rng = np.random.default_rng(3)
    kappa = rng.uniform(0.1, 1.0, 30)
    h = rng.normal(size=30)
    h[[2, 7, 11]] = 0.0  # deflated components: their eigenpairs are (kappa_i, e_i)
    k, U = eig_diag_minus_rank_one(kappa, 0.01, h)
    _check_decomposition(kappa, 0.01, h, k, U)
    for i in (2, 7, 11):
        j = int(np.argmin(np.abs(k - kappa[i])))
        assert abs(k[j] - kappa[i]) < 1e-15
        assert abs(abs(U[i, j]) - 1.0) < 1e-12


def test_repeated_poles_deflate_by_rotation():
    kappa = np.array([0.5, 0.3, 0.5, 0.2, 0.3, 0.5])
    h = np.array([0.3, -0.2, 0.1, 0.4, 0.25, -0.15])
    k, U = eig_diag_minus_rank_one(kappa, 0.3, h)
    ref = np.linalg.eigvalsh(np.diag(kappa) - 0.3 * np.outer(h, h))
    np.testing.assert_allclose(k, ref, rtol=1e-12, atol=1e-15)
    _check_decomposition(kappa, 0.3, h, k, U)
    # a pole of multiplicity m keeps m - 1 copies as eigenvalues
    assert np.sum(np.isclose(k, 0.5, rtol=0, atol=1e-15)) == 2
    assert np.sum(np.isclose(k, 0.3, rtol=0, atol=1e-15)) == 1


def test_beta_zero_is_the_diagonal():
    kappa = np.array([0.3, 0.1, 0.2])
    k, U = eig_diag_minus_rank_one(kappa, 0.0, np.ones(3))
    np.testing.assert_array_equal(k, np.sort(kappa))
    np.testing.assert_allclose(np.abs(U), np.eye(3)[:, [1, 2, 0]])


def test_indefinite_matrix_is_refused():
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        eig_diag_minus_rank_one(np.array([0.1, 0.2]), 10.0, np.array([1.0, 1.0]))


@settings(max_examples=40, deadline=None)
@given(
    d=st.integers(2, 40),
    a=st.floats(1.05, 3.0),
    gamma=st.floats(0.01, 0.95),
)
def test_property_decomposition_is_exact_and_orthogonal(d, a, gamma):
    kappa, beta, h = _power_law_problem(d, a=a, gamma=gamma)
    K = np.diag(kappa) - beta * np.outer(h, h)
    if np.linalg.eigvalsh(K)[0] <= 0:
        return  # unstable step: refused (tested above)
    k, U = eig_diag_minus_rank_one(kappa, beta, h)
    _check_decomposition(kappa, beta, h, k, U)


@pytest.mark.parametrize("gap", [1e-15, 1e-13, 1e-11, 1e-9, 1e-7])
def test_clustered_poles_stay_orthogonal(gap):
    """Poles a relative gap apart (not exactly equal): U orthogonal, K U = U k, eigenvalues as eigh's.

    Gu-Eisenstat weights built from the exact kappa, while dlasd4 solved for the rounded kappa^(-1/2), lost
    orthogonality by eps / gap (2e-3 at gap = 1e-13)."""
    kappa = 0.04 * (1.0 + gap * np.arange(30))
    h, beta = np.full(30, 0.7), 1e-3
    k, U = eig_diag_minus_rank_one(kappa, beta, h)
    K = np.diag(kappa) - beta * np.outer(h, h)
    assert np.abs(U.T @ U - np.eye(30)).max() < 1e-12
    assert np.abs(K @ U - U * k).max() < 1e-13 * np.abs(K).max()
    assert np.allclose(np.sort(k), np.linalg.eigvalsh(K), rtol=1e-12, atol=0)
