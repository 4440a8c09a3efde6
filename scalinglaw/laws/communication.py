r"""Closed forms for the price of quantized communication in data-parallel SGD [recon, calibrated].

The law bounds :math:`\Delta_{\rm comm}=\mathcal E(\text{quantized messages})-\mathcal E(\text{full-precision
messages})`, the excess risk that quantizing the workers' messages adds to the same run (same :math:`K`,
:math:`\tau`, :math:`B`, step and schedule). Leading orders [derived, ``theory/distributed.md`` §4]: at a constant
step the last iterate's noise equilibrates at :math:`a_i\approx\gamma\,\nu_i/(2\tilde\mu_i)` for a per-step
injection :math:`\nu_i`, so every coordinate contributes :math:`\mu_ia_i\approx\gamma\nu_i/2` to the risk whatever
its curvature, and

* additive messages (:math:`\nu_i=\gamma^2\epsilon/(K\tau)` per step): :math:`\Delta\approx\gamma\epsilon d/(2K\tau)`,
  the **communication floor**, linear in the model size :math:`d` and in :math:`1/K`;
* norm-relative messages (:math:`\sum_i\nu_i=\gamma^2q\,\mathbb E\|g_k\|^2/K`) and multiplicative ones
  (:math:`\nu_i=\gamma^2\epsilon\,\mathbb Eg_{k,i}^2/K`): :math:`\Delta\approx q\,\gamma\,\mathbb E\|g_k\|^2/(2K)`, i.e.
  the label-noise variance :math:`\gamma\sigma^2\operatorname{tr}H/(2KB)` of the :math:`K`-worker run times
  :math:`q` (variance inflation :math:`1+q`, not :math:`1+q/K`: the noise of each message is averaged over the
  :math:`K` workers exactly like the gradient noise it rides on).

Forms with calibration constants (power law :math:`\lambda_i=i^{-a}`, :math:`\lambda_i\mathbb Ew_i^{*2}=i^{-b}`,
:math:`w_0=0`; :math:`G^2=(\sigma^2+\mathcal E_0)\operatorname{tr}H/B+2\tau\sum_i\lambda_i^2\mathbb Ew_i^{*2}` bounds
the message energy along the run, :math:`\mathcal E_0=\sum_ii^{-b}` the initial excess risk):

.. math::

    \Delta\le\Phi\Big(c_{\rm add}\frac{\gamma\epsilon_+d}{2K\tau}+c_{\rm mul}\frac{\epsilon_\times\gamma G^2}{2K}
    +c_{\rm norm}\frac{q\,\gamma G^2}{2K}\Big),\qquad\Phi=\frac1{1-\gamma/\gamma_{\rm ms}},

with :math:`\gamma_{\rm ms}` the law's mean-square step limit (:func:`step_limit`): the feedback of the noise on
itself, which the leading orders leave out, grows without bound as the step nears the stability edge.

Domain (documented and tested, ``tests/test_distributed.py``): plain regression, finite :math:`d`, constant
step below :math:`\gamma_{\rm ms}` (refused above), any output, full-precision workers, :math:`\tau\ge1`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from ..errors import ParameterError
from .base import Law, Variable, refuse_options
from .constants import ConstantSet
from .special import PowerHead

__all__ = ["CommunicationLaw", "calibrate", "communication_inputs", "design", "evaluate", "step_limit"]

_GAMMA = Variable("gamma", "step size (constant)", why="a step size")
_K = Variable("K", "number of workers", lower=1.0, lower_inclusive=True, default=1.0, why="a worker count")
_TAU = Variable("tau", "local steps per communication round", lower=1.0, lower_inclusive=True, default=1.0,
                why="a period")
_B = Variable("B", "batch size of each worker", lower=1.0, lower_inclusive=True, default=1.0, why="a batch size")
_SIGMA2 = Variable("sigma2", "label-noise variance", lower_inclusive=True, default=1.0, positive=False,
                   why="a variance")
_A = Variable("a", "spectrum exponent: lambda_i = i^-a", why="a decay exponent")
_BSRC = Variable("b", "source exponent: lambda_i E w*_i^2 = i^-b", why="a decay exponent")
_D = Variable("d", "dimension (the message length)", lower=1.0, lower_inclusive=True, why="a dimension")
_EPS_ADD = Variable("eps_add", "epsilon of additive messages", lower_inclusive=True, default=0.0, positive=False,
                    why="a noise variance")
_EPS_MUL = Variable("eps_mul", "epsilon of multiplicative messages", lower_inclusive=True, default=0.0,
                    positive=False, why="a noise variance")
_Q = Variable("q", "relative error energy of norm-relative messages", lower_inclusive=True, default=0.0,
              positive=False, why="a noise variance")

gamma, K, tau, B, sigma2, a, b, d, eps_add, eps_mul, q = (
    v.symbol for v in (_GAMMA, _K, _TAU, _B, _SIGMA2, _A, _BSRC, _D, _EPS_ADD, _EPS_MUL, _Q))
G2 = sp.Symbol("G2", positive=True)
V = sp.Symbol("V", positive=True)
GMS = sp.Symbol("gamma_ms", positive=True)
PHI = sp.Symbol("Phi", positive=True)


@cache
def _calibration() -> dict[str, Any]:
    try:
        text = resources.files("scalinglaw.data").joinpath("comm_calibration.json").read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        return {}
    return json.loads(text)


class CommunicationLaw(Law):
    """The price of quantized messages (module docstring) [recon, calibrated against the exact engine]."""

    name: ClassVar[str] = "communication"
    title: ClassVar[str] = "Data-parallel SGD: excess risk added by quantized communication (upper bound)"
    provenance: ClassVar[str] = "[recon] forms on the [derived] stationary leading orders (theory/distributed.md)"
    variables: ClassVar[tuple[Variable, ...]] = (_GAMMA, _K, _TAU, _B, _SIGMA2, _A, _BSRC, _D, _EPS_ADD, _EPS_MUL,
                                                 _Q)
    constant_sets: ClassVar[dict[str, ConstantSet]] = {
        "unit": ConstantSet(name="unit", values={"c_additive": 1.0, "c_mul_variance": 1.0, "c_mul_bias": 1.0,
                                                 "c_norm_variance": 1.0, "c_norm_bias": 1.0},
                            provenance="[recon]", notes="the bare leading-order forms"),
    }
    default_constants: ClassVar[str] = "calibrated"
    constant_descriptions: ClassVar[dict[str, str]] = {
        "c_additive": "multiplier of the additive communication floor gamma eps d/(2 K tau)",
        "c_mul_variance": "multiplier of eps gamma sigma^2 tr H/(2KB) (the noise-driven part, multiplicative)",
        "c_mul_bias": "multiplier of eps gamma G^2/(2K) (the signal-driven part, multiplicative)",
        "c_norm_variance": "multiplier of q gamma sigma^2 tr H/(2KB) (the noise-driven part, norm-relative)",
        "c_norm_bias": "multiplier of q gamma G^2/(2K) (the signal-driven part, norm-relative)",
    }
    latex_names: ClassVar[dict[str, str]] = {"sigma2": r"\sigma^2", "eps_add": r"\epsilon_+",
                                             "eps_mul": r"\epsilon_\times", "G2": "G^2", "tau": r"\tau",
                                             "gamma_ms": r"\gamma_{\rm ms}", "Phi": r"\Phi"}

    def __init__(self, constants: Any = None, **options: Any) -> None:
        refuse_options(options, "the communication law has no options (give eps_add, eps_mul or q)")
        super().__init__(constants)

    def _extra_constant_sets(self) -> dict[str, ConstantSet]:
        entry = _calibration().get("constants")
        return {} if entry is None else {"calibrated": ConstantSet.from_dict(entry)}

    def _definitions(self) -> dict[sp.Symbol, sp.Expr]:
        rho = 1 + eps_mul + q
        b_eff = B * K ** (1 / tau)
        return {
            V: sigma2 * PowerHead(a, d) / B,
            G2: PowerHead(b, d) * PowerHead(a, d) / B + 2 * tau * PowerHead(a + b, d),
            GMS: 2 / (1 + rho / b_eff + rho * PowerHead(a, d) / b_eff),
            PHI: 1 / (1 - gamma / GMS),
        }

    def _terms(self) -> dict[str, sp.Expr]:
        c = self.constant_symbol
        return {
            "additive_floor": c("c_additive") * PHI * gamma * eps_add * d / (2 * K * tau),
            "multiplicative_variance": c("c_mul_variance") * PHI * eps_mul * gamma * V / (2 * K),
            "multiplicative_bias": c("c_mul_bias") * PHI * eps_mul * gamma * G2 / (2 * K),
            "norm_variance": c("c_norm_variance") * PHI * q * gamma * V / (2 * K),
            "norm_bias": c("c_norm_bias") * PHI * q * gamma * G2 / (2 * K),
        }

    def _validate(self, values: dict[str, np.ndarray]) -> None:
        limit = step_limit(values)
        bad = ~(values["gamma"] < limit)
        if np.any(bad):
            raise ParameterError("gamma", float(np.broadcast_to(values["gamma"], bad.shape)[bad].ravel()[0]),
                                 f"be < {float(np.min(limit)):.6g}, the law's mean-square step limit "
                                 "2/(1 + rho/B_eff + rho tr H/B_eff) (rho = 1 + eps_mul + q, B_eff = B K^(1/tau))")


def step_limit(values: dict[str, Any]) -> Any:
    r"""The law's step limit [recon]
    :math:`\gamma_{\rm ms}=2/(\lambda_1(1+\rho/B_{\rm eff})+\rho\operatorname{tr}H/B_{\rm eff})`:
    :func:`~scalinglaw.dynamics.mean_square_step_limit` with the message noise inflating the
    per-sample fourth-moment feedback by :math:`\rho=1+\epsilon_\times+q` and the effective batch
    :math:`B_{\rm eff}=BK^{1/\tau}` (:math:`KB` when gradients are averaged every step, :math:`B` for long
    periods)."""
    from ..dynamics import mean_square_step_limit
    from .special import power_head

    rho = 1.0 + np.asarray(values.get("eps_mul", 0.0)) + np.asarray(values.get("q", 0.0))
    b_eff = np.asarray(values.get("B", 1.0)) * np.asarray(values.get("K", 1.0)) ** (1.0 / np.asarray(
        values.get("tau", 1.0)))
    return mean_square_step_limit(1.0, rho * power_head(values["a"], values["d"]), b_eff / rho)


def communication_inputs(problem: Any) -> dict[str, float]:
    """The law's inputs for a :class:`~scalinglaw.problem.Problem` inside its domain (refused otherwise)."""
    from ..communication import comm_scheme
    from ..errors import UnsupportedConfigurationError
    from ..spectra import PowerLaw
    from ..targets import Ones, SourcePrior

    spec = problem.spectrum
    if problem.M is not None or not isinstance(spec, PowerLaw) or spec.lambda1 != 1.0 or spec.is_infinite:
        raise UnsupportedConfigurationError(
            "the communication law covers plain regression with lambda_i = i^-a and a finite d; use --method exact")
    if problem.schedule != "constant":
        raise UnsupportedConfigurationError("the communication law covers constant steps; use --method exact")
    if any(problem.quantizers.values()):
        raise UnsupportedConfigurationError(
            "the communication law covers full-precision workers (only the messages quantized); use --method exact")
    target = problem.target
    if isinstance(target, Ones):
        bb = spec.a
    elif isinstance(target, SourcePrior):
        bb = spec.a if target.b is None else target.b
    else:
        raise UnsupportedConfigurationError("the communication law needs the ones or prior target")
    kind, eps = comm_scheme(problem.comm)
    return {"gamma": problem.gamma, "K": problem.K, "tau": problem.period, "B": problem.B, "sigma2": problem.sigma2,
            "a": spec.a, "b": bb, "d": float(spec.d), "eps_add": eps if kind == "additive" else 0.0,
            "eps_mul": eps if kind == "multiplicative" else 0.0, "q": eps if kind == "norm-relative" else 0.0}


def design(which: str) -> list[Any]:
    r"""The calibration (``"calibration"``) or test (``"test"``) design of the law's domain (deterministic).

    Calibration: for each message kind the full factorial of the corners :math:`a\in\{1.5,2.5\}`,
    :math:`d\in\{8,96\}`, :math:`T\in\{64,2048\}`, output last or uniform, step 0.2 or 0.8 of
    :func:`step_limit`, with :math:`K\in\{1,2,8\}`, :math:`\tau\in\{1,2,4\}`, :math:`B\in\{1,4\}`, the
    noise level, :math:`\sigma^2` and the target drawn at random. Test: 18 random points with other values of
    every continuous parameter (:math:`a\in\{1.8,2.2\}`, :math:`d\in\{12,48\}`, ...).
    """
    from ..errors import UnstableStepError
    from ..exact import exact_risk
    from ..problem import make_problem

    cal = which == "calibration"
    rng = np.random.default_rng(7001 if cal else 7002)
    if cal:
        corners = [(k, a_, dim, T, avg, frac) for k in ("additive", "multiplicative", "norm") for a_ in (1.5, 2.5)
                   for dim in (8, 96) for T in (64, 2048) for avg in ("last", "uniform") for frac in (0.2, 0.8)]
    else:
        corners = [(("additive", "multiplicative", "norm")[i % 3], float(rng.choice([1.8, 2.2])),
                    int(rng.choice([12, 48])), int(rng.choice([128, 1024])),
                    str(rng.choice(["last", "uniform", "tail"])), float(rng.choice([0.35, 0.65]))) for i in range(18)]
    out = []
    for kind, a_, dim, T, avg, frac in corners:
        Kw = int(rng.choice([1, 2, 8] if cal else [2, 4]))
        tau_ = int(rng.choice([1, 2, 4] if cal else [1, 3]))
        Bw = int(rng.choice([1, 4] if cal else [2]))
        steps = T // tau_ * tau_
        eps = float(rng.choice([1e-3, 1e-2, 0.3] if cal else [3e-3, 0.1])) if kind != "norm" else \
            float(rng.choice([0.1, 1.0, 8.0] if cal else [0.5, 3.0]))
        kw = {"a": a_, "d": dim, "K": Kw, "period": tau_, "B": Bw, "N": steps * Kw * Bw,
              "sigma2": float(rng.choice([0.25, 1.0])), "average": avg, "comm": f"{kind}:{eps}"}
        if rng.random() < 0.4:
            kw.update(target="prior", b=a_ - 0.3)
        p = make_problem(**kw, gamma=1e-3)
        p = p.with_(gamma=frac * float(step_limit(communication_inputs(p))))
        try:
            exact_risk(p)
        except UnstableStepError:
            continue
        out.append(p)
    return out


def evaluate(problems: list[Any]) -> list[dict[str, float]]:
    """Exact :math:`\\Delta_{\\rm comm}` and the unit-constant closed terms at each problem."""
    from ..exact import exact_risk

    unit = CommunicationLaw("unit")
    rows = []
    for p in problems:
        q, f = exact_risk(p).terms, exact_risk(p.with_(comm=None)).terms
        dv = q["variance"] - f["variance"]
        db = sum(q.values()) - sum(f.values()) - dv
        closed = {k: float(v) for k, v in unit.breakdown(**communication_inputs(p)).items()}
        rows.append({"exact": dv + db, "exact_variance": dv, "exact_bias": db, **closed})
    return rows


def calibrate() -> dict[str, Any]:
    """Fit ``c_term = max(exact / closed at c = 1)`` per term on the calibration design; report closed/exact on
    the test design (``scalinglaw/data/comm_calibration.json``)."""
    import datetime as _dt

    cal, test = evaluate(design("calibration")), evaluate(design("test"))
    names = {"additive_floor": "c_additive", "multiplicative_variance": "c_mul_variance",
             "multiplicative_bias": "c_mul_bias", "norm_variance": "c_norm_variance", "norm_bias": "c_norm_bias"}
    consts = {}
    for term, cname in names.items():
        part = "exact" if term == "additive_floor" else "exact_" + term.rpartition("_")[2]
        ratios = [max(r[part], 0.0) / r[term] for r in cal if r[term] > 0]
        consts[cname] = max(ratios) if ratios else 1.0

    def tight(rows: list[dict[str, float]]) -> dict[str, float]:
        ratio = np.array([sum(consts[names[t]] * r[t] for t in names) / r["exact"] for r in rows if r["exact"] > 0])
        return {"n": int(ratio.size), "min": float(ratio.min()), "median": float(np.median(ratio)),
                "max": float(ratio.max()), "nonpositive_exact": int(sum(r["exact"] <= 0 for r in rows))}

    cs = ConstantSet(name="calibrated", values=consts, provenance="[derived: calibrated]",
                     source="scalinglaw.laws.communication.calibrate against the exact engine",
                     table=f"calibration design of {len(cal)} problems; test design of {len(test)}",
                     confidence="upper bound on the calibration design by construction; see 'test'",
                     notes=f"generated {_dt.date.today().isoformat()}")
    return {"constants": cs.to_dict(), "calibration": tight(cal), "test": tight(test)}
