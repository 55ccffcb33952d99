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
# # Training a neural recommender (CollabNN and its peers) with fastai
#
# This notebook loads a dataset, splits it into training and evaluation interactions (written to `DATA_DIR/train.csv` and `DATA_DIR/evaluation.csv` for the other notebooks), carves a **validation part out of the training part**, looks for a learning rate with fastai's `lr_find`, trains the model with `fit_one_cycle` while early stopping watches the validation part, plots how the epoch was chosen, saves the model to `MODEL_DIR/<name>_<task>.pth` and records its numbers in `OUTPUT_DIR/metrics.json` under `training`. With `TUNE` set (e.g. `"5m"`), an Optuna search over the model's hyperparameters on the same validation part replaces the defaults.
#
# **Which data each figure comes from.** Every choice made here (the epoch, and with `TUNE` the hyperparameters) is scored on the validation part only; the evaluation part is never seen by training, early stopping or tuning. The one figure on the evaluation part, at the end, is a report, not an input to any choice; `evaluation.ipynb` reports it properly.
#
# Models (`helpers/models/`): **collabnn** (the default), **collabnn_factor** (collabnn without its item-item branch), **collabnn_mlp** (collabnn with a concatenated-embedding MLP branch), **mf** (matrix factorisation: a dot product with biases) and **neumf** (GMF + MLP, He et al. 2017). Tasks: **implicit** (did the user interact?) and **rating** (predict the stars). The cell after the data writes out what the chosen model is (its branches, objective and schedule) from its configuration, so the description always matches the code. Training code lives in `helpers/training/`; this notebook only calls it.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from helpers import data, training
from helpers.models import make_model, model_file_name
from helpers.notebooks import record_metrics
from helpers.notebooks import training as notebook
from helpers.notebooks.models import load_or_train
from helpers.plots import save_figure
from helpers.plots.training import lr_find_figure, plot_selection, plot_trials

# %matplotlib inline

# %% tags=["parameters"]
DATASET = "ml-100k"  # ml-100k (offline) | electronics (downloaded on first use) | csv:PATH
SPLIT = "auto"  # auto (global if most users have one interaction, else random) | random (80:20 per user)
# | global (80:20 of all interactions) | leave_one_out (latest per user) | temporal (latest 20%);
# the validation part is carved out of train by the same rule
MODEL = "collabnn"  # collabnn | collabnn_factor | collabnn_mlp | mf | neumf
# (collabnn: factor + item-item branch; collabnn_mlp: with a concat-MLP branch, trained with bce)
TASK = "implicit"  # implicit (interacted or not) | rating (predict the stars)
EPOCHS = None  # the most epochs early stopping may run, a positive int | None (the model's default)
# smoke tests: 2
PATIENCE = None  # epochs without a better validation figure before stopping; None: the default (5)
TUNE = None  # None (the defaults) | a search budget such as 90s, 5m or 1h (Optuna on the validation part)
LR = None  # maximum learning rate of the one-cycle schedule; None: the model's default
WD = None  # weight decay; None: the model's default
EMB_SIZE = None  # embedding width (collabnn without MLP: its GMF factors); None: the model's default
LAYERS = None  # hidden widths of the concat-MLP, e.g. [64] or [128, 64] | None (the model's default)
# (collabnn implicit: no MLP)
LOSS = None  # implicit task: auto | multinomial | bce | softmax | bpr | None (the model's default)
SEED = 0  # seed of the user sample, the split, the initial weights, the negatives and the shuffling
DEVICE = "auto"  # auto (CUDA when present) | cpu | cuda
SAMPLE = 0  # interactions to keep (whole users, drawn at random); 0: all. Smoke tests: 3000
OTHER_MODELS = ["popular", "popular_segment", "itemknn", "ease", "bias", "mf", "collabnn_features",
                "collabnn_factor", "collabnn_mlp", "mf_rating", "collabnn_rating"]  # registered names | []
# (neural ones optionally NAME_rating): also trained on this split with their defaults and saved to MODEL_DIR,
# so evaluation.ipynb and reranking.ipynb load them; [] for none
OUTPUT_DIR = "scratch"  # figures/ and metrics.json go here; make run passes reports (the committed results)
DATA_DIR = "data"  # train.csv and evaluation.csv are written here
MODEL_DIR = "scratch/model"  # <name>_<task>.pth (e.g. collabnn_implicit.pth) is saved here
# (make run passes model)

# %% [markdown]
# ## Parameters, data and the three parts
#
# The first call checks the parameters (an unknown value stops here with the allowed ones). Then the dataset is loaded in the project's schema (`user_id, item_id, rating, timestamp`), optionally cut to `SAMPLE` interactions of whole users, and split 80:20. The two files written here are what the evaluation and re-ranking notebooks read, so every notebook works on the same split. The validation part is carved out of the training part by the split's own rule (`helpers.data.validation_split`: per user for `random`, each user's second-latest interaction for `leave_one_out`, the period just before the cutoff for `temporal`); the table gives the sizes of the three parts.

# %%
model_kwargs = notebook.check_parameters(DATASET, SPLIT, MODEL, TASK, DEVICE, epochs=EPOCHS, lr=LR, wd=WD,
                                         emb_size=EMB_SIZE, layers=LAYERS, loss=LOSS, seed=SEED, sample=SAMPLE,
                                         patience=PATIENCE, tune_budget=TUNE)
df = data.sample_users(data.load(DATASET), SAMPLE, seed=SEED)
train_df, eval_df = data.make_split(df, SPLIT, seed=SEED)
split_used = train_df.attrs["split"]  # SPLIT, with "auto" resolved on the data
data.write_split(train_df, eval_df, DATA_DIR)
fit_df, valid_df = data.validation_split(train_df, split_used, seed=SEED)
split_summary = {**data.split_summary(train_df, eval_df), "fit_rows": len(fit_df), "validation_rows": len(valid_df)}
print(f"{DATASET}: {len(df):,} interactions, {df['user_id'].nunique():,} users, {df['item_id'].nunique():,} items")
split_summary

# %% [markdown]
# ## The model
#
# What is trained, written from the model's configuration as training will resolve it on this data (the loss `"auto"` picks the multinomial objective over the whole catalogue when users x items fits in memory, else binary cross-entropy against sampled negatives; keys left unset take that objective's defaults).

# %%
model = make_model(MODEL, task=TASK, **model_kwargs)
planned = training.resolved_config(model, train_df)
n_users, n_items = train_df["user_id"].nunique(), train_df["item_id"].nunique()
display(Markdown(notebook.model_description(MODEL, planned, n_users, n_items)))

# %% [markdown]
# ## Learning rate
#
# fastai's learning-rate finder trains a throw-away copy of the model for a few batches (on the fit part) while the rate grows exponentially. The loss should stay flat, fall, then shoot up; fastai suggests a rate from the curve, its *valley*: the point halfway along the longest stretch where the smoothed loss keeps falling, however slowly. The plot marks the valley and the learning rate training uses; the text under it says where each sits on this run's curve and why they differ.

# %%
suggested_lr = training.find_lr(model, fit_df)
lr_curve = notebook.lr_find_curve(plt.gcf())
plt.close(plt.gcf())  # fastai's own plot: redrawn below with both rates marked
fig = lr_find_figure(lr_curve, suggested_lr, planned["lr"],
                     title=f"{DATASET} — {MODEL}: learning-rate finder on the fit part")
save_figure(fig, "training_lr_find", OUTPUT_DIR)
plt.show()
display(Markdown(notebook.learning_rate_sentence(suggested_lr, planned["lr"], lr_curve, loss=planned.get("loss"),
                                                 n_items=n_items)))

# %% [markdown]
# ## Training, with the epoch chosen on validation
#
# `fit_one_cycle` warms the learning rate up and anneals it down over at most `EPOCHS` epochs, with weight decay. Without `TUNE`, the model first trains on the fit part while fastai's `EarlyStoppingCallback` and `SaveModelCallback` follow the validation figure (NDCG@10 of full ranking of each validation user's held-out items, their fit-part items excluded; RMSE for ratings): training stops `PATIENCE` epochs after the best one. For collabnn the figure followed is the factor branch's (the part being trained; the sum with the frozen item-item branch dips while the factor branch is still poor), and the whole model's validation NDCG@10 at the chosen epoch is recorded beside it. Then the model trains again on the whole training part on the same schedule, stopped at the chosen epoch, so the final model loses no interaction to validation. With `TUNE`, Optuna's TPE sampler proposes configurations, each trained on the fit part with early stopping and scored on the validation part (bad trials are pruned at the epoch they fall below the median), and the best configuration is trained on the whole training part.

# %%
model, trials = notebook.trained_model(MODEL, TASK, train_df, tune_budget=TUNE, **model_kwargs)
selection = model.metadata.get("selection") or {}
tuning = model.metadata.get("tuning") or {}
notebook.selection_table(model)

# %% [markdown]
# ## How the epoch was chosen
#
# Left, the loss per epoch on the fit part (training) and on the validation part; right, the validation figure early stopping followed, with the chosen epoch starred. The sentence under the plot says, from the curves, where the validation loss sits against the training loss. A validation figure that peaks and then falls while the training loss keeps falling is over-fitting, and that is where the epoch is chosen; a figure still rising at the last epoch means `EPOCHS` is too small for this data. With `TUNE`, the figure shows each trial's validation figure instead, and the best so far.

# %%
if trials is None:
    fig = plot_selection(selection, loss=model.config.get("loss") if TASK == "implicit" else None,
                         title=f"{DATASET} — {MODEL} ({TASK}): validation part carved by the {split_used} rule")
else:
    fig = plot_trials(trials, monitor=tuning["monitor"].removeprefix("validation "), maximize=TASK == "implicit")
save_figure(fig, "training_selection", OUTPUT_DIR)
plt.show()
if trials is None:
    display(Markdown(notebook.loss_curves_sentence(selection, model.config)))

# %% [markdown]
# ## The layers
#
# The layers and the number of trainable parameters. An item-item branch, where the model has one, is not trained by gradient and not counted: its settings are printed below the layers. Most parameters sit in the embedding tables (one row per user and per item). A concat-MLP branch (`MODEL = "collabnn_mlp"` or `LAYERS = [64]`, trained with binary cross-entropy: an MLP over every user and item pair is too costly for the catalogue-wide softmax) has its first layer split into a user part and an item part: the same as one layer on the concatenation, but full ranking computes each part once.

# %%
print(model.summary())

# %% [markdown]
# ## Held-out figure, saving, recording
#
# A first look at accuracy on the evaluation part, reported once and used for nothing (the evaluation notebook compares models properly, with confidence intervals): for the implicit task HR@10 and NDCG@10, each held-out item ranked against sampled items the user never touched, their number printed with the result (sampled protocol: not comparable with full-ranking figures); for the rating task the RMSE in stars. The model file holds the weights, the configuration, the id maps and this training's metadata, including how its epoch was chosen; `helpers.models.load_model` reads it back without retraining.

# %%
held_out = notebook.evaluation_summary(model, train_df, eval_df, seed=SEED)
model_path = model.save(Path(MODEL_DIR) / model_file_name(f"{model.name}_{model.task}"),
                        metadata={"dataset": DATASET, "split": split_used, "evaluation": held_out})
validation_record = {k: v for k, v in selection.items() if k not in ("curve", "losses")}
record_metrics("training", {
    "dataset": DATASET, "split": split_used, "seed": SEED, "sample": SAMPLE, "model": model.name, "task": TASK,
    "config": {k: v for k, v in model.config.items() if k != "progress"},
    "split_summary": split_summary, "n_parameters": model.n_parameters, "lr_find_valley": suggested_lr,
    "epochs": model.metadata["epochs"], "max_epochs": model.metadata["max_epochs"],
    "train_seconds": model.metadata["train_seconds"], "seconds_per_epoch": model.metadata["seconds_per_epoch"],
    "device": model.metadata["device"], "losses": model.metadata["losses"],
    "final_train_loss": float(model.losses["train_loss"].iloc[-1]),
    "validation": validation_record, "validation_curve": selection.get("curve"),
    "tuning": {k: v for k, v in tuning.items() if k != "trials"} if tuning else None,
    "evaluation": held_out, "model_path": str(model_path),
}, path=Path(OUTPUT_DIR) / "metrics.json")
held_out

# %% [markdown]
# ## The other models, trained once
#
# Every model the evaluation compares is trained here, on the same training part, with its defaults (the neural ones choose their epoch on their own validation part, carved by the same rule), and saved to `MODEL_DIR/<name>_<task>.pth`; `evaluation.ipynb` and `reranking.ipynb` load these files (and refuse one trained on another split) instead of training them again. The table says how long each took.

# %%
other_models, other_sources = load_or_train(OTHER_MODELS, train_df, eval_df, MODEL_DIR, seed=SEED, epochs=EPOCHS,
                                            save=True, metadata={"dataset": DATASET, "split": split_used}, validation=split_used)
record_metrics("trained_models", {"dataset": DATASET, "split": split_used, "model_dir": MODEL_DIR,
                                  "models": other_sources.drop(columns="config", errors="ignore").to_dict("records")},
               path=Path(OUTPUT_DIR) / "metrics.json")
other_sources.drop(columns="config", errors="ignore")

# %% [markdown]
# ## What the run chose
#
# The sentence below is written from this run's numbers.

# %%
print(notebook.selection_sentence(model, held_out))
