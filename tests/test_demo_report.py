"""The README's demo block is written from a run's summary.json, and the predictor table of the
AAE report drops the per-split mean R² when the splits test too few networks."""

import json

import pytest

from aae.report import (
    README_END,
    README_START,
    demo_markdown,
    main,
    predictor_table,
    update_readme,
)

SCORES = {
    "svr": {"mae": 0.01, "mae_std": 0.002, "r2": -3.5, "r2_pooled": 0.61},
    "hyb": {"mae": 0.008, "mae_std": 0.001, "r2": -1.25, "r2_pooled": 0.73},
}


def _network(name, loss, recall, error, lr=2e-3):
    config = {
        "NK1": 32,
        "NK2": 64,
        "NK3": 512,
        "NK4": 1024,
        "KE": 7,
        "KD": 3,
        "OPT": "Adam",
        "MB": 32,
        "LR": lr,
    }
    return {
        "name": name,
        "kind": "top-K",
        "config": config,
        "final_mean_loss": loss,
        "recall": recall,
        "metric": "ADD",
        "median_rotation_error": error,
        "seconds": 61.0,
    }


SUMMARY = {
    "object": "ape",
    "object_description": "ape (procedural stand-in 'bracket', synthetic BOP test set)",
    "profile": "quick",
    "written": "2026-11-29T02:00+00:00",
    "cpu_cores": 2,
    "elapsed_seconds": 845.0,
    "training_seconds": 760.0,
    "total_steps": 7000,
    "search": {
        "initial": 6,
        "explored": 24,
        "finished": 2,
        "full_steps": 800,
        "early_steps": 120,
        "reward": "exp",
        "beta": 5.0,
        "thresholds": 0.6,
    },
    "test_instances": 50,
    "threshold": 0.1,
    "networks": [
        _network("searched best", 0.0712, 0.34, 17.5),
        _network("trial 3", 0.09, 0.2, 25.0),
        _network("Sundermeyer", 0.1582, 0.0, 131.4, lr=2e-4),
        _network("BOP", 0.1579, 0.36, 120.0, lr=2e-4),
    ],
    "fixed": {"LR": {"value": 0.002, "iteration": 3}, "OPT": {"value": "Adam", "iteration": 11}},
}


def test_predictor_table_shows_mean_r2_only_with_enough_test_networks():
    few = predictor_table(SCORES, test_size=2)
    assert few[0] == "| model | MAE | STD of MAE | pooled R² |"
    assert "| HYB | 0.00800 | 0.00100 | 0.730 |" in few
    assert not any("-1.250" in line for line in few) and any("not shown" in line for line in few)
    many = predictor_table(SCORES, test_size=20)
    assert many[0] == "| model | MAE | STD of MAE | mean R² | pooled R² |"
    assert "| HYB | 0.00800 | 0.00100 | -1.250 | 0.730 |" in many
    assert len(many) == 2 + len(SCORES)


def test_demo_block_is_written_from_the_summary_alone():
    text = demo_markdown(SUMMARY, {"probabilities.png": "docs/demo_probabilities.png"})
    rows = [line for line in text.splitlines() if line.startswith("| searched best")]
    assert rows == [
        "| searched best | NK 32/64/512/1024, KE 7, KD 3, Adam, MB 32, LR 0.002 | 0.0712 | 34.0% | "
        "17.5° | 0:01:01 |"
    ]
    assert (
        "| Sundermeyer | NK 32/64/512/1024, KE 7, KD 3, Adam, MB 32, LR 0.0002 | 0.1582 | 0.0% | "
        "131.4° |" in text
    )
    assert "trial 3" not in text  # only the three networks the paper compares
    assert (
        "took 0:12:40 in all" in text
        and "report took 0:14:05" in text
        and "7000 search steps" in text
    )
    assert "50 test instances" in text and "2026-11-29" in text
    # Plain words where the best is not better: BOP's recall is higher here.
    assert "higher ADD recall and smaller median rotation error than Sundermeyer" in text
    assert "lower ADD recall and smaller median rotation error than BOP" in text
    assert "LR = 0.002 at iteration 3, OPT = Adam at iteration 11" in text
    assert "6 configurations trained fully, 24 explored to 120 steps, 2 continued" in text
    assert (
        "![probabilities of every value of every hyperparameter](docs/demo_probabilities.png)"
        in text
    )
    assert "reconstructions" not in text  # no figure given, none linked


def test_update_readme_replaces_only_its_block_and_copies_the_figures(tmp_path):
    report = tmp_path / "runs" / "ape-quick" / "report"
    report.mkdir(parents=True)
    (report / "summary.json").write_text(json.dumps(SUMMARY))
    (report / "probabilities.png").write_bytes(b"png one")
    (report / "reconstructions_best.png").write_bytes(b"png two")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{README_START}\nold table\n{README_END}\nafter\n")
    update_readme(report, readme)
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n" + README_START + "\n") and text.endswith(
        README_END + "\nafter\n"
    )
    assert "old table" not in text and "| BOP |" in text
    assert (tmp_path / "docs" / "demo_probabilities.png").read_bytes() == b"png one"
    assert (tmp_path / "docs" / "demo_reconstructions.png").read_bytes() == b"png two"
    update_readme(report, readme)
    assert readme.read_text() == text  # idempotent


def test_update_readme_errors(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    with pytest.raises(FileNotFoundError, match="make demo"):
        update_readme(tmp_path, readme)
    (tmp_path / "summary.json").write_text(json.dumps(SUMMARY))
    assert main([str(tmp_path), "--readme", str(readme)]) == 2
    assert README_START in capsys.readouterr().err
    assert readme.read_text() == "no markers\n"
