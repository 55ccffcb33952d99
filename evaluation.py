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
# - **sampled ranking**: each held-out interaction ranked against `N_NEGATIVES` items the user never touched, drawn once with `SEED` and shared by every model (the protocol of the NCF paper, He et al. 2017); its HR@K is the share of held-out *interactions* ranked in the top K;
# - **full ranking**: each user's held-out items ranked among *all* items the user did not see in training, plus what the lists look like (catalogue coverage, novelty, popularity, intra-list diversity); its HR@K is the share of *users* with at least one held-out item in their top K;
# - **rating prediction**: RMSE / MAE of the models trained to predict ratings.
#
# The two ranking protocols measure different things on different candidates: a number of one is never compared with a number of the other. The ranking figures show the models trained for ranking (task `implicit`) only; the models trained to predict ratings (task `rating`: `bias` and the `*_rating` models) have their own figure, since a predicted rating is not meant as a ranking score (their ranking numbers are still in the tables and in `metrics.json`).
#
# **Which part each figure comes from.** Everything here is measured on the evaluation part (the test set), once. No choice was made on it: the neural models chose their epoch by early stopping on a validation part carved out of the training part (`helpers.data.validation_split`; see `training.ipynb`), and the baselines keep their defaults. Ties count against the held-out item, evaluation data unknown to the model counts as a miss (figures are over all evaluation users), and every figure carries a 95% bootstrap interval over users (scipy's BCa bootstrap, never clamped, so a skewed interval may leave its point estimate out). Comparisons between models are paired (same users, same candidates). Every sentence below that states a number is written by `helpers.notebooks.evaluation_prose` from the results of this run. All logic lives in `helpers/`; figures go to `OUTPUT_DIR/figures/`, full tables to `OUTPUT_DIR/tables/` and the numbers to `OUTPUT_DIR/metrics.json` under `evaluation`.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

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
from helpers.notebooks import evaluation_prose as prose
from helpers.notebooks import record_metrics
from helpers.notebooks.inputs import item_categories, notebook_split, user_genders
from helpers.notebooks.models import load_or_train
from helpers.plots import evaluation as evaluation_plots
from helpers.plots import market_bias as market_bias_plots
from helpers.plots import save_figure
from helpers.plots.evaluation import figure_title, protocol_label

# %matplotlib inline

# %% tags=["parameters"]
DATASET = "ml-100k"  # ml-100k | electronics | csv:PATH; read only when DATA_DIR has no split
SPLIT = "auto"  # auto | random | global | leave_one_out | temporal; only when the split is made here
# (auto: global if most users have one interaction, else random; random: 80:20 per user; global: 80:20 overall)
MODELS = [  # any of: popular | popular_segment | itemknn | ease | bias | mf | neumf
    #          collabnn | collabnn_features | collabnn_factor | collabnn_mlp;
    #          a neural one optionally as NAME_rating / NAME_implicit (read from MODEL_DIR/NAME_TASK.pth)
    "popular", "popular_segment", "itemknn", "ease", "bias", "mf",
    "collabnn", "collabnn_features", "collabnn_factor", "collabnn_mlp",
    "mf_rating", "collabnn_rating",
]  # the models to evaluate (options above)
K = 10  # cut-off of the top-K metrics: 5 | 10 | 20 ...
PROTOCOLS = ["sampled", "full", "rating"]  # any of sampled | full | rating
N_NEGATIVES = 99  # sampled protocol: negatives per held-out item (99 as in NCF); 1 to n_items - 1
SEED = 0  # split (when made here), negatives, bootstrap and neural training: any non-negative int
SAMPLE = 0  # interactions to keep (whole users, at random); 0 keeps all. Smoke tests: 3000
DATA_DIR = "data"  # folder with train.csv and evaluation.csv (from training.ipynb); made here if absent
MODEL_DIR = "scratch/model"  # <name>_<task>.pth from training.ipynb; missing ones trained here; make run: model
OUTPUT_DIR = "scratch"  # figures/, tables/ and metrics.json go here; make run passes reports

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
ranking_models, rating_models = prose.ranking_model_names(models), prose.rating_model_names(models)
headline = notebook.headline_model(models)
print(f"ranking models: {', '.join(ranking_models)}; rating models: {', '.join(rating_models) or 'none'}")
model_sources

# %% [markdown]
# ## Results with 95% confidence intervals
#
# One row per model, one column per protocol and metric, each cell `value [low, high]`. Read the columns of one protocol together, never across protocols. Most-popular (`popular`) is the floor every personalised model has to clear; `popular_segment` is the most popular items among users of the same gender; EASE, a closed-form linear item-item model, is the strong baseline. The default `collabnn` adds EASE's weights as a frozen item-item branch to a trained factor branch; `collabnn_factor` is that factor branch alone, `collabnn_mlp` the concatenation-and-MLP design of the NCF paper, and `collabnn_features` the default with the users' and items' side features. Implicit models have no rating column: their scores are not ratings. The lines under the table say, from its numbers, who leads each protocol.

# %%
result = evaluate_models(models, train, evaluation, protocols=params["PROTOCOLS"], k=K,
                                  n_negatives=N_NEGATIVES, seed=SEED,
                                  item_categories=item_categories(train, evaluation))
figures = {}
display(result.table())
display(Markdown(prose.markdown_lines(
    prose.results_sentences(result.summary, ranking_models, rating_models, headline))))

# %% [markdown]
# ## One panel per metric
#
# A dot per model with its 95% interval over users, sorted best first (top); the value is written right of each panel. The value axis spans every interval and does not start at 0, so read the axis before reading distances. Where two intervals overlap, look at the paired comparison below before calling a winner. In the full-ranking figure the list measures (coverage, novelty, popularity, diversity) describe the lists rather than rank them; the line under the figures gives their range.

# %%
for protocol in params["PROTOCOLS"]:
    shown = rating_models if protocol == "rating" else ranking_models
    if shown and protocol in set(result.summary["protocol"]):
        figures[f"evaluation_{protocol}"] = evaluation_plots.plot_metric_bars(
            result.summary, protocol, models=shown, highlight=headline,
            title=figure_title(DATASET, f"{protocol_label(protocol)}, 95% bootstrap intervals over users"))
        save_figure(figures[f"evaluation_{protocol}"], f"evaluation_{protocol}", OUTPUT_DIR)
        plt.show()
display(Markdown(prose.markdown_lines(prose.list_measures_sentence(result.summary, ranking_models))))

# %% [markdown]
# ## Paired comparisons
#
# Each pair of models on exactly the same rows (same users, same sampled candidates): the difference A - B with a paired bootstrap interval and the p-value of a paired sign-flip permutation test over users. Such a difference survives resampling the users; small differences between strong models often do not. The table shows the default model against every other ranking model on the headline figures (each cell: difference [95% interval], p-value); every pair and every metric is in the CSV linked under it.

# %%
plan = notebook.statistics_plan(models, evaluation)
print(notebook.statistics_sentence(plan))
paired = paired_comparisons(result, pairs=plan["pairs"], n_permutations=plan["n_permutations"])
headline_paired = prose.oriented_comparisons(paired, headline, others=ranking_models)
display(prose.comparison_view(headline_paired, headline))
display(Markdown(prose.markdown_lines(prose.comparisons_sentence(headline_paired, headline))))
display(Markdown(prose.markdown_lines(prose.rating_comparisons_sentence(paired))))
paired_table = prose.write_table(paired, "evaluation_paired", OUTPUT_DIR)
display(Markdown(f"All {len(paired):,} paired comparisons: [`{paired_table}`]({paired_table}) "
                 f"(under `{OUTPUT_DIR}`)."))

# %% [markdown]
# ## HR@K and NDCG@K for K = 1 .. 20
#
# The ranking of the models should not depend on the cut-off: lines that cross mean the choice of K decides the winner. HR@K cannot fall as K grows (a longer list keeps every hit of a shorter one); NDCG@K can, where users have several held-out items and the ideal list they are normalised by grows with K. The legend lists the models from the top line down; the lines under the figure say, from the numbers, which model leads at which K.

# %%
over_k = metrics_over_k(result, ks=range(1, 21), protocols=[p for p in params["PROTOCOLS"] if p != "rating"],
                        ci=plan["over_k_ci"])
if len(over_k):
    figures["evaluation_over_k"] = evaluation_plots.plot_metrics_over_k(
        over_k, models=ranking_models, highlight=headline,
        title=figure_title(DATASET, "HR@K and NDCG@K, 95% bootstrap bands over users"))
    save_figure(figures["evaluation_over_k"], "evaluation_over_k", OUTPUT_DIR)
    plt.show()
    display(Markdown(prose.markdown_lines(prose.over_k_sentences(over_k, ranking_models))))

# %% [markdown]
# ## By user activity
#
# Users are split at the terciles of their number of training interactions (where most users have one, the cuts move to the next count that occurs, and evaluation users unknown to training form a bucket "new" of their own). Users with more history usually have more held-out items, which changes what HR@K and NDCG@K mean per user, so compare models within a bucket rather than buckets with each other. The gap between a personalised model and most-popular within a bucket shows where personalisation pays off; the lines under the figure give it for the default model, and name any model that falls below most-popular.

# %%
activity = user_activity_buckets(train, evaluation=evaluation)
display(Markdown(prose.markdown_lines(notebook.activity_sentence(activity, evaluation))))
by_activity = metrics_by_group(result, activity, metrics=("hr", "ndcg"), group_name="activity")
if len(by_activity):
    figures["evaluation_by_activity"] = evaluation_plots.plot_metrics_by_group(
        by_activity, "activity", models=ranking_models, highlight=headline,
        title=figure_title(DATASET, "by user activity (training interactions), 95% bootstrap intervals"))
    save_figure(figures["evaluation_by_activity"], "evaluation_by_activity", OUTPUT_DIR)
    plt.show()
    display(Markdown(prose.markdown_lines(
        prose.activity_sentences(by_activity, headline, models=ranking_models))))

# %% [markdown]
# ## By user gender
#
# The same metrics per recorded gender (where the data records it: ml-100k and Electronics do). Right of each panel: the gap between the two groups, in percentage points for HR (a share) and as a plain difference for NDCG. Overlapping intervals mean the data cannot tell the groups apart for that model; a gap that every model shows points to the data (who the users are, what they watch or buy) rather than to one model.

# %%
genders = user_genders(train, evaluation)
by_gender = None
if genders is None:
    print("this data has no user_gender column; no breakdown by gender")
else:
    by_gender = metrics_by_group(result, genders, metrics=("hr", "ndcg"), group_name="gender")
    figures["evaluation_by_gender"] = evaluation_plots.plot_metrics_by_group(
        by_gender, "gender", models=ranking_models, highlight=headline,
        title=figure_title(DATASET, "by user gender, 95% bootstrap intervals"))
    save_figure(figures["evaluation_by_gender"], "evaluation_by_gender", OUTPUT_DIR)
    plt.show()
    display(Markdown(prose.markdown_lines(
        prose.group_gap_sentences(by_gender, "gender", headline, models=ranking_models))))

# %% [markdown]
# ## Warm users, cold users and cold items
#
# A user or item is *cold* when it has no interaction in the training part. How many there are depends on the split (a global split of data where most users have a single interaction leaves many; a per-user split leaves no cold users): the first line below says how many this split has. Each model scores a cold user with its cold-start path: the most popular items for the baselines and for models without side features, the user's features (gender, age, occupation where the data has them) for a CollabNN with `features=True`; `popular_segment` (the most popular items among users of the same gender) is the floor a feature model has to clear. Cold items are ranked among all the evaluation's cold items, for the users who had them: only models that score items from their features (category, brand, product-image segment, year) can place them. The sentences under the table (one for the default, one for each model with side features) are written from its numbers.

# %%
display(Markdown(prose.markdown_lines(notebook.split_protocols_sentence(train, evaluation))))
cold_start = cold_start_table(result, models, train, evaluation, k=K)
if len(cold_start):
    display(Markdown(prose.markdown_lines(prose.cold_slices_sentence(cold_start))))
    figures["evaluation_cold_start"] = evaluation_plots.plot_metrics_by_group(
        cold_start[cold_start["metric"] == "ndcg"], "slice", models=ranking_models, highlight=headline,
        groups=cold_start["slice"].unique(),
        title=figure_title(DATASET, "warm users, cold users and cold items, 95% bootstrap intervals"))
    save_figure(figures["evaluation_cold_start"], "evaluation_cold_start", OUTPUT_DIR)
    plt.show()
    display(Markdown(prose.markdown_lines(notebook.cold_start_paragraph(cold_start, models))))
notebook.cold_start_view(cold_start)

# %% [markdown]
# ## Does the recommender amplify the market's imbalance?
#
# For data with product segments (Electronics: the gender of the product image, `model_attr`), the marketing-bias question of Wan et al. (2020) asked of the recommendations: per user gender, the share of each segment among each model's top-K lists, against the share among what the same users bought in the evaluation part (defined for cold users too). A ratio above 1 means the model recommends that segment to that gender more than they buy it: it amplifies the market's imbalance; below 1, it dampens it. The EDA notebook shows the same table for the interactions themselves.

# %%
amplification = None
if has_market_segments(evaluation):
    amplification = notebook.amplification_by_model(result, models, train, evaluation)
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
              n_train=len(train), n_evaluation=len(evaluation), ranking_models=ranking_models,
              rating_models=rating_models, headline_model=headline, tables={"paired": paired_table},
              headline_paired=headline_paired.to_dict("records"))
record_metrics("evaluation", values, path=Path(OUTPUT_DIR) / "metrics.json")
print(f"recorded {len(result.summary)} figures of {len(models)} models in {Path(OUTPUT_DIR) / 'metrics.json'}")
