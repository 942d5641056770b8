"""Design study for the search method on LCBench tables (issue 24): candidate rules, replayed.

Not the oracle: a standalone replay of *rules* on the development tasks' learning-curve
tables, on held-out seeds (1000+), to choose which structure the oracle's rewrite takes before
any of it is built into kt_predictive. One epoch = one step; full 52, early 8; a budget of N
full trainings is 52 N epochs for every rule; the regret of a rule is the table's final of the
configuration it returns (the best real final among its full trainings) minus the table's
optimum.

Rules:
- ``random``: full trainings of uniform draws;
- ``i-epoch``: uniform draws trained i epochs, the best fully (i-epoch's lesson);
- ``tpe-hb``: Optuna's TPE (ordered grid indices, fixed study name) + HyperbandPruner;
- ``ladder``: the candidate structure: configurations chosen by a random-forest acquisition over
  draws from a reward-weighted, neighbour-smoothed density (with a share of grid neighbours of
  the best configurations), trained on a ladder of rungs and promoted by a curve model's predicted
  final.

    python bench/method_study.py --rules ladder i-epoch --levels 10 30 100 --seeds 1000 1001 1002

writes bench/data/method_study.jsonl (one line per run, resumable), then bench/RESULTS.md's
``method-study`` section from every stored run (``--summary`` rewrites it from the store only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestRegressor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import environment, write_section
from search.lcbench import data_folder

STORE = Path(__file__).resolve().parent / "data" / "method_study.jsonl"
TASKS = (126025, 167104, 167161, 167185, 168330, 189862)
FULL = 52


@dataclass
class Table:
    curves: np.ndarray  # (configurations, epochs)
    final: np.ndarray
    sizes: tuple[int, ...]

    @classmethod
    def load(cls, task: int) -> Table:
        with np.load(data_folder() / f"{task}.npz") as data:
            curves = data["val_cross_entropy"].astype(np.float32)
            final = data["final"].astype(np.float64)
        grid = json.loads((data_folder() / "grid.json").read_text())
        sizes = tuple(len(grid["grid"][name]) for name in grid["order"])
        return cls(curves, final, sizes)

    def positions(self, rows: np.ndarray) -> np.ndarray:
        return np.stack(np.unravel_index(rows, self.sizes), axis=1)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        return np.ravel_multi_index(positions.T, self.sizes)


@dataclass
class Ledger:
    budget: int
    spent: int = 0
    trained: dict[int, int] = field(default_factory=dict)  # row -> epochs trained

    def can(self, epochs: int) -> bool:
        return self.spent + epochs <= self.budget

    def train(self, row: int, to: int) -> None:
        done = self.trained.get(row, 0)
        self.spent += max(0, to - done)
        self.trained[row] = max(done, to)


def pick(table: Table, ledger: Ledger) -> int:
    full = [r for r, e in ledger.trained.items() if e >= FULL]
    if not full:  # nothing trained fully: the best last value seen
        return min(ledger.trained, key=lambda r: table.curves[r, ledger.trained[r] - 1])
    return min(full, key=lambda r: table.curves[r, FULL - 4 :].mean())


def run_random(table: Table, n: int, rng: np.random.Generator) -> int:
    ledger = Ledger(FULL * n)
    while ledger.can(FULL):
        ledger.train(int(rng.integers(len(table.final))), FULL)
    return pick(table, ledger)


def run_i_epoch(table: Table, n: int, rng: np.random.Generator, i: int = 2) -> int:
    ledger = Ledger(FULL * n)
    # spend half the budget on i-epoch screens, the rest on the best of them, fully
    screens = int(FULL * n * 0.5 // i)
    rows = rng.choice(len(table.final), size=screens, replace=False)
    for row in rows:
        ledger.train(int(row), i)
    order = rows[np.argsort(table.curves[rows, i - 1])]
    for row in order:
        if not ledger.can(FULL - i):
            break
        ledger.train(int(row), FULL)
    return pick(table, ledger)


def run_tpe_hb(table: Table, n: int, rng: np.random.Generator) -> int:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ledger = Ledger(FULL * n)
    seed = int(rng.integers(2**31))
    study = optuna.create_study(
        study_name="method-study",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=FULL),
    )
    names = [f"h{k}" for k in range(len(table.sizes))]
    while ledger.spent < ledger.budget:
        trial = study.ask()
        pairs = zip(names, table.sizes, strict=True)
        pos = np.array([trial.suggest_int(nm, 0, size - 1) for nm, size in pairs])
        row = int(table.rows(pos[None])[0])
        pruned = False
        for epoch in range(1, FULL + 1):
            if not ledger.can(1) and ledger.trained.get(row, 0) < epoch:
                break
            ledger.train(row, epoch)
            trial.report(float(table.curves[row, epoch - 1]), epoch)
            if trial.should_prune():
                pruned = True
                break
        if pruned or ledger.trained[row] < FULL:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, float(table.curves[row, FULL - 4 :].mean()))
        if not ledger.can(1):
            break
    return pick(table, ledger)


@dataclass(frozen=True)
class Ladder:
    """The candidate structure's settings (fixed before the reported seeds are run)."""

    rungs: tuple[int, ...] = (2, 8, FULL)
    eta: int = 4
    candidates: int = 512
    neighbour_share: float = 0.3
    uniform_share: float = 0.3
    kappa: float = 0.0
    beta: float = 5.0
    trees: int = 32
    refit_every: int = 4
    first_screen_share: float = 0.0  # of the budget: configurations at the first rung, no promotion


def _curve_features(positions: np.ndarray, curves: np.ndarray, epoch: int) -> np.ndarray:
    last = curves[:, max(0, epoch - 2) : epoch].mean(axis=1)
    first = curves[:, 0]
    slope = last - curves[:, max(0, epoch - 3) : max(1, epoch - 1)].mean(axis=1)
    return np.column_stack([positions, last, first, slope, np.full(len(last), epoch)])


class CurveModel:
    """Predicted final from the hyperparameters and the curve up to a rung."""

    def __init__(self, table: Table, settings: Ladder, seed: int):
        self.table = table
        self.settings = settings
        self.seed = seed
        self.model: RandomForestRegressor | None = None
        self.fitted_on = 0
        self.cache: dict[tuple[int, int], float] = {}

    def refit(self, full_rows: list[int]) -> None:
        if len(full_rows) < 3 or len(full_rows) - self.fitted_on < self.settings.refit_every:
            return
        rows = np.array(full_rows)
        pos = self.table.positions(rows)
        X = np.vstack(
            [_curve_features(pos, self.table.curves[rows], r) for r in self.settings.rungs[:-1]]
        )
        y = np.tile(self.table.final[rows], len(self.settings.rungs) - 1)
        self.model = RandomForestRegressor(
            self.settings.trees, min_samples_leaf=2, random_state=self.seed
        ).fit(X, y)
        self.fitted_on = len(full_rows)
        self.cache.clear()

    def predict(self, rows: np.ndarray, epochs: np.ndarray) -> np.ndarray:
        keys = list(zip(rows.tolist(), epochs.tolist(), strict=True))
        missing = [i for i, key in enumerate(keys) if key not in self.cache]
        if missing:
            values = self._predict(rows[missing], epochs[missing])
            self.cache.update(zip([keys[i] for i in missing], values.tolist(), strict=True))
        return np.array([self.cache[key] for key in keys])

    def _predict(self, rows: np.ndarray, epochs: np.ndarray) -> np.ndarray:
        out = np.empty(len(rows))
        for epoch in np.unique(epochs):
            sel = epochs == epoch
            r = rows[sel]
            if epoch >= FULL:
                out[sel] = self.table.curves[r, FULL - 4 :].mean(axis=1)
            elif self.model is None:
                out[sel] = self.table.curves[r, epoch - 2 : epoch].mean(axis=1)
            else:
                out[sel] = self.model.predict(
                    _curve_features(self.table.positions(r), self.table.curves[r], int(epoch))
                )
        return out


def _density(table: Table, pos: np.ndarray, scores: np.ndarray, beta: float) -> list[np.ndarray]:
    """Per-hyperparameter value probabilities: exponential rank reward, shared with neighbours."""
    u = (np.argsort(np.argsort(scores)) / max(1, len(scores) - 1)) if len(scores) > 1 else [0.0]
    w = np.exp(-beta * np.asarray(u))
    probs = []
    for k, size in enumerate(table.sizes):
        mass = np.full(size, 0.1 * w.sum() / size)
        for p, wi in zip(pos[:, k], w, strict=True):
            mass[p] += 0.5 * wi
            if p > 0:
                mass[p - 1] += 0.25 * wi
            if p < size - 1:
                mass[p + 1] += 0.25 * wi
        probs.append(mass / mass.sum())
    return probs


def run_ladder(table: Table, n: int, rng: np.random.Generator, s: Ladder = Ladder()) -> int:
    ledger = Ledger(FULL * n)
    seed = int(rng.integers(2**31))
    model = CurveModel(table, s, seed)
    at_rung: list[set[int]] = [set() for _ in s.rungs]  # rows that reached rung k
    promoted: list[set[int]] = [set() for _ in s.rungs]
    acquisition: dict = {"forest": None, "size": 0}

    def scores_of(rows: list[int]) -> np.ndarray:
        rows_a = np.array(rows)
        return model.predict(rows_a, np.array([ledger.trained[r] for r in rows_a]))

    def new_row() -> int:
        seen = list(ledger.trained)
        if len(seen) < 8:
            return int(rng.integers(len(table.final)))
        pos = table.positions(np.array(seen))
        score = scores_of(seen)
        probs = _density(table, pos, score, s.beta)
        m = s.candidates
        n_uni = int(m * s.uniform_share)
        n_nb = int(m * s.neighbour_share)
        cand = [rng.integers(0, np.array(table.sizes), size=(n_uni, len(table.sizes)))]
        drawn = m - n_uni - n_nb
        cand.append(np.column_stack([rng.choice(len(p), size=drawn, p=p) for p in probs]))
        best = pos[np.argsort(score)[:5]]
        nb = best[rng.integers(len(best), size=n_nb)].copy()
        dims = rng.integers(len(table.sizes), size=n_nb)
        nb[np.arange(n_nb), dims] += rng.choice([-1, 1], size=n_nb)
        nb = np.clip(nb, 0, np.array(table.sizes) - 1)
        cand.append(nb)
        cand = np.vstack(cand)
        rows = table.rows(cand)
        fresh = ~np.isin(rows, seen)
        cand, rows = cand[fresh], rows[fresh]
        forest = acquisition["forest"]
        if forest is None or len(seen) - acquisition["size"] >= s.refit_every:
            forest = RandomForestRegressor(s.trees, min_samples_leaf=1, random_state=seed)
            acquisition.update(forest=forest.fit(pos, score), size=len(seen))
        per_tree = np.stack([t.predict(cand.astype(float)) for t in forest.estimators_])
        acq = per_tree.mean(0) - s.kappa * per_tree.std(0)
        return int(rows[np.argmin(acq)])

    while True:
        model.refit([r for r, e in ledger.trained.items() if e >= FULL])
        action = None
        screening = ledger.spent < s.first_screen_share * ledger.budget
        # promote from the highest rung first
        for k in [] if screening else range(len(s.rungs) - 2, -1, -1):
            rows = sorted(at_rung[k])
            if len(rows) < s.eta:
                continue
            score = scores_of(rows)
            top = [rows[i] for i in np.argsort(score)[: len(rows) // s.eta]]
            ready = [r for r in top if r not in promoted[k]]
            if ready:
                action = (ready[0], k + 1)
                break
        if action is None:
            action = (new_row(), 0)
        row, k = action
        need = s.rungs[k] - ledger.trained.get(row, 0)
        if not ledger.can(need):
            break
        ledger.train(row, s.rungs[k])
        at_rung[k].add(row)
        if k > 0:
            promoted[k - 1].add(row)
    return pick(table, ledger)


def summary() -> str:
    """Mean and median regret per (rule, tag, level) over the stored runs, as markdown; a rule
    run on fewer tasks than the others is compared on those tasks only (its own row says which)."""
    runs = [json.loads(line) for line in STORE.read_text().splitlines()]
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["rule"], r["tag"], r["level"]), []).append(r)
    lines = [
        "| rule | tag | N | runs | tasks | mean regret | median |",
        "|---|---|---|---|---|---|---|",
    ]
    for (rule, tag, level), rows in sorted(groups.items(), key=lambda kv: (kv[0][2], kv[0][:2])):
        regrets = [r["regret"] for r in rows]
        tasks = sorted({r["task"] for r in rows})
        named = "all six" if len(tasks) == len(TASKS) else ", ".join(map(str, tasks))
        lines.append(
            f"| {rule} | {tag or '-'} | {level} | {len(rows)} | {named} | {np.mean(regrets):.4f} "
            f"| {np.median(regrets):.4f} |"
        )
    return "\n".join(lines)


RULES = {"random": run_random, "i-epoch": run_i_epoch, "tpe-hb": run_tpe_hb, "ladder": run_ladder}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", nargs="+", default=list(RULES))
    parser.add_argument("--levels", nargs="+", type=int, default=[10, 30, 100])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1000, 1001, 1002])
    parser.add_argument("--tasks", nargs="+", type=int, default=list(TASKS))
    parser.add_argument("--tag", default="", help="label of a variant (stored with each run)")
    parser.add_argument("--set", nargs="*", default=[], help="Ladder field=value overrides")
    parser.add_argument(
        "--summary", action="store_true", help="rewrite the section from the stored runs only"
    )
    args = parser.parse_args(argv)
    if not args.summary:
        run_missing(args)
    path = write_section("method-study", section())
    print(f"wrote the method-study section of {path}")


def section() -> str:
    """The ``method-study`` section: what was compared, on which seeds, and the table."""
    return "\n".join(
        [
            "## Method design study on LCBench (issue 24; a replay of rules, not the oracle)",
            "",
            environment(),
            "- Reproduce: `python bench/method_study.py --rules random i-epoch tpe-hb ladder "
            "--levels 10 30 100 --seeds 1000 1001 1002` (variants: `--tag NAME --set "
            "field=value`); `--summary` rewrites this section from bench/data/method_study.jsonl.",
            "- Held-out seeds 1000+ on the six development tasks: for choosing the oracle's "
            "rewrite, never for reporting it (bench/lcbench.py reports on seeds 0-9).",
            "- Regret: the table's final of the returned configuration minus the table's optimum.",
            "",
            summary(),
        ]
    )


def run_missing(args: argparse.Namespace) -> None:
    """Runs the (rule, tag, task, level, seed) combinations the store does not hold yet."""
    overrides: dict = {}
    for item in args.set:
        key, value = item.split("=")
        overrides[key] = type(getattr(Ladder(), key))(float(value) if "." in value else value)
    ladder = Ladder(**overrides)
    done = set()
    if STORE.exists():
        for line in STORE.read_text().splitlines():
            r = json.loads(line)
            done.add((r["rule"], r["tag"], r["task"], r["level"], r["seed"]))
    STORE.parent.mkdir(parents=True, exist_ok=True)
    for task in args.tasks:
        table = Table.load(task)
        for rule in args.rules:
            for level in args.levels:
                for seed in args.seeds:
                    key = (rule, args.tag, task, level, seed)
                    if key in done:
                        continue
                    rng = np.random.default_rng([seed, task, level])
                    start = time.perf_counter()
                    if rule == "ladder":
                        row = run_ladder(table, level, rng, ladder)
                    else:
                        row = RULES[rule](table, level, rng)
                    regret = float(table.final[row] - table.final.min())
                    record = dict(zip(("rule", "tag", "task", "level", "seed"), key, strict=True))
                    record |= {"regret": regret, "seconds": time.perf_counter() - start}
                    record["settings"] = asdict(ladder) if rule == "ladder" else {}
                    with STORE.open("a") as f:
                        f.write(json.dumps(record) + "\n")
                    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
