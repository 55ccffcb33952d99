# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Re-ranking: what changes in the lists users get, measured over all users
#
# A recommender's top-N candidate list per user is re-ordered by a **re-ranker**, and the top K is judged on accuracy (HR@K, NDCG@K against the held-out interactions, full-ranking protocol) and on what it does to the list: catalogue coverage, intra-list diversity, average popularity, long-tail share, calibration to the user's history (KL) and exposure by user gender x category. The figures are over every evaluation user, or, where most evaluation users have no training history (a global split of data where most users rate once), over those who have one, since a re-ranker re-orders what a history suggests (`USERS`; the first cell says which). Every figure comes with 95% bootstrap intervals, and the differences to the base list are paired (the same users).
#
# Re-rankers (`helpers/rerank/`): history **affinity**, **popularity** blend in both directions, **MMR** diversity, **calibration** (Steck 2018), exposure **fairness** across user groups, and a **two-stage** pipeline (a cheap retriever's top N re-scored by the neural model). Logic lives in `helpers/rerank/`, `helpers/notebooks/reranking.py` and `helpers/plots/rerank.py`; this notebook only calls them. Figures go to `OUTPUT_DIR/figures/`, numbers to `OUTPUT_DIR/metrics.json` under `reranking`.

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from helpers import rerank
from helpers.notebooks import record_metrics
from helpers.notebooks import reranking as notebook
from helpers.notebooks.inputs import notebook_split, side_tables
from helpers.notebooks.models import item_embeddings, load_or_train
from helpers.plots import rerank as rerank_plots
from helpers.plots import save_figure
from helpers.rerank import experiments

# %matplotlib inline
pd.set_option("display.max_colwidth", 60)

# %% tags=["parameters"]
DATASET = "ml-100k"  # ml-100k (offline default) | electronics (downloaded on first use) | csv:PATH
# (a csv needs item_category)
SPLIT = "auto"  # auto | random | global | leave_one_out | temporal
# (used only when DATA_DIR has no train.csv / evaluation.csv)
BASE_MODEL = "collabnn"  # collabnn | collabnn_mlp | mf | neumf | ease | itemknn | popular
# (read from MODEL_DIR/<name>_implicit.pth, else trained here)
RETRIEVER = "ease"  # ease | itemknn | popular | mf: the cheap first stage of the two-stage comparison
N_CANDIDATES = 100  # candidates per user (the base model's top N) that the re-rankers re-order
K = 10  # length of the list that is judged (HR@K, NDCG@K, diversity, ...)
RERANKERS = [["affinity", 0.5], ["popularity", 0.5], ["popularity", -0.5],
             ["mmr", 0.5], ["calibration", 0.5], ["fairness", 1.0]]  # [method, weight] pairs
# affinity | mmr | calibration | fairness take a weight in [0, 1], popularity in [-1, 1] (negative: long tail)
SWEEPS = {"affinity": [0, 0.25, 0.5, 0.75, 1], "popularity": [-1, -0.5, -0.25, 0, 0.25, 0.5, 1],
          "mmr": [0, 0.25, 0.5, 0.75, 1], "calibration": [0, 0.25, 0.5, 0.75, 1],
          "fairness": [0, 0.5, 1]}  # weights per re-ranker for the trade-off plots; {} for none
MMR_SIMILARITY = "category"  # category (cosine of genre vectors) | embedding
# (embedding: the base model's item embeddings; neural models only)
USERS = "auto"  # auto | all | warm (the users with a training history)
# auto: warm when most evaluation users have no training history (a global split of single-interaction data)
FAIRNESS_ATTRIBUTE = "auto"  # auto | item_category | model_attr
# auto: model_attr (the gender in the product image) on electronics, else item_category
N_BOOT = 1000  # bootstrap resamples for the 95% intervals; smoke tests: 100
EPOCHS = None  # epochs if BASE_MODEL must be trained here; None: the model's default; smoke tests: 1
SEED = 0  # seed of the split, the user sample, training and the bootstrap
SAMPLE = 0  # interactions to keep (whole users, drawn at random); 0: all. Smoke tests: 3000
# (used only when the split is made here, DATA_DIR without train.csv)
DATA_DIR = "data"  # train.csv / evaluation.csv written by the pipeline (made here if absent)
MODEL_DIR = "scratch/model"  # where training.ipynb saved <name>_<task>.pth; make run passes model
# (missing models are trained here)
OUTPUT_DIR = "scratch"  # figures/ and metrics.json go here; make run passes reports (the committed results)

# %% [markdown]
# ## Data, models and context
#
# The split is the pipeline's (`DATA_DIR/train.csv`, `evaluation.csv`). The base model is loaded from `MODEL_DIR` and checked against this train split (a model fitted on another split would have seen evaluation interactions); when the file is missing it is trained here. The context holds what the re-rankers use besides scores: item categories, popularity, each user's history category distribution p(c | u), user gender, the base model's item embeddings.

# %%
variants = notebook.check_rerankers(RERANKERS, SWEEPS)  # [(method, weight)], validated
train, evaluation, source = notebook_split(DATA_DIR, DATASET, SPLIT, SEED, SAMPLE)
items, users = side_tables(DATASET, train, evaluation)
models, sources = load_or_train([BASE_MODEL, RETRIEVER], train, evaluation, MODEL_DIR, seed=SEED, epochs=EPOCHS, log=None)
model, retriever = models[BASE_MODEL], models[RETRIEVER]
source_of = dict(zip(sources["model"], sources["source"]))
model_source, retriever_source = source_of[BASE_MODEL], source_of[RETRIEVER]
fair_col = ("model_attr" if DATASET == "electronics" else "item_category") if FAIRNESS_ATTRIBUTE == "auto" else FAIRNESS_ATTRIBUTE
context = rerank.build_context(train, items=items, users=users, fair_col=fair_col,
                               embeddings=item_embeddings(model))
eval_users, users_sentence = notebook.rerank_users(train, evaluation, USERS)
print(f"split: {source}\n  {len(train):,} train / {len(evaluation):,} evaluation rows; measured over {users_sentence}")
print(f"base model {BASE_MODEL}: {model_source}\nretriever {RETRIEVER}: {retriever_source}")
print(f"catalogue {context.n_items:,} items, {len(context.categories)} categories; fairness attribute: {fair_col}")

# %% [markdown]
# ## Candidates
#
# The base model ranks every item not seen in training for **every evaluation user**; its top `N_CANDIDATES` are what each re-ranker may re-order. Nothing outside these lists can enter the top K, so HR@N of the candidates bounds what any re-ranker can reach.

# %%
candidates = model.recommend(eval_users, k=N_CANDIDATES)
ceiling = rerank.list_measures(candidates, context, evaluation, k=N_CANDIDATES)
print(f"{len(candidates):,} candidate rows for {candidates['user_id'].nunique():,} users; "
      f"HR@{N_CANDIDATES} of the candidates (the ceiling of any re-ranker's hit rate): {ceiling['hr'].mean():.3f}")
candidates.head()

# %% [markdown]
# ## Every re-ranker over all users
#
# One row per re-ranker at the weight in `RERANKERS`: mean over users with its 95% bootstrap interval, and the paired change in NDCG@K against the base list (the same users resampled together: an interval that excludes 0 is a real change). Coverage is the share of the catalogue appearing in any top-K list; amplification is the stereotype measure of the fairness section (0 = no group-specific skew); seconds is the time to re-rank all users. Read along each row what the re-ranker buys (its own target column) and what it costs (NDCG@K vs base).

# %%
table, lists, per_user = experiments.run_variants(candidates, context, evaluation, variants, k=K, n_boot=N_BOOT,
                                                  seed=SEED, mmr_similarity=MMR_SIMILARITY, base_label=BASE_MODEL)
figures = {}
display(notebook.results_table(table, k=K))
figures["rerank_ndcg_intervals"] = rerank_plots.accuracy_interval_figure(
    table, "ndcg", k=K, title=f"{DATASET} — NDCG@{K} per re-ranker, over {len(eval_users):,} evaluation users")

# %% [markdown]
# ## Two-stage: a cheap retriever, then the neural model
#
# The retriever proposes its top `N_CANDIDATES`, the base model re-scores only those (`score_pairs`), against the base model scoring every item for every user. Seconds are wall-clock for all evaluation users on this machine (retrieval + re-scoring for the two-stage row); the NDCG change is paired against the base model alone.

# %%
two_stage, two_stage_lists = experiments.two_stage_comparison(retriever, model, eval_users, context, evaluation,
                                                              N_CANDIDATES, K, N_BOOT, SEED, names=(RETRIEVER, BASE_MODEL))
notebook.results_table(two_stage, k=K)

# %% [markdown]
# ## Trade-offs: sweeping each weight
#
# Each line starts at the base list (black star, weight 0) and follows one re-ranker as its weight grows; labels give the weight (a label that would cover another is left out). A re-ranker whose line never leaves the star says so in the legend, and where many points crowd the star a second panel zooms on them. A line that moves right while staying level buys diversity (or long-tail exposure) for free; a steep drop is accuracy paid for it. Small weights often cost nothing, the last steps are expensive.

# %%
sweeps = (experiments.sweep(candidates, context, evaluation, SWEEPS, K, MMR_SIMILARITY, lists=lists, per_user=per_user,
                           base_label=BASE_MODEL) if SWEEPS else None)
if sweeps is not None:
    figures["tradeoff_diversity"] = rerank_plots.tradeoff_figure(
        sweeps, x="ild", y="ndcg", k=K, title=f"{DATASET} — NDCG@{K} against intra-list diversity, sweeping each weight")
    figures["tradeoff_long_tail"] = rerank_plots.tradeoff_figure(
        sweeps, x="long_tail_share", y="ndcg", k=K,
        title=f"{DATASET} — NDCG@{K} against the long-tail share of the list, sweeping each weight")
    display(sweeps.round(3))

# %% [markdown]
# ## Exposure by gender and category
#
# For each user group (gender) and category: the share of the group's top-K lists in that category (exposure), its share of the group's histories, and the **group-specific gap** (E_g - E) - (H_g - H): how much more of the category the group gets than its histories justify, beyond the skew every user gets. A positive gap for women on Romance would be the stereotype of Wan et al. (WSDM 2020) in miniature; a negative one on the genres the group favours means the model pulls the group towards the majority's taste. The table lists the largest gaps; the figure shows them, in percentage points of the list, for the smaller group before and after the fairness re-ranker, whose bars should be close to 0. Its axis spans at least +-5 points so that gaps of a fraction of a point look as small as they are; the title states the largest.

# %%
fair_labels = [experiments.variant_label(m, w) for m, w in variants if m == "fairness"]
compare = {BASE_MODEL: candidates, **{label: lists[label] for label in fair_labels}}
exposure = experiments.exposure_comparison(compare, context, K)
display(exposure.sort_values(f"gap: {BASE_MODEL}", key=abs, ascending=False).head(12).round(4))
exposures = {label: rerank.exposure_by_group(frame, context, K) for label, frame in compare.items()}
if len(exposures[BASE_MODEL]):
    group = exposures[BASE_MODEL].groupby("group")["n_users"].first().idxmin()
    figures["exposure_gap"] = rerank_plots.exposure_gap_figure(exposures, group, k=K)

# %% [markdown]
# ## A worked example
#
# One user, picked as the one whose list calibration changes most (among users with a hit in the base list): the history's category mix first, then the top K before and after each re-ranker. `*` marks a held-out (evaluation) item: a hit.

# %%
example_label = next((experiments.variant_label(m, w) for m, w in variants if m == "calibration"), table["variant"].iloc[-1])
example_user = notebook.pick_example_user(per_user, BASE_MODEL, example_label)
print(f"user {example_user}: history category mix (calibration target)")
display(notebook.history_profile(context, example_user).to_frame("share of history"))
notebook.example_lists(lists, context, evaluation, example_user, K)

# %% [markdown]
# ## Conclusion
#
# The bullets below are generated from the results table above (`helpers.notebooks.reranking.conclusion_text`), so they always match the numbers of this run: for each re-ranker, what it moves (its target measure), what it costs in NDCG@K with the paired 95% interval, which re-rankers change NDCG@K significantly, how the two-stage pipeline compares with the neural model alone in accuracy and time, and which categories each gender is over- or under-shown (in percentage points of the list).

# %%
conclusion = notebook.conclusion_text(table, BASE_MODEL, K, two_stage, exposure)
display(Markdown(conclusion))

# %% [markdown]
# ## Record
#
# Figures as PNG, numbers under `reranking` in `metrics.json` (tests read them by name).

# %%
saved = {name: str(save_figure(fig, name, OUTPUT_DIR)) for name, fig in figures.items()}
record_metrics("reranking", notebook.metrics_record(
    table, two_stage, sweeps, dataset=DATASET, base_model=BASE_MODEL, retriever=RETRIEVER,
    model_source=model_source, split_source=source, n_candidates=N_CANDIDATES, k=K, seed=SEED, sample=SAMPLE,
    n_users=len(eval_users), candidate_hr_ceiling=float(ceiling["hr"].mean()), example_user=example_user,
    fairness_attribute=fair_col, conclusion=conclusion, figures=saved,
), path=Path(OUTPUT_DIR) / "metrics.json")
saved
