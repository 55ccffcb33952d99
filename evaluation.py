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
# # Evaluation: every model, every protocol, with confidence intervals
#
# How good are the recommenders, measured in a way a reviewer can trust? Every model (baselines and neural models alike) goes through the same three protocols of `helpers/evaluation/`:
#
# - **sampled**: each held-out interaction ranked against `N_NEGATIVES` items the user never touched, drawn once with `SEED` and shared by every model (the NCF protocol; numbers are *not* comparable with full ranking);
# - **full ranking**: each user's held-out items ranked among *all* items not seen in training, plus what the lists look like (catalogue coverage, novelty, popularity, intra-list diversity);
# - **rating**: RMSE / MAE of the models trained to predict ratings.
#
# **Which part each figure comes from.** Everything here is measured on the evaluation part (the test set), once. No choice was made on it: the neural models chose their epoch by early stopping on a validation part carved out of the training part (`helpers.data.validation_split`; see `training.ipynb`), and the baselines keep their defaults. Ties count against the held-out item, evaluation data unknown to the model counts as a miss (figures are over all evaluation users), and every figure carries a 95% bootstrap interval over users (scipy's BCa bootstrap, never clamped, so a skewed interval may leave its point estimate out). Comparisons between models are paired (same users, same candidates). All logic lives in `helpers/`; figures go to `OUTPUT_DIR/figures/` and the numbers to `OUTPUT_DIR/metrics.json` under `evaluation`.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import display

from helpers.data.market_bias import amplification_sentence, has_market_segments
from helpers.evaluation import (
    cold_start_table,
    evaluate_models,
    metrics_by_group,
    metrics_over_k,
    paired_comparisons,
    user_activity_buckets,
)
from helpers.notebooks import evaluation as notebook
from helpers.notebooks import record_metrics
from helpers.notebooks.inputs import item_categories, notebook_split, user_genders
from helpers.notebooks.models import load_or_train
from helpers.plots import evaluation as evaluation_plots
from helpers.plots import market_bias as market_bias_plots
from helpers.plots import save_figure

# %matplotlib inline

# %% tags=["parameters"]
DATASET = "ml-100k"  # ml-100k | electronics | csv:PATH; used only when DATA_DIR has no train.csv/evaluation.csv
SPLIT = "auto"  # auto (global if most users have one interaction, else random) | random (80:20 per user) | global (80:20 of all interactions) | leave_one_out | temporal; only when the split is made here
MODELS = ["popular", "popular_segment", "itemknn", "ease", "bias", "mf", "collabnn", "collabnn_features", "collabnn_factor", "collabnn_mlp", "mf_rating", "collabnn_rating"]  # any of popular | popular_segment | itemknn | ease | bias | mf | collabnn | collabnn_features | collabnn_factor | collabnn_mlp | neumf; neural ones optionally NAME_rating / NAME_implicit (file MODEL_DIR/NAME_TASK.pth, e.g. collabnn_implicit.pth)
K = 10  # cut-off of the top-K metrics: 5 | 10 | 20 ...
PROTOCOLS = ["sampled", "full", "rating"]  # any of sampled | full | rating
N_NEGATIVES = 99  # sampled protocol: negatives per held-out item, 99 as in NCF; 1 to n_items - 1
SEED = 0  # seed of the split (when made here), the negatives, the bootstrap and neural training: any non-negative int
SAMPLE = 0  # interactions to keep (whole users, drawn at random); 0 keeps all. Smoke tests: 3000
DATA_DIR = "data"  # folder with train.csv and evaluation.csv (written by training.ipynb); made here if absent
MODEL_DIR = "scratch/model"  # folder with <name>_<task>.pth saved by training.ipynb; missing models are trained here; make run passes model
OUTPUT_DIR = "scratch"  # figures/ and metrics.json go here; make run passes reports (the committed results)

# %% [markdown]
# ## Parameters, data and models
#
# The parameters are checked first (a misspelt protocol or model fails here, naming the allowed values). The split is the one `training.ipynb` wrote to `DATA_DIR`, so the models are evaluated on interactions they never saw; without those files the split is made here. Each model is loaded from `MODEL_DIR` when `training.ipynb` saved it (a file trained on another split is refused, not silently used), otherwise trained here with its defaults. The table says which is which and how long it took.

# %%
params = notebook.check_parameters(DATASET=DATASET, SPLIT=SPLIT, MODELS=MODELS, K=K, PROTOCOLS=PROTOCOLS,
                                   N_NEGATIVES=N_NEGATIVES, SEED=SEED, SAMPLE=SAMPLE, DATA_DIR=DATA_DIR,
                                   MODEL_DIR=MODEL_DIR, OUTPUT_DIR=OUTPUT_DIR)
train, evaluation, source = notebook_split(DATA_DIR, DATASET, SPLIT, SEED, SAMPLE)
print(f"data: {source}")
print(f"train: {len(train):,} rows, {train['user_id'].nunique():,} users, {train['item_id'].nunique():,} items; "
      f"evaluation: {len(evaluation):,} rows, {evaluation['user_id'].nunique():,} users")
models, model_sources = load_or_train(params["MODELS"], train, evaluation, MODEL_DIR, seed=SEED)
model_sources

# %% [markdown]
# ## Results with 95% confidence intervals
#
# One row per model, one column per protocol and metric, each cell `value [low, high]`. Read the columns of one protocol together: sampled HR@K is much higher than full-ranking HR@K for the same model because 99 random negatives are far easier to beat than the whole catalogue. Most-popular is the floor every personalised model has to clear by a wide margin; EASE, a closed-form linear model, is the strong baseline. The default collabnn adds EASE's weights as a frozen item-item branch to its trained factor branch; collabnn_factor is that factor branch alone and collabnn_mlp the seeds' concat-MLP design. Implicit models have no rating column: their scores are not ratings.

# %%
result = evaluate_models(models, train, evaluation, protocols=params["PROTOCOLS"], k=K,
                                  n_negatives=N_NEGATIVES, seed=SEED,
                                  item_categories=item_categories(train, evaluation))
figures = {}
result.table()

# %% [markdown]
# ## One bar chart per metric
#
# Bars are models, whiskers the 95% interval over users. Where two whiskers overlap, look at the paired comparison below before calling a winner. In the full-ranking panels the beyond-accuracy metrics pull the other way: most-popular recommends the same few items to everyone (lowest coverage and novelty, highest average popularity), the personalised models spread over more of the catalogue.

# %%
for protocol in params["PROTOCOLS"]:
    if protocol in set(result.summary["protocol"]):
        figures[f"evaluation_{protocol}"] = evaluation_plots.plot_metric_bars(result.summary, protocol)
        save_figure(figures[f"evaluation_{protocol}"], f"evaluation_{protocol}", OUTPUT_DIR)
        plt.show()

# %% [markdown]
# ## Paired comparisons
#
# Each pair of models on exactly the same rows (same users, same sampled candidates): `diff` = A - B with a paired bootstrap interval and the p-value of a paired sign-flip permutation test over users (the same statistic, so an interval that excludes 0 goes with a small p-value). Such a difference survives resampling the users; small differences between strong models often do not.

# %%
plan = notebook.statistics_plan(models, evaluation)
print(notebook.statistics_sentence(plan))
paired = paired_comparisons(result, pairs=plan["pairs"], n_permutations=plan["n_permutations"])
paired.round(4)

# %% [markdown]
# ## HR@K and NDCG@K for K = 1 .. 20
#
# The ranking of the models should not depend on the cut-off: lines that cross mean the choice of K decides the winner. HR grows with K by construction; NDCG grows more slowly because late hits are discounted.

# %%
over_k = metrics_over_k(result, ks=range(1, 21), protocols=[p for p in params["PROTOCOLS"] if p != "rating"],
                        ci=plan["over_k_ci"])
if len(over_k):
    figures["evaluation_over_k"] = evaluation_plots.plot_metrics_over_k(over_k)
    save_figure(figures["evaluation_over_k"], "evaluation_over_k", OUTPUT_DIR)
    plt.show()

# %% [markdown]
# ## By user activity: cold, medium and heavy users
#
# Users are split at the terciles of their number of training interactions (where most users have one, the cuts move to the next count that occurs, and evaluation users unknown to training form a bucket "new" of their own). Heavy users have more held-out items, so their full-ranking HR@K (any hit among many relevant items) is usually the highest, while their sampled HR@K is often the lowest (their held-out items are less popular, harder to rank above random negatives). The gap between a personalised model and most-popular within a bucket shows where personalisation pays off; cold users are where a model can fall below the popularity floor.

# %%
activity = user_activity_buckets(train, evaluation=evaluation)
print(notebook.activity_sentence(activity, evaluation))
by_activity = metrics_by_group(result, activity, metrics=("hr", "ndcg"), group_name="activity")
if len(by_activity):
    figures["evaluation_by_activity"] = evaluation_plots.plot_metrics_by_group(by_activity, "activity")
    save_figure(figures["evaluation_by_activity"], "evaluation_by_activity", OUTPUT_DIR)
    plt.show()

# %% [markdown]
# ## By user gender
#
# The same metrics for women and men (where the data records gender: ml-100k and Electronics do). Overlapping intervals mean the models serve both groups about equally well; a gap that every model shows comes from the data (e.g. fewer women, with different tastes), not from one model.

# %%
genders = user_genders(train, evaluation)
by_gender = None
if genders is None:
    print("this data has no user_gender column; no breakdown by gender")
else:
    by_gender = metrics_by_group(result, genders, metrics=("hr", "ndcg"), group_name="gender")
    figures["evaluation_by_gender"] = evaluation_plots.plot_metrics_by_group(by_gender, "gender")
    save_figure(figures["evaluation_by_gender"], "evaluation_by_gender", OUTPUT_DIR)
    plt.show()

# %% [markdown]
# ## Warm users, cold users and cold items
#
# On data where most users have a single interaction, a global 80:20 split leaves most evaluation users unknown to training (cold), and some evaluation items too. Each model scores a cold user with its cold-start path: the most popular items for the baselines and for models without side features, the user's features (gender, age, occupation where the data has them) for a CollabNN with `features=True`; `popular_segment` (the most popular items among users of the same gender) is the floor a feature model has to clear. Cold items (nobody had them in training) are ranked among all the evaluation's cold items, for the users who had them: only models that score items from their features (category, brand, product-image segment, year) can place them, against the popularity of the item's category within the user's segment. The sentences under the table (one for the default, one for each model with side features) are written from its numbers.

# %%
print(notebook.split_protocols_sentence(train, evaluation))
cold_start = cold_start_table(result, models, train, evaluation, k=K)
if len(cold_start):
    figures["evaluation_cold_start"] = evaluation_plots.plot_metrics_by_group(
        cold_start[cold_start["metric"] == "ndcg"], "slice")
    save_figure(figures["evaluation_cold_start"], "evaluation_cold_start", OUTPUT_DIR)
    plt.show()
    print(notebook.cold_start_paragraph(cold_start, models))
notebook.cold_start_view(cold_start)

# %% [markdown]
# ## Does the recommender amplify the market's imbalance?
#
# For data with product segments (Electronics: the gender of the product image, `model_attr`), the marketing-bias question of Wan et al. (2020) asked of the recommendations: per user gender, the share of each segment among each model's top-K lists, against the share among what the same users bought in the evaluation part (defined for cold users too). A ratio above 1 means the model recommends that segment to that gender more than they buy it: it amplifies the market's imbalance; below 1, it dampens it. The EDA notebook shows the same table for the interactions themselves.

# %%
amplification = None
if has_market_segments(evaluation):
    amplification = notebook.amplification_by_model(result, models, train, evaluation)
    headline = notebook.headline_model(models)
    figures["evaluation_amplification"] = market_bias_plots.amplification_figure(
        amplification[amplification["model"] == headline], f"({headline}, {DATASET})")
    save_figure(figures["evaluation_amplification"], "evaluation_amplification", OUTPUT_DIR)
    plt.show()
    print(amplification_sentence(amplification[amplification["model"] == headline]))
    display(amplification.pivot_table(index="model", columns=["gender", "segment"], values="ratio", sort=False).round(2))
else:
    print(f"{DATASET} has no product segments (model_attr with known user genders): no amplification table")

# %% [markdown]
# ## Recording the numbers
#
# Everything above goes to `OUTPUT_DIR/metrics.json` under `evaluation`, read by name (e.g. `results.sampled.ease["hr@10"].value`), never scraped from this page.

# %%
values = notebook.report_values(result, paired, over_k, {"activity": by_activity, "gender": by_gender,
                                                          "slice": cold_start})
if amplification is not None:
    values["amplification"] = amplification.to_dict("records")
values.update(dataset=DATASET, data=source, split=SPLIT, sample=SAMPLE, models=list(models),
              model_sources=model_sources.drop(columns="config").to_dict("records"),
              activity_edges=list(activity.attrs["edges"]), figures=sorted(figures),
              n_train=len(train), n_evaluation=len(evaluation))
record_metrics("evaluation", values, path=Path(OUTPUT_DIR) / "metrics.json")
print(f"recorded {len(result.summary)} figures of {len(models)} models in {Path(OUTPUT_DIR) / 'metrics.json'}")
