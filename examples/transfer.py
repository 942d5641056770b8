"""Transfer of searched configurations to other objects (the paper's section 3.5, Tables 6-7).

Trains NAS-2, MinLoss-2 and MaxADD-2 (the paper's configurations found for ape), this
project's own search result (read from a finished run's summary.json), Sundermeyer and BOP on
each object with the same budget, and writes the ADD recall and final mean loss per object
and configuration to transfer.md (the phone also with bootstrap ratio 16, as in the paper).

    python examples/transfer.py --search-run runs/ape-quick        # quick profile, stand-ins
    python examples/transfer.py --profile paper --bop-root /data/bop/lm --search-run runs/ape-paper
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aae.net.configs import BOP, MAXADD2, MINLOSS2, NAS2, SUNDERMEYER
from aae.pose.codebook import CodebookViews
from aae.profiles import get_profile
from aae.search import (
    RunPaths,
    load_object_mesh,
    load_test_set,
    load_training_data,
    parse_overrides,
    resolve_target,
    train_and_evaluate,
)

PAPER_OBJECTS = ("ape", "cam", "duck", "phone", "lamp")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    parser.add_argument("--objects", nargs="+", default=list(PAPER_OBJECTS))
    parser.add_argument(
        "--search-run", help="a finished aae.search run folder whose best config joins the tables"
    )
    parser.add_argument("--bop-root")
    parser.add_argument("--out", default=None, help="default runs/transfer-<profile>")
    parser.add_argument("--workers", type=int)
    args = parser.parse_args()
    profile = get_profile(args.profile).with_overrides(parse_overrides(args.set))
    configs = {
        "Sundermeyer": SUNDERMEYER,
        "BOP": BOP,
        "NAS-2": NAS2,
        "MinLoss-2": MINLOSS2,
        "MaxADD-2": MAXADD2,
    }
    if args.search_run:
        summary_path = Path(args.search_run) / "report" / "summary.json"
        if not summary_path.is_file():
            print(
                f"error: {summary_path} does not exist; finish the search run first",
                file=sys.stderr,
            )
            return 2
        best = next(
            n
            for n in json.loads(summary_path.read_text())["networks"]
            if n["name"] == "searched best"
        )
        configs["searched best"] = best["config"]
    out = Path(args.out or f"runs/transfer-{profile.name}")
    print(profile.describe())

    rows = []  # (object label, {config name: NetworkResult})
    for name in args.objects:
        variants = [("", profile)]
        if name == "phone":
            variants.append(
                (" (bootstrap 16)", profile.with_overrides({"network.bootstrap_ratio": 16}))
            )
        for suffix, variant in variants:
            target = resolve_target(name, args.bop_root)
            paths = RunPaths(
                out / (name + suffix.replace(" ", "_").replace("(", "").replace(")", ""))
            )
            mesh = load_object_mesh(target)
            test_set = load_test_set(target, variant, paths)
            data = load_training_data(mesh, variant, paths, None)
            views = CodebookViews.cached(
                paths.cache,
                mesh,
                variant.training_set,
                variant.codebook.n_views,
                variant.codebook.n_inplane,
            )
            results = {
                label: train_and_evaluate(
                    label,
                    config,
                    variant,
                    data,
                    views,
                    test_set,
                    target.obj_id,
                    paths,
                    args.workers,
                )
                for label, config in configs.items()
            }
            rows.append((name + suffix, results))
            print(
                name + suffix,
                {label: round(100 * r.evaluation.recall, 1) for label, r in results.items()},
            )

    labels = list(configs)
    metric = rows[0][1][labels[0]].evaluation.metric
    lines = [f"# Transfer of configurations to other objects ({profile.name} profile)", ""]
    for title, cell in (
        (
            f"{metric} recall (%) (the paper's Table 6)",
            lambda r: f"{100 * r.evaluation.recall:.1f}",
        ),
        ("Final mean loss (the paper's Table 7)", lambda r: f"{r.final_mean_loss:.5f}"),
    ):
        lines += [
            f"## {title}",
            "",
            "| object | " + " | ".join(labels) + " |",
            "|---" * (len(labels) + 1) + "|",
        ]
        lines += [
            f"| {obj} | " + " | ".join(cell(results[label]) for label in labels) + " |"
            for obj, results in rows
        ]
        lines.append("")
    lines += [
        "Objects without --bop-root are procedural stand-ins with synthetic test sets (see "
        "aae.search.STAND_INS).",
        "",
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "transfer.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
