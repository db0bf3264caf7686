"""Cost-aware active learning against random acquisition, on the same teacher budget (issue 11).

The pool is the training families of a ``screening train energy`` folder (the parents the shipped model
was trained on); the error is measured on its held-out test families' disordered parents (gap of the
ensemble to the teacher's sample mean). The teacher's labels and CPU seconds come from the folder's
``labels/``: they are what the teacher computed for each parent, served to the loop when it asks for that
parent, so both strategies pay exactly what the teacher cost. Both start from the same random initial
parents, acquire the same batch per round, and run until the same budget of teacher CPU-seconds is spent;
``spread_per_cost`` also reports where its stopping rule would have stopped.

    nice .venv/bin/python benchmarks/bench_active_learning.py --model-dir runs/native-train --write
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import code_revision, publish  # noqa: E402

from pipelines.train_energy import read_training_folder  # noqa: E402
from screening.models.active_learning import ActiveLearningOptions, active_learning  # noqa: E402
from screening.models.native_energy import (  # noqa: E402
    NativeTrainingOptions,
)

TITLE = "## Active learning: spread per teacher cost against random, same budget (issue 11)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("runs/native-train"))
    parser.add_argument("--groups", type=Path, default=Path("data/obelix-train/conductivity_train.csv"))
    parser.add_argument("--budget-share", type=float, default=0.5, help="of the pool's total teacher CPU-s")
    parser.add_argument("--initial", type=int, default=20)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--later-epochs", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = parser.parse_args()

    folder = read_training_folder(args.model_dir, args.groups)
    model, examples, label_rows = folder.ensemble, folder.examples, folder.label_rows
    meta, train, test = model.metadata, folder.train, folder.test
    validation = [e for e in examples if e.is_parent_mean and e.parent_id in test]
    pool = {pid: s for pid, s in folder.parents.items() if pid in train}
    by_parent: dict[str, list[dict]] = {}
    for row in label_rows:
        by_parent.setdefault(row["parent_id"], []).append(row)
    total_s = sum(row["teacher_cpu_s"] for pid in pool for row in by_parent[pid])
    budget_s = args.budget_share * total_s

    def label(ids: list[str]) -> tuple[list[dict], float]:
        served = [row for pid in ids for row in by_parent[pid]]
        return served, float(sum(row["teacher_cpu_s"] for row in served))

    training = NativeTrainingOptions(
        n_members=args.members, epochs=args.epochs, seed=meta["training"]["seed"]
    )
    curves = {}
    graph_cache: dict = {}  # both loops see the same structures: build each slot graph once
    for acquisition in ("spread_per_cost", "random"):
        options = ActiveLearningOptions(
            acquisition=acquisition,
            initial=args.initial,
            batch=args.batch,
            max_rounds=1000,
            budget_cpu_s=budget_s,
            min_gain_meV_per_cpu_s=0.0,  # run to the budget; the rule's stop is read off the curve
            later_epochs=args.later_epochs,
            n_samples=meta["labels"]["n_samples"],
            seed=meta["training"]["seed"],
            training=training,
        )
        _, history, reason = active_learning(
            pool,
            label,
            options,
            teacher=model.teacher,
            validation=validation,
            progress=print,
            graph_cache=graph_cache,
        )
        curves[acquisition] = [asdict(r) for r in history]
    rule = ActiveLearningOptions().min_gain_meV_per_cpu_s
    fired = next((r for r in curves["spread_per_cost"] if r["expected_gain_meV_per_cpu_s"] < rule), None)
    out_json = Path(__file__).parent / "results" / "active-learning-curves.json"
    out_json.write_text(json.dumps(curves, indent=1) + "\n")

    lines = [
        "| round | spread/cost: teacher CPU-s | labelled | test MAE meV/atom | random: teacher CPU-s | labelled | test MAE meV/atom |",
        "|---|---|---|---|---|---|---|",
    ]
    for i in range(max(len(c) for c in curves.values())):
        cells = [str(i)]
        for acquisition in ("spread_per_cost", "random"):
            curve = curves[acquisition]
            if i < len(curve):
                r = curve[i]
                cells += [f"{r['teacher_cpu_s']:.0f}", str(r["n_labelled"]), f"{r['validation_mae_meV']:.1f}"]
            else:
                cells += ["", "", ""]
        lines.append("| " + " | ".join(cells) + " |")

    def mae_at(acquisition: str, seconds: float) -> float:
        """Test MAE of the last round whose spending is within ``seconds``."""
        within = [r for r in curves[acquisition] if r["teacher_cpu_s"] <= seconds + 1e-9]
        return within[-1]["validation_mae_meV"] if within else float("nan")

    common = min(curves[a][-1]["teacher_cpu_s"] for a in curves)
    section = "\n".join(
        [
            TITLE,
            "",
            f"`nice .venv/bin/python benchmarks/bench_active_learning.py {' '.join(sys.argv[1:])}` "
            f"(code {code_revision()}). Pool: the {len(pool)} training-family parents of the shipped model "
            f"(teacher cost of labelling all: {total_s:.0f} CPU-s); error: mean gap to the teacher on the "
            f"{len(validation)} disordered test-family parents. {args.initial} random parents first, then "
            f"{args.batch} per round; {args.members} members, {args.epochs} epochs in the first round and "
            f"{args.later_epochs} more per later round from the previous weights; budget "
            f"{args.budget_share:.0%} of the pool's teacher CPU-s ({budget_s:.0f} CPU-s). Teacher CPU-s are "
            "those recorded with each parent's labels. Curves: `benchmarks/results/active-learning-curves.json`.",
            "",
            *lines,
            "",
            f"At {common:.0f} teacher CPU-s (what both spent): test MAE {mae_at('spread_per_cost', common):.1f} "
            f"meV/atom with spread per cost, {mae_at('random', common):.1f} with random acquisition; at "
            f"{common / 2:.0f} CPU-s, {mae_at('spread_per_cost', common / 2):.1f} and "
            f"{mae_at('random', common / 2):.1f}. The "
            f"stopping rule (expected gain < {rule:g} meV/atom per teacher CPU-s) "
            + (
                f"would have stopped spread/cost after round {fired['round']} ({fired['n_labelled']} labelled, "
                f"{fired['teacher_cpu_s']:.0f} CPU-s, test MAE {fired['validation_mae_meV']:.1f} meV/atom)."
                if fired
                else "had not fired when the budget was spent (expected gain of the last round "
                f"{curves['spread_per_cost'][-1]['expected_gain_meV_per_cpu_s']:.2g} meV/atom per CPU-s)."
            ),
        ]
    )
    publish(TITLE, section + "\n", args.write)


if __name__ == "__main__":
    main()
