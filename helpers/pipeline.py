"""The whole job: split the data, then run EDA -> training -> evaluation -> reranking -> explore with papermill,
then write the landing page (OUTPUT_DIR/index.html, README.md).

    python -m helpers.pipeline --dataset ml-100k        # what `make run` does

Executed notebooks and their HTML renderings go to OUTPUT_DIR (default reports/), the split to
DATA_DIR/train.csv and DATA_DIR/evaluation.csv. A notebook marked as a placeholder (notebook metadata
"placeholder": true) is skipped with a visible message. Only the parameters a notebook declares in its
`parameters` cell are passed to it; a parameter no notebook declares is rejected.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from pathlib import Path

import nbformat
import papermill as pm
from nbconvert import HTMLExporter

from helpers.data import SPLITS, load, make_split, sample_users, split_summary, write_split
from helpers.files import ROOT, write_text
from helpers.notebooks import read_metrics, record_metrics
from helpers.notebooks.landing import readme_with_results, run_record, write_landing_pages

NOTEBOOKS = ["EDA.ipynb", "training.ipynb", "evaluation.ipynb", "reranking.ipynb", "explore.ipynb"]


# Parameters a dataset gets unless the command line sets them (`-p NAME VALUE` wins). Electronics at full size
# (1.29M ratings, 1.16M users) on 2 cores: the models that run in the time budget (the closed-form baselines, the
# bias baseline, the default and its side-feature variant, which scores cold users from their gender and items
# from category, brand and product-image segment; the other neural models cost minutes each there and can be
# asked for by name),
# the explorer's lists and interpretation from those saved models (nothing trained there),
# 3 epochs at most for the neural default (its validation NDCG@10 at 3 and 6 epochs on the 0.2-scale stand-in:
# 0.1425 and 0.1444, for half the time; benchmarks/logs/electronics_scale.md), and three weights per re-ranker in
# the trade-off sweeps (five for popularity, both directions) instead of five to seven: each point re-ranks the
# 34,574 warm users' 100 candidates (about 6 s on 2 cores).
ELECTRONICS_PARAMETERS = {
    "OTHER_MODELS": ["popular", "popular_segment", "itemknn", "ease", "bias", "collabnn_features"],
    "MODELS": ["popular", "popular_segment", "itemknn", "ease", "collabnn", "collabnn_features"],
    "PROTOCOLS": ["sampled", "full"],
    "EXPLORE_MODELS": ["collabnn", "collabnn_features", "ease", "popular_segment"],
    "INTERPRET": ["collabnn", "collabnn_features", "bias"],
    "EPOCHS": 3,
    "SWEEPS": {"affinity": [0, 0.5, 1], "popularity": [-1, -0.5, 0, 0.5, 1], "mmr": [0, 0.5, 1],
               "calibration": [0, 0.5, 1], "fairness": [0, 0.5, 1]},
}


def dataset_parameters(dataset: str) -> dict:
    """The notebook parameters `dataset` gets by default (`ELECTRONICS_PARAMETERS` for electronics[:PATH])."""
    return dict(ELECTRONICS_PARAMETERS) if dataset == "electronics" or dataset.startswith("electronics:") else {}


# glibc's malloc raises its mmap threshold after each large free (up to 32 MB), so the evaluation's many arrays of
# a few MB then come from the heap and are not given back to the system when freed. A fixed threshold of 128 KiB
# keeps them mmapped: evaluate_models on Electronics at full size (six models, 250,790 users), measured in one
# process: peak 5.35 GB and 4.54 GB held after it by default, 4.65 GB and 3.77 GB with it. Set only where unset.
KERNEL_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": "131072"}


class PipelineError(RuntimeError):
    """A notebook failed; the message names the notebook, the cell and the error."""


def is_placeholder(notebook: Path) -> bool:
    """True when the notebook says (in its metadata) that a later issue still has to fill it."""
    return bool(json.loads(Path(notebook).read_text()).get("metadata", {}).get("placeholder", False))


def declared_parameters(notebook: Path) -> dict:
    """Names and default values of the notebook's `parameters` cell (empty if it has none)."""
    nb = json.loads(Path(notebook).read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            src = "".join(cell["source"])
            out = {}
            for node in ast.parse(src).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    out[node.targets[0].id] = ast.literal_eval(node.value)
            return out
    return {}


def write_pipeline_split(dataset: str, split: str, seed: int, sample: int, data_dir: Path, output_dir: Path) -> dict:
    """Split the dataset and write DATA_DIR/train.csv and evaluation.csv; record the split in metrics.json."""
    df = sample_users(load(dataset), sample, seed=seed)
    train, evaluation = make_split(df, split=split, seed=seed)
    write_split(train, evaluation, data_dir)
    summary = {"dataset": dataset, "split": evaluation.attrs["split"], "split_asked": split, "seed": seed,
               "sample": sample, **split_summary(train, evaluation)}
    record_metrics("split", summary, path=Path(output_dir) / "metrics.json")
    return summary


def _settle(running: Path, final: Path) -> Path:
    """Move papermill's finished output `running` to `final` (atomically), its recorded output_path made `final`."""
    nb = nbformat.read(running, as_version=4)
    nb.metadata.setdefault("papermill", {})["output_path"] = str(final)
    write_text(final, nbformat.writes(nb))
    running.unlink()
    return final


def render_html(notebook: Path) -> Path:
    """HTML rendering of an executed notebook, next to it (written atomically)."""
    body, _ = HTMLExporter().from_filename(str(notebook))
    return write_text(notebook.with_suffix(".html"), body)


def _relative(path: Path) -> str:
    """Path relative to the repository root when inside it (notebooks run there), so rendered outputs
    and metrics.json show `reports/...` rather than a machine's absolute path."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def run_pipeline(dataset: str = "ml-100k", split: str = "auto", seed: int = 0, sample: int = 0,
                 output_dir="reports", data_dir="data", model_dir="model", notebooks=None,
                 parameters: dict | None = None, log=print) -> list[dict]:
    """Run the notebooks in order; returns one dict per notebook (name, status, seconds, outputs).

    A run that fails before any output (e.g. an unreadable dataset) leaves no folder behind that it created; a
    notebook that fails leaves what ran so far, including the executed notebook that shows the error."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    output_dir, data_dir, model_dir = Path(output_dir).resolve(), Path(data_dir).resolve(), Path(model_dir).resolve()
    paths = [ROOT / nb for nb in (notebooks or NOTEBOOKS)]
    for p in paths:
        if not p.exists():
            raise ValueError(f"notebook {p.name} not found in {ROOT}; choose from {NOTEBOOKS}")
    common = {"DATASET": dataset, "SPLIT": split, "SEED": seed, "SAMPLE": sample,
              "OUTPUT_DIR": _relative(output_dir), "DATA_DIR": _relative(data_dir), "MODEL_DIR": _relative(model_dir),
              **dataset_parameters(dataset), **(parameters or {})}
    declared = {p.name: declared_parameters(p) for p in paths}
    unknown = set(parameters or {}) - set().union(*declared.values())
    if unknown:
        raise ValueError(f"parameter(s) {sorted(unknown)} are declared by none of the notebooks; "
                         f"known: {sorted(set().union(*declared.values()))}")
    for name, value in KERNEL_ENVIRONMENT.items():  # the kernels papermill starts inherit it
        os.environ.setdefault(name, value)
    created = [d for d in (output_dir, data_dir, model_dir) if not d.exists()]
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        summary = write_pipeline_split(dataset, split, seed, sample, data_dir, output_dir)
    except BaseException:
        for folder in created:  # only the empty folders this run made (never anything with content)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    common["SPLIT"] = summary["split"]  # "auto" resolved on the data: every notebook reads the split it was made by
    log(f"split ({summary['split']}): {summary['train_rows']:,} train / {summary['evaluation_rows']:,} evaluation rows "
        f"({summary['evaluation_share']:.1%}; {summary['evaluation_users_cold']:,} of {summary['evaluation_users']:,} "
        f"evaluation users and {summary['evaluation_items_cold']:,} items unknown to training) "
        f"-> {data_dir}/train.csv, evaluation.csv")
    record = run_record(ROOT)  # the commit the notebooks run at, taken before anything is written
    results = []
    for path in paths:
        if is_placeholder(path):
            log(f"SKIPPED {path.name}: still a placeholder (see its first cell); nothing was run or faked")
            results.append({"notebook": path.name, "status": "skipped (placeholder)"})
            continue
        params = {k: v for k, v in common.items() if k in declared[path.name]}
        out = output_dir / path.name
        log(f"running {path.name} with {params}")
        start = time.time()
        # papermill writes its output after every cell: run into a hidden file beside `out`, renamed over it when
        # the notebook has run to the end, so a failed or killed run leaves the earlier `out` untouched
        running = out.with_name(f".{out.stem}.running.ipynb")
        try:
            pm.execute_notebook(str(path), str(running), parameters=params, cwd=str(ROOT), progress_bar=False,
                                kernel_name="python3")
        except pm.PapermillExecutionError as exc:
            failed = _settle(running, out.with_name(f"{out.stem}.failed.ipynb"))
            raise PipelineError(f"{path.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}): "
                                f"{exc.ename}: {exc.evalue}; the executed notebook is {failed}") from None
        _settle(running, out)
        html = render_html(out)
        seconds = round(time.time() - start, 1)
        log(f"done {path.name} in {seconds}s -> {out.name}, {html.name}")
        results.append({"notebook": path.name, "status": "ok", "seconds": seconds, "output": str(out),
                        "html": str(html)})
    earlier = read_metrics(output_dir / "metrics.json").get("pipeline", {})
    same_run = all(earlier.get(k) == v for k, v in (("dataset", dataset), ("seed", seed), ("sample", sample)))
    ran = {r["notebook"] for r in results}
    kept = [r for r in earlier.get("notebooks", []) if same_run and r["notebook"] not in ran]  # an --only run keeps
    listed = sorted(kept + results, key=lambda r: NOTEBOOKS.index(r["notebook"]) if r["notebook"] in NOTEBOOKS else 99)
    record_metrics("pipeline", {"dataset": dataset, "split": common["SPLIT"], "seed": seed, "sample": sample,
                                "notebooks": listed, "run": record}, path=output_dir / "metrics.json")
    metrics = read_metrics(output_dir / "metrics.json")
    index, readme = write_landing_pages(output_dir, ROOT, metrics, record)
    log(f"landing page -> {index}, {readme}")
    if output_dir == (ROOT / "reports").resolve():  # the committed results: the README's table follows them
        text = (ROOT / "README.md").read_text()
        updated = readme_with_results(text, metrics, record)
        if updated != text:
            write_text(ROOT / "README.md", updated)
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m helpers.pipeline", description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="ml-100k", help="ml-100k (default, offline) | electronics | csv:PATH")
    ap.add_argument("--split", default="auto", choices=SPLITS,
                    help="auto (default: global when most users have one interaction, else random) | random (80:20 "
                         "per user) | global (80:20 of all interactions) | leave_one_out | temporal")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample", type=int, default=0, help="interactions to keep (whole users); 0 = all")
    ap.add_argument("--output-dir", default=str(ROOT / "reports"))
    ap.add_argument("--data-dir", default=str(ROOT / "data"))
    ap.add_argument("--model-dir", default=str(ROOT / "model"))
    ap.add_argument("--only", nargs="+", choices=NOTEBOOKS, help="run only these notebooks (in pipeline order)")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="extra notebook parameter, e.g. -p EPOCHS 3 (value parsed as a Python literal)")
    args = ap.parse_args(argv)
    params = {}
    for name, value in args.parameter:
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    notebooks = [nb for nb in NOTEBOOKS if nb in args.only] if args.only else None
    try:
        run_pipeline(args.dataset, args.split, args.seed, args.sample, args.output_dir, args.data_dir,
                     args.model_dir, notebooks, params)
    except (PipelineError, ValueError) as exc:
        print(f"pipeline stopped: {exc}", file=sys.stderr)
        return 1
    return 0



if __name__ == "__main__":
    sys.exit(main())
