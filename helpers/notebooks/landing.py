"""The landing page of a run: `reports/index.html` (for a browser) and `reports/README.md` (for GitHub), both from
`metrics.json` and one markdown source: the headline tables, links to every rendered notebook and figure, and the
commit, date and machine of the run. The pipeline writes them after the notebooks (`write_landing_pages`)."""
from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import mistune
import pandas as pd
import torch

from helpers.files import write_text
from helpers.models import DEFAULT_MODEL, model_class

RANKING_COLUMNS = [("sampled", "hr@10", "sampled HR@10"), ("sampled", "ndcg@10", "sampled NDCG@10"),
                   ("full", "hr@10", "full HR@10"), ("full", "ndcg@10", "full NDCG@10"),
                   ("full", "coverage@10", "full coverage@10")]
NOTEBOOK_TITLES = {"EDA": "Exploratory analysis", "training": "Training", "evaluation": "Evaluation",
                   "reranking": "Re-ranking", "explore": "Explorer and model interpretation"}


FIGURE_PREFIXES = {"training": ("training_",), "evaluation": ("evaluation_",), "explore": ("embedding_map_",),
                   "reranking": ("rerank_", "tradeoff_", "exposure_")}


def figures_by_notebook(metrics: dict, output_dir: Path) -> dict:
    """{notebook: [figure names]} of OUTPUT_DIR/figures/*.png: by the notebook's recorded `figures` where it
    records them, else by name prefix (FIGURE_PREFIXES); the rest under "EDA" when it records them, else "other"."""
    names = sorted(p.stem for p in (Path(output_dir) / "figures").glob("*.png"))
    recorded = {}
    for section, key in (("eda", "EDA"), ("evaluation", "evaluation"), ("reranking", "reranking")):
        figures = metrics.get(section, {}).get("figures") or []
        recorded.update({Path(str(f)).stem: key for f in figures})
    out: dict = {}
    for name in names:
        notebook = recorded.get(name) or next((nb for nb, prefixes in FIGURE_PREFIXES.items()
                                               if name.startswith(prefixes)), "other")
        out.setdefault(notebook, []).append(name)
    return {nb: out[nb] for nb in [*NOTEBOOK_TITLES, "other"] if nb in out}


def run_record(root: Path) -> dict:
    """Commit (and whether the tree was clean), UTC date, machine, threads and load of the run that just ended."""
    def git(*args) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    status = git("status", "--porcelain", "--untracked-files=no")
    commit = git("rev-parse", "--short", "HEAD")
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return {"commit": commit or "unknown (not a git checkout)", "clean": bool(commit) and not status,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, {cuda}",
            "threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__,
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None}


def _task(name: str) -> str:
    cls, task = model_class(name)
    return task or cls.task


def _cell(entry: dict, best: bool) -> str:
    value, low, high = entry.get("value"), entry.get("ci_low"), entry.get("ci_high")
    text = f"**{value:.3f}**" if best else f"{value:.3f}"
    return text + (f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else "")


def headline_tables(metrics: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ranking table of the implicit-task models, rating table of the rating-task ones) from the evaluation's
    results: value [95% interval] per cell, the best of each column in bold, rows in the evaluation's order."""
    evaluation = metrics.get("evaluation", {})
    results = evaluation.get("results", {})
    names = evaluation.get("models") or sorted(results.get("sampled", {}) | results.get("full", {}))
    implicit = [n for n in names if _task(n) == "implicit"]
    rows = {}
    for protocol, metric, label in RANKING_COLUMNS:
        values = {n: results.get(protocol, {}).get(n, {}).get(metric) for n in implicit}
        known = {n: v["value"] for n, v in values.items() if v and v.get("value") is not None}
        top = max(known.values()) if known else None
        rows[label] = {n: _cell(v, v["value"] == top) if n in known else "" for n, v in values.items()}
    labels = [f"{n} (default)" if n == DEFAULT_MODEL else n for n in implicit]
    ranking = pd.DataFrame(rows).set_axis(pd.Index(labels, name="model"))
    ranking = ranking.loc[[n for n in ranking.index if (ranking.loc[n] != "").any()]]
    rating = results.get("rating", {})
    rmse = {n: rating[n]["rmse"] for n in names if n in rating and "rmse" in rating[n]}
    low = min(v["value"] for v in rmse.values()) if rmse else None
    rating_table = pd.DataFrame({"RMSE": {n: _cell(v, v["value"] == low) for n, v in rmse.items()}})
    rating_table.index.name = "model"
    return ranking, rating_table


def paired_table(metrics: dict, metric: str = "ndcg") -> pd.DataFrame:
    """The default model minus each other implicit model on `metric`@10, paired over the same users, per protocol:
    "difference [95% interval]" cells (positive: the default is ahead), from the evaluation's paired comparisons."""
    rows = {}
    for entry in metrics.get("evaluation", {}).get("paired", []):
        if entry.get("metric") != metric or DEFAULT_MODEL not in (entry.get("model_a"), entry.get("model_b")):
            continue
        sign = 1.0 if entry["model_a"] == DEFAULT_MODEL else -1.0
        other = entry["model_b"] if sign > 0 else entry["model_a"]
        if _task(other) != "implicit":
            continue
        low, high = sorted((sign * entry["ci_low"], sign * entry["ci_high"]))
        rows.setdefault(other, {})[f"{entry['protocol']} {metric.upper()}@10"] = \
            f"{sign * entry['diff']:+.3f} [{low:+.3f}, {high:+.3f}]"
    table = pd.DataFrame.from_dict(rows, orient="index").fillna("")
    table.index.name = f"{DEFAULT_MODEL} minus"
    return table[sorted(table.columns, key=lambda c: (not c.startswith("sampled"), c))] if len(table) else table


def _markdown_table(table: pd.DataFrame) -> str:
    header = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([str(i), *map(str, row)]) + " |" for i, row in zip(table.index, table.to_numpy())]
    return "\n".join(lines)


def landing_markdown(metrics: dict, record: dict, output_dir: Path, html_links: bool) -> str:
    """The landing page's markdown: links go to the rendered `.html` notebooks (`html_links`, the browser page)
    or to the executed `.ipynb` (GitHub renders those)."""
    output_dir = Path(output_dir)
    split, pipeline = metrics.get("split", {}), metrics.get("pipeline", {})
    config = metrics.get("evaluation", {}).get("config", {})
    ranking, rating = headline_tables(metrics)
    dataset = pipeline.get("dataset") or split.get("dataset", "?")
    lines = [f"# Results — {dataset}", "",
             f"Run of `make run` at commit `{record['commit']}`{'' if record['clean'] else ' (with uncommitted changes)'}"
             f", {record['date']}, on {record['machine']} ({record['threads']} torch threads; Python {record['python']}, "
             f"torch {record['torch']}).", ""]
    if split:
        lines += [f"Data: {dataset}, {split.get('split', '?')} split (seed {split.get('seed', '?')}): "
                  f"{split.get('train_rows', 0):,} training and {split.get('evaluation_rows', 0):,} evaluation "
                  f"interactions, {split.get('evaluation_users', 0):,} evaluation users of which "
                  f"{split.get('evaluation_users_cold', 0):,} unknown to training.", ""]
    if len(ranking):
        lines += ["## Ranking (implicit-task models)", "",
                  f"Sampled: each held-out interaction ranked against {config.get('n_negatives', 99)} unseen items; "
                  "full: every item the user did not have in training is ranked. The two protocols are not "
                  f"comparable with each other. 95% bootstrap intervals over users ({config.get('n_boot', '?')} "
                  "resamples) in brackets; the highest value of each column in bold (where intervals overlap, the "
                  "difference is within the noise of this split).", "", _markdown_table(ranking), ""]
    paired = paired_table(metrics)
    if len(paired):
        lines += ["### The default against each model, paired over the same users", "",
                  "Difference in NDCG@10 with its 95% bootstrap interval; an interval that excludes 0 is a real "
                  "difference on this split.", "", _markdown_table(paired), ""]
    if len(rating):
        lines += ["## Rating prediction", "", "RMSE on the held-out ratings (lower is better).", "",
                  _markdown_table(rating), ""]
    conclusion = metrics.get("reranking", {}).get("conclusion")
    if conclusion:
        lines += ["## Re-ranking", "", "Over all evaluation users (generated in the re-ranking notebook):", "",
                  conclusion.strip(), ""]
    suffix = ".html" if html_links else ".ipynb"
    lines += ["## Notebooks", ""]
    for entry in pipeline.get("notebooks", []):
        stem = Path(entry["notebook"]).stem
        seconds = f", {entry['seconds']:.0f} s" if "seconds" in entry else ""
        lines.append(f"- [{NOTEBOOK_TITLES.get(stem, stem)}]({stem}{suffix}) ({entry['status']}{seconds})")
    lines += ["- [metrics.json](metrics.json): every notebook's numbers by name", ""]
    if (output_dir / "figures" / "evaluation_full.png").exists():
        lines += ["![full-ranking metrics](figures/evaluation_full.png)", ""]
    lines += ["## Figures", ""]
    for notebook, figures in figures_by_notebook(metrics, output_dir).items():
        links = ", ".join(f"[{name.replace('_', ' ')}](figures/{name}.png)" for name in figures)
        lines.append(f"- {NOTEBOOK_TITLES.get(notebook, notebook)}: {links}")
    return "\n".join(lines) + "\n"


RESULTS_START, RESULTS_END = "<!-- results:start (written by the pipeline) -->", "<!-- results:end -->"


def readme_with_results(readme: str, metrics: dict, record: dict, link: str = "reports/index.html") -> str:
    """`readme` with the block between RESULTS_START and RESULTS_END replaced by the run's ranking table (and a
    line naming the run); unchanged when the markers are absent."""
    if RESULTS_START not in readme or RESULTS_END not in readme:
        return readme
    ranking, _ = headline_tables(metrics)
    split = metrics.get("split", {})
    seconds = sum(n.get("seconds", 0) for n in metrics.get("pipeline", {}).get("notebooks", []))
    took = f", the notebooks {seconds / 60:.1f} min on {record['machine']}" if seconds else ""
    block = (f"{RESULTS_START}\n{split.get('dataset', '?')}, {split.get('split', '?')} split (seed {split.get('seed', '?')}), "
             f"commit `{record['commit']}`, {record['date']}{took}; 95% bootstrap intervals; sampled and full ranking are "
             f"not comparable with each other. All tables, notebooks and figures: [{link}]({link}).\n\n"
             f"{_markdown_table(ranking)}\n{RESULTS_END}")
    head, rest = readme.split(RESULTS_START, 1)
    return head + block + rest.split(RESULTS_END, 1)[1]


HTML_STYLE = """<style>
body {font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222}
table {border-collapse: collapse; font-size: 14px} th, td {padding: 4px 10px; border-bottom: 1px solid #ddd;
text-align: left} code {background: #f3f3f3; padding: 1px 4px} img {max-width: 100%}
</style>"""


def write_landing_pages(output_dir, root: Path, metrics: dict, record: dict | None = None) -> tuple[Path, Path]:
    """Write OUTPUT_DIR/index.html and OUTPUT_DIR/README.md (atomically); returns their paths."""
    output_dir = Path(output_dir)
    record = record or run_record(root)
    body = mistune.create_markdown(plugins=["table"])(landing_markdown(metrics, record, output_dir, html_links=True))
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Results</title>{HTML_STYLE}</head>"
            f"<body>{body}</body></html>")
    return (write_text(output_dir / "index.html", page),
            write_text(output_dir / "README.md", landing_markdown(metrics, record, output_dir, html_links=False)))
