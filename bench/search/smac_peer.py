"""SMAC3's ``HyperbandFacade`` as a benchmark peer (an optional dependency: ``smac>=2.4,<3``,
the ``bench`` extra of setup.cfg).

SMAC searches the grid's value *indices* (one ``Integer`` per hyperparameter, so its
neighbourhoods follow the grid's order), with budgets in steps from ``window`` to
``full_steps`` and eta 3, through its ask-and-tell interface. A configuration asked again at
a larger budget continues its earlier training (only the new steps count); a trial the
budget cannot pay ends the search.
"""

from __future__ import annotations

import math
import tempfile

import numpy as np

from kt_predictive.budget import final_mean, window_mean

from .ledger import StepLedger
from .problems import Problem

SMAC_HYPERBAND = "SMAC3 HyperbandFacade (grid indices)"
SMAC_ETA = 3


def smac_available() -> bool:
    """Whether SMAC3 imports (``pip install 'smac>=2.4,<3'``)."""
    try:
        import smac  # noqa: F401
    except ImportError:
        return False
    return True


def run_smac(problem: Problem, seed: int, ledger: StepLedger) -> dict:
    """SMAC3 HyperbandFacade until the budget is used; returns trial counts.

    Raises:
        ImportError: SMAC3 is not installed; says how to install it.
    """
    try:
        from ConfigSpace import ConfigurationSpace, Integer
        from smac import HyperbandFacade, Scenario
        from smac.runhistory.dataclasses import TrialValue
    except ImportError as error:
        raise ImportError(
            "the SMAC3 peer needs smac 2.x: pip install 'smac>=2.4,<3' (or the project's "
            "'bench' extra)"
        ) from error
    budget = problem.settings.budget
    grid = [(hp.name, list(hp.values)) for hp in problem.space().space]
    space = ConfigurationSpace(seed=seed)
    space.add([Integer(name, (0, len(values) - 1)) for name, values in grid])
    runs: dict[tuple[int, ...], object] = {}
    trials = 0

    def unused(config, seed: int = 0, budget: float = 0.0) -> float:
        raise RuntimeError("the SMAC peer runs trials through ask and tell")

    with tempfile.TemporaryDirectory(prefix="smac-") as directory:
        scenario = Scenario(
            space,
            name=f"{problem.name}-seed{seed}",
            output_directory=directory,
            deterministic=True,
            n_trials=10**9,
            min_budget=budget.window,
            max_budget=budget.full_steps,
            seed=seed,
        )
        facade = HyperbandFacade(
            scenario,
            unused,
            intensifier=HyperbandFacade.get_intensifier(scenario, eta=SMAC_ETA),
            overwrite=True,
            logging_level=40,
        )
        while ledger.left > 0:
            info = facade.ask()
            steps = min(budget.full_steps, max(1, round(info.budget)))
            key = tuple(int(info.config[name]) for name, _ in grid)
            run = runs.get(key)
            if run is None:
                values = {name: vals[i] for (name, vals), i in zip(grid, key, strict=True)}
                run = runs[key] = problem.start(values, seed)
            more = max(0, steps - len(run.losses))
            if more > ledger.left:
                break  # the budget cannot pay this trial: the search ends
            run.train(more)
            ledger.spend(more)
            trials += 1
            losses = np.asarray(run.losses[:steps])
            if not len(losses) or not math.isfinite(losses[-1]):
                cost = math.inf
            elif len(losses) >= budget.full_steps:
                cost = final_mean(losses, budget)
                if more:
                    ledger.real_final(cost)
            else:
                cost = window_mean(losses, len(losses), min(budget.window, len(losses)))
            facade.tell(info, TrialValue(cost=cost if math.isfinite(cost) else 1e10))
    return {"trials": trials, "configurations": len(runs)}
