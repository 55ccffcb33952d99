"""Writes reranking.ipynb (kept as a script so the notebook's structure is reviewable in diffs).

    .venv/bin/python tools/build_reranking_notebook.py
"""
from pathlib import Path

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("# Re-ranking: what changes in the lists users get, measured over all users\n\n"
       "A recommender's top-N candidate list per user is re-ordered by a **re-ranker**, and the top K is judged "
       "on accuracy (HR@K, NDCG@K against the held-out interactions, full-ranking protocol) and on what it does "
       "to the list: catalogue coverage, intra-list diversity, average popularity, long-tail share, calibration "
       "to the user's history (KL) and exposure by user gender x category. Every figure is over **all** "
       "evaluation users, with 95% bootstrap intervals; the differences to the base list are paired (same users).\n\n"
       "Re-rankers (`helpers/rerank.py`): history **affinity**, **popularity** blend in both directions, **MMR** "
       "diversity, **calibration** (Steck 2018), exposure **fairness** across user groups, and a **two-stage** "
       "pipeline (a cheap retriever's top N re-scored by the neural model). Logic lives in `helpers/rerank.py`, "
       "`helpers/rerank_experiment.py` and `helpers/rerank_plots.py`; this notebook only calls them. Figures "
       "go to `OUTPUT_DIR/figures/`, numbers to `OUTPUT_DIR/metrics.json` under `reranking`."),
    code("from pathlib import Path\n\n"
         "import pandas as pd\n"
         "from IPython.display import Markdown, display\n\n"
         "from helpers import rerank, rerank_plots\n"
         "from helpers import rerank_experiment as rx\n"
         "from helpers.plots import save_figure\n"
         "from helpers.reports import record_metrics\n\n"
         "%matplotlib inline\n"
         'pd.set_option("display.max_colwidth", 60)'),
    code('DATASET = "ml-100k"  # ml-100k (offline default) | electronics (downloaded on first use) | csv:PATH with item_category\n'
         'SPLIT = "random"  # random | leave_one_out | temporal; used only when DATA_DIR has no train.csv/evaluation.csv\n'
         'BASE_MODEL = "collabnn"  # collabnn | collabnn_mlp | mf | neumf | ease | itemknn | popular; MODEL_DIR/<name>.pth, else trained here\n'
         'RETRIEVER = "ease"  # ease | itemknn | popular | mf: the cheap first stage of the two-stage comparison\n'
         "N_CANDIDATES = 100  # candidates per user (the base model's top N) that the re-rankers re-order\n"
         "K = 10  # length of the list that is judged (HR@K, NDCG@K, diversity, ...)\n"
         'RERANKERS = [["affinity", 0.5], ["popularity", 0.5], ["popularity", -0.5], ["mmr", 0.5], ["calibration", 0.5], ["fairness", 1.0]]  # [method, weight]: affinity|mmr|calibration|fairness in [0, 1], popularity in [-1, 1] (negative: long tail)\n'
         'SWEEPS = {"affinity": [0, 0.25, 0.5, 0.75, 1], "popularity": [-1, -0.5, -0.25, 0, 0.25, 0.5, 1], "mmr": [0, 0.25, 0.5, 0.75, 1], "calibration": [0, 0.25, 0.5, 0.75, 1], "fairness": [0, 0.5, 1]}  # weights per re-ranker for the trade-off plots; {} for none\n'
         'MMR_SIMILARITY = "category"  # category (cosine of genre vectors) | embedding (the base model\'s item embeddings; neural models only)\n'
         'FAIRNESS_ATTRIBUTE = "auto"  # auto (electronics: model_attr, the gender in the product image; else item_category) | item_category | model_attr\n'
         "N_BOOT = 1000  # bootstrap resamples for the 95% intervals; smoke tests: 100\n"
         "EPOCHS = None  # epochs if BASE_MODEL must be trained here; None: the model's default; smoke tests: 1\n"
         "SEED = 0  # seed of the split, the user sample, training and the bootstrap\n"
         "SAMPLE = 0  # interactions to keep (whole users, drawn at random) when the split is made here (DATA_DIR without train.csv); 0: all. Smoke tests: 3000\n"
         'DATA_DIR = "data"  # train.csv / evaluation.csv written by the pipeline (made here if absent)\n'
         'MODEL_DIR = "model"  # where training.ipynb saved <name>.pth\n'
         'OUTPUT_DIR = "reports"  # where figures/ and metrics.json go; tests use a temporary folder',
         metadata={"tags": ["parameters"]}),
    md("## Data, models and context\n\nThe split is the pipeline's (`DATA_DIR/train.csv`, `evaluation.csv`). The "
       "base model is loaded from `MODEL_DIR` and checked against this train split (a model fitted on another "
       "split would have seen evaluation interactions); when the file is missing it is trained here. The "
       "context holds what the re-rankers use besides scores: item categories, popularity, each user's "
       "history category distribution p(c | u), user gender, the base model's item embeddings."),
    code("variants = rx.check_rerankers(RERANKERS, SWEEPS)  # [(method, weight)], validated\n"
         "train, evaluation, source = rx.load_split(DATA_DIR, DATASET, SPLIT, SEED, SAMPLE)\n"
         "items, users = rx.side_tables(DATASET, train, evaluation)\n"
         "model, model_source = rx.load_or_train(BASE_MODEL, train, MODEL_DIR, SEED, EPOCHS)\n"
         "retriever, retriever_source = rx.load_or_train(RETRIEVER, train, MODEL_DIR, SEED, EPOCHS)\n"
         'fair_col = ("model_attr" if DATASET == "electronics" else "item_category") if FAIRNESS_ATTRIBUTE == "auto" else FAIRNESS_ATTRIBUTE\n'
         "context = rerank.build_context(train, items=items, users=users, fair_col=fair_col,\n"
         "                               embeddings=rx.item_embeddings(model))\n"
         "eval_users = evaluation[\"user_id\"].astype(str).unique()\n"
         'print(f"split: {source}\\n  {len(train):,} train / {len(evaluation):,} evaluation rows, {len(eval_users):,} evaluation users")\n'
         'print(f"base model {BASE_MODEL}: {model_source}\\nretriever {RETRIEVER}: {retriever_source}")\n'
         'print(f"catalogue {context.n_items:,} items, {len(context.categories)} categories; fairness attribute: {fair_col}")'),
    md("## Candidates\n\nThe base model ranks every item not seen in training for **every evaluation user**; its top "
       "`N_CANDIDATES` are what each re-ranker may re-order. Nothing outside these lists can enter the top K, so "
       "HR@N of the candidates bounds what any re-ranker can reach."),
    code("candidates = model.recommend(eval_users, k=N_CANDIDATES)\n"
         "ceiling = rerank.list_measures(candidates, context, evaluation, k=N_CANDIDATES)\n"
         'print(f"{len(candidates):,} candidate rows for {candidates[\'user_id\'].nunique():,} users; "\n'
         '      f"HR@{N_CANDIDATES} of the candidates (the ceiling of any re-ranker\'s hit rate): {ceiling[\'hr\'].mean():.3f}")\n'
         "candidates.head()"),
    md("## Every re-ranker over all users\n\nOne row per re-ranker at the weight in `RERANKERS`: mean over users "
       "with its 95% bootstrap interval, and the paired change in NDCG@K against the base list (the same users "
       "resampled together: an interval that excludes 0 is a real change). Coverage is the share of the "
       "catalogue appearing in any top-K list; amplification is the stereotype measure of the fairness section "
       "(0 = no group-specific skew); seconds is the time to re-rank all users. Read along each row what the "
       "re-ranker buys (its own target column) and what it costs (NDCG@K vs base)."),
    code("table, lists, per_user = rx.run_variants(candidates, context, evaluation, variants, k=K, n_boot=N_BOOT,\n"
         "                                         seed=SEED, mmr_similarity=MMR_SIMILARITY, base_label=BASE_MODEL)\n"
         "figures = {}\n"
         "display(rx.results_table(table))\n"
         'figures["rerank_ndcg_intervals"] = rerank_plots.accuracy_interval_figure(table, "ndcg")'),
    md("## Two-stage: a cheap retriever, then the neural model\n\nThe retriever proposes its top `N_CANDIDATES`, "
       "the base model re-scores only those (`score_pairs`), against the base model scoring every item for "
       "every user. Seconds are wall-clock for all evaluation users on this machine (retrieval + re-scoring for "
       "the two-stage row); the NDCG change is paired against the base model alone."),
    code("two_stage, two_stage_lists = rx.two_stage_comparison(retriever, model, eval_users, context, evaluation,\n"
         "                                                     N_CANDIDATES, K, N_BOOT, SEED, names=(RETRIEVER, BASE_MODEL))\n"
         "rx.results_table(two_stage)"),
    md("## Trade-offs: sweeping each weight\n\nEach line starts at the base list (black star, weight 0) and "
       "follows one re-ranker as its weight grows; labels give the weight. A line that moves right while "
       "staying level buys diversity (or long-tail exposure) for free; a steep drop is accuracy paid for it. "
       "Small weights often cost nothing, the last steps are expensive."),
    code("sweeps = rx.sweep(candidates, context, evaluation, SWEEPS, K, MMR_SIMILARITY) if SWEEPS else None\n"
         "if sweeps is not None:\n"
         '    figures["tradeoff_diversity"] = rerank_plots.tradeoff_figure(sweeps, x="ild", y="ndcg")\n'
         '    figures["tradeoff_long_tail"] = rerank_plots.tradeoff_figure(sweeps, x="long_tail_share", y="ndcg")\n'
         "    display(sweeps.round(3))"),
    md("## Exposure by gender and category\n\nFor each user group (gender) and category: the share of the group's "
       "top-K lists in that category (exposure), its share of the group's histories, and the **group-specific "
       "gap** (E_g - E) - (H_g - H): how much more of the category the group gets than its histories justify, "
       "beyond the skew every user gets. A positive gap for women on Romance would be the stereotype of Wan et al. "
       "(WSDM 2020) in miniature; a negative one on the genres the group favours means the model pulls the group "
       "towards the majority's taste. The table lists the largest gaps; the figure shows them for the smaller "
       "group before and after the fairness re-ranker, whose bars should be close to 0."),
    code("fair_labels = [rx.variant_label(m, w) for m, w in variants if m == \"fairness\"]\n"
         "compare = {BASE_MODEL: candidates, **{label: lists[label] for label in fair_labels}}\n"
         "exposure = rx.exposure_comparison(compare, context, K)\n"
         "display(exposure.sort_values(f\"gap: {BASE_MODEL}\", key=abs, ascending=False).head(12).round(4))\n"
         "exposures = {label: rerank.exposure_by_group(frame, context, K) for label, frame in compare.items()}\n"
         "if len(exposures[BASE_MODEL]):\n"
         "    group = exposures[BASE_MODEL].groupby(\"group\")[\"n_users\"].first().idxmin()\n"
         '    figures["exposure_gap"] = rerank_plots.exposure_gap_figure(exposures, group)'),
    md("## A worked example\n\nOne user, picked as the one whose list calibration changes most (among users with "
       "a hit in the base list): the history's category mix first, then the top K before and after each "
       "re-ranker. `*` marks a held-out (evaluation) item: a hit."),
    code("example_label = next((rx.variant_label(m, w) for m, w in variants if m == \"calibration\"), table[\"variant\"].iloc[-1])\n"
         "example_user = rx.pick_example_user(per_user, BASE_MODEL, example_label)\n"
         'print(f"user {example_user}: history category mix (calibration target)")\n'
         "display(rx.history_profile(context, example_user).to_frame(\"share of history\"))\n"
         "rx.example_lists(lists, context, evaluation, example_user, K)"),
    md("## Conclusion\n\nThe bullets below are generated from the results table above (`rx.conclusion_text`), so "
       "they always match the numbers of this run: for each re-ranker, what it moves (its target measure), "
       "what it costs in NDCG@K with the paired 95% interval, how the two-stage pipeline compares with the "
       "neural model alone in accuracy and time, and which categories each gender is over- or under-shown."),
    code("conclusion = rx.conclusion_text(table, BASE_MODEL, K, two_stage, exposure)\n"
         "display(Markdown(conclusion))"),
    md("## Record\n\nFigures as PNG, numbers under `reranking` in `metrics.json` (tests read them by name)."),
    code("saved = {name: str(save_figure(fig, name, OUTPUT_DIR)) for name, fig in figures.items()}\n"
         'record_metrics("reranking", rx.metrics_record(\n'
         "    table, two_stage, sweeps, dataset=DATASET, base_model=BASE_MODEL, retriever=RETRIEVER,\n"
         "    model_source=model_source, split_source=source, n_candidates=N_CANDIDATES, k=K, seed=SEED, sample=SAMPLE,\n"
         "    n_users=len(eval_users), candidate_hr_ceiling=float(ceiling[\"hr\"].mean()), example_user=example_user,\n"
         "    fairness_attribute=fair_col, conclusion=conclusion, figures=saved,\n"
         '), path=Path(OUTPUT_DIR) / "metrics.json")\n'
         "saved"),
]
for i, cell in enumerate(cells):
    cell["id"] = f"reranking-{i:02d}"  # stable ids: rebuilding leaves the file unchanged
nb = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
    "language_info": {"name": "python"},
})
nbf.write(nb, str(Path(__file__).resolve().parent.parent / "reranking.ipynb"))
