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
# # Explore: one user's history, what each model recommends them and why, and what the models learned
#
# Pick a user and see what they had in training next to each model's top 10, with the held-out items (the ones the evaluation counts as hits) marked ✓. Each recommendation comes with **why**: for the models whose score adds up over the user's history (the default CollabNN, EASE, item kNN) the history items that add most to it, with what each adds, exactly; for the others (an MLP over user and item, MF without history) the history items closest to it in the model's embedding space. Sliders move the re-rankers' weights and the re-ranked list changes with them; "similar items" lists the items most like a chosen one.
#
# Run in JupyterLab, the explorer at the end is live (ipywidgets). In a batch run (papermill) and in the rendered HTML the same notebook shows a **static view** for a default user, so everything below is readable without a kernel. The last part is the fastai collab chapter's model interpretation: item biases, a map of item embeddings, nearest items. Logic lives in `helpers/notebooks/explorer.py`, `helpers/notebooks/explorer_widget.py` and `helpers/models/interpretation.py`.

# %%
from IPython.display import Markdown, display

from helpers import rerank
from helpers.models.interpretation import bias_extremes, embedding_map, item_biases, nearest_items
from helpers.notebooks import explorer as ex
from helpers.notebooks import record_metrics
from helpers.notebooks.explorer_widget import UserExplorer
from helpers.notebooks.inputs import notebook_split, side_tables
from helpers.notebooks.models import item_embeddings, load_or_train
from helpers.plots import save_figure
from helpers.plots.interpretation import embedding_map_figure

# %matplotlib inline

# %% tags=["parameters"]
DATASET = "ml-100k"  # ml-100k (offline default) | electronics | csv:PATH; used when DATA_DIR has no split
SPLIT = "auto"  # auto | random | global | leave_one_out | temporal; used only when DATA_DIR has no train.csv
EXPLORE_MODELS = ["collabnn", "ease", "itemknn", "mf", "collabnn_mlp", "popular"]  # registered names, shown side by side
# (loaded from MODEL_DIR/<name>_implicit.pth, else trained here); the first is the one the re-rankers re-order
USER = "auto"  # auto (a typical user: median history among users with held-out items) | a user id
K = 10  # length of each list
N_CANDIDATES = 100  # candidates the re-rankers may re-order
WEIGHTS = {"affinity": 0.0, "popularity": -0.5, "mmr": 0.5, "calibration": 0.0}  # re-ranker weights of the
# static view (0 = off); popularity in [-1, 1] (negative: long tail), the others in [0, 1]
INTERPRET = ["collabnn", "collabnn_features", "collabnn_factor", "collabnn_mlp", "mf", "collabnn_rating", "mf_rating",
             "bias"]  # models whose item
# biases / embeddings are shown (neural ones optionally NAME_rating; "bias" is the bias baseline, in stars)
N_LABELS = 40  # items labelled on each embedding map (the most popular)
MIN_INTERACTIONS = 20  # item-bias extremes leave out items with fewer training interactions
INTERACTIVE = True  # True: build the live explorer (JupyterLab) | False: static view only
EPOCHS = None  # epochs for a neural model trained here (missing from MODEL_DIR); None: its default; smoke tests: 1
SEED = 0  # seed of a split made here and of training here
SAMPLE = 0  # interactions to keep when the split is made here; 0: all. Smoke tests: 3000
DATA_DIR = "data"  # train.csv / evaluation.csv of the pipeline (a split is made here if absent)
MODEL_DIR = "model"  # where training.ipynb saved the models (only read here: this notebook writes no model)
OUTPUT_DIR = "scratch"  # figures/ and metrics.json; make run passes reports

# %% [markdown]
# ## Data and models
#
# The split is the pipeline's; the models are the ones `training.ipynb` saved (checked against this split; a missing one is trained here). The context holds what the re-rankers know besides scores: item categories, popularity, each user's history.

# %%
train, evaluation, source = notebook_split(DATA_DIR, DATASET, SPLIT, SEED, SAMPLE)
items, users = side_tables(DATASET, train, evaluation)
data = ex.explorer_data(train, evaluation, items, users)
models, sources = load_or_train(EXPLORE_MODELS, train, evaluation, MODEL_DIR, seed=SEED, epochs=EPOCHS, log=None)
base = EXPLORE_MODELS[0]
context = rerank.build_context(train, items=items, users=users, embeddings=item_embeddings(models[base]))
user = ex.default_user(data) if USER == "auto" else str(USER)
print(f"split: {source}; {len(data.users):,} users, {len(data.items):,} items")
display(sources[["model", "source", "seconds"]])

# %% [markdown]
# ## The static view: one user
#
# The history is what the models were given (newest first); the lists below exclude it. A ✓ marks an item the user has in the evaluation split.

# %%
history = ex.user_history(data, user)
tables = {name: ex.recommendation_table(models[name], data, user, K) for name in EXPLORE_MODELS}
display(Markdown(ex.view_summary(data, user, tables, K)))
display(history.head(15))

# %%
ex.side_by_side(tables, K)

# %% [markdown]
# ### Why each item is recommended
#
# For the first model: its top list with the three history items that add most to each score (`from_history` is their total over the whole history, `rest` the part that does not depend on it: biases and the user's own vector). The check below the table recomputes every list's score from its parts. The implicit models take every rating as an interaction, whatever its stars, so an item the user rated low can still pull recommendations its way.

# %%
display(tables[base][ex.LIST_COLUMNS + ["from_history", "rest"]])
errors = {name: ex.decomposition_error(models[name], user, tables[name]["item_id"]) for name in EXPLORE_MODELS}
display(Markdown("Largest difference between the reasons' parts and the score: " + ", ".join(
    f"{name} {err:.1e}" for name, err in errors.items() if err is not None) + " (float32 rounding)."))

# %% [markdown]
# ### Re-ranked
#
# The first model's top `N_CANDIDATES` re-ordered by each re-ranker with a non-zero weight in `WEIGHTS` (a per-user view; `reranking.ipynb` measures them over all users).

# %%
reranked = {base: tables[base]}
for method, weight in WEIGHTS.items():
    if weight:
        reranked[f"{method} {weight:+g}"] = ex.reranked_table(models[base], context, data, user, method, weight,
                                                              K, N_CANDIDATES)
display(ex.side_by_side(reranked, K))
ex.hits(reranked).to_frame().T

# %% [markdown]
# ### Similar items
#
# The items most like the user's top recommendation, for the first model (embedding cosine) and for EASE where it is shown (who had both: co-occurrence cosine).

# %%
top_item = tables[base]["item_id"].iloc[0]
display(Markdown(f"Items most like **{data.title([top_item])[0]}**:"))
similar = {name: ex.similar_items(models[name], data, top_item, K) for name in EXPLORE_MODELS[:2]}
for name, table in similar.items():
    display(Markdown(f"{name} ({table.attrs['basis']})"), table)

# %% [markdown]
# ## The live explorer
#
# In JupyterLab: search a user by id, filter by gender and history length, choose the models shown, move the re-rankers' weights, choose an item for its neighbours. Every panel is redrawn from the functions used above. In the rendered HTML the output of the next cell is empty: a widget needs a running kernel.

# %%
explorer = UserExplorer(data, models, context, K, N_CANDIDATES, user=user, weights=WEIGHTS) if INTERACTIVE else None
if explorer is not None:
    display(explorer.widget)

# %% [markdown]
# ## What the models learned about items
#
# As in the fastai collab chapter. The **item bias** is how much an item is liked (rating models) or chosen (implicit models) beyond what the user and item vectors explain: the highest and lowest (items with at least `MIN_INTERACTIONS` training interactions). The **map** places the items by the first two principal components of the model's item embeddings, the most popular labelled. **Nearest items** are by cosine of the embeddings.

# %%
interpreted, interpreted_sources = load_or_train(INTERPRET, train, evaluation, MODEL_DIR, seed=SEED, epochs=EPOCHS, log=None)
popularity = train["item_id"].astype(str).value_counts()
figures, extremes, notes = {}, {}, {}
for name, model in interpreted.items():
    biases = item_biases(model)
    if biases is not None:
        table = bias_extremes(biases, popularity, n=5, min_interactions=MIN_INTERACTIONS)
        table.insert(1, "title", data.title(table["item_id"]))
        extremes[name] = table
    embeddings = item_embeddings(model)
    if embeddings is not None:
        coords = embedding_map(embeddings, popularity.index[:1000])
        labels = (popularity.head(N_LABELS).index.to_series().map(lambda i: data.title([i])[0]))
        figures[f"embedding_map_{name}"] = embedding_map_figure(
            coords, labels, f"{DATASET} — {name}: item embeddings of the {len(coords):,} most popular items")
        notes[name] = nearest_items(embeddings, popularity.index[0], 5).assign(
            title=lambda f: data.title(f["item_id"]))
for name, table in extremes.items():
    display(Markdown(ex.bias_sentence(name, table)), table.round(3))

# %%
for name, table in notes.items():
    display(Markdown(f"**{name}**: nearest to {data.title([popularity.index[0]])[0]}"), table.round(3))

# %%
for name, fig in figures.items():
    save_figure(fig, name, OUTPUT_DIR)

# %% [markdown]
# ## Recorded numbers

# %%
record_metrics("explore", {
    "user": user, "models": EXPLORE_MODELS, "k": K,
    "model_sources": dict(zip(sources["model"], sources["source"])) | dict(zip(interpreted_sources["model"],
                                                                               interpreted_sources["source"])),
    "hits": {name: int(v) for name, v in ex.hits(tables).items()},
    "reasons": {name: table.attrs["reason"] for name, table in tables.items()},
    "decomposition_error": {name: err for name, err in errors.items() if err is not None},
    "reranked_hits": {name: int(v) for name, v in ex.hits(reranked).items()},
    "interpreted": {name: {"item_bias": name in extremes, "embedding_map": f"embedding_map_{name}" in figures}
                    for name in interpreted},
}, path=f"{OUTPUT_DIR}/metrics.json")
