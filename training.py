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
# This notebook loads a dataset, splits it into training and evaluation interactions (written to `DATA_DIR/train.csv` and `DATA_DIR/evaluation.csv` for the other notebooks), looks for a learning rate with fastai's `lr_find`, trains the model with `fit_one_cycle`, plots the training and validation loss per epoch, prints the model and its parameter count, saves it to `MODEL_DIR/<name>.pth` and records its numbers in `OUTPUT_DIR/metrics.json` under `training`.
#
# Models (`helpers/models/`): **collabnn** (default: concatenated user/item embeddings through an MLP, fused with a multiplicative GMF branch, biases and the user's item history), **mf** (dot product with biases) and **neumf** (GMF + MLP, He et al. 2017). Tasks: **implicit** (did the user interact? binary cross-entropy against 4 sampled negatives per interaction, re-drawn every epoch) and **rating** (mean squared error on the 1-5 stars). Training code lives in `helpers/training/`; this notebook only calls it.

# %%
from pathlib import Path

import matplotlib.pyplot as plt

from helpers import data, training
from helpers.models import make_model
from helpers.notebooks import record_metrics
from helpers.notebooks import training as notebook

# %matplotlib inline

# %% tags=["parameters"]
DATASET = "ml-100k"  # ml-100k (offline) | electronics (downloaded on first use) | csv:PATH
SPLIT = "random"  # random (80:20 per user) | leave_one_out (latest per user) | temporal (latest 20%)
MODEL = "collabnn"  # collabnn | collabnn_mlp (the seeds concat-MLP, bce) | mf | neumf
TASK = "implicit"  # implicit (interacted or not) | rating (predict the stars)
EPOCHS = None  # a positive int; None: the model's default; smoke tests: 1
LR = None  # maximum learning rate of the one-cycle schedule; None: the model's default
WD = None  # weight decay; None: the model's default
EMB_SIZE = None  # embedding width (collabnn without MLP: its GMF factors); None: the model's default
LAYERS = None  # hidden widths of the concat-MLP, e.g. [64] or [128, 64]; None: the model's default (collabnn implicit: none)
LOSS = None  # implicit task: auto | multinomial | bce | softmax | bpr; None: the model's default (collabnn: auto)
SEED = 0  # seed of the user sample, the split, the initial weights, the negatives and the shuffling
DEVICE = "auto"  # auto (CUDA when present) | cpu | cuda
SAMPLE = 0  # interactions to keep (whole users, drawn at random); 0: all. Smoke tests: 3000
OUTPUT_DIR = "scratch"  # figures/ and metrics.json go here; make run passes reports (the committed results)
DATA_DIR = "data"  # train.csv and evaluation.csv are written here
MODEL_DIR = "scratch/model"  # the trained model is saved here as <name>.pth; make run passes model

# %% [markdown]
# ## Parameters, data and split
#
# The first call checks the parameters (an unknown value stops here with the allowed ones). Then the dataset is loaded in the project's schema (`user_id, item_id, rating, timestamp`), optionally cut to `SAMPLE` interactions of whole users, and split. The two files written here are what the evaluation and re-ranking notebooks read, so every notebook works on the same split.

# %%
model_kwargs = notebook.check_parameters(DATASET, SPLIT, MODEL, TASK, DEVICE, epochs=EPOCHS, lr=LR, wd=WD,
                                         emb_size=EMB_SIZE, layers=LAYERS, loss=LOSS, seed=SEED, sample=SAMPLE)
figures = Path(OUTPUT_DIR) / "figures"
figures.mkdir(parents=True, exist_ok=True)
df = data.sample_users(data.load(DATASET), SAMPLE, seed=SEED)
train_df, eval_df = data.make_split(df, SPLIT, seed=SEED)
data.write_split(train_df, eval_df, DATA_DIR)
split_summary = data.split_summary(train_df, eval_df)
print(f"{DATASET}: {len(df):,} interactions, {df['user_id'].nunique():,} users, {df['item_id'].nunique():,} items")
split_summary

# %% [markdown]
# ## Learning rate
#
# fastai's learning-rate finder trains a throw-away copy of the model for a few batches while the rate grows exponentially. The loss should stay flat, fall, then shoot up; the marked *valley* is a rate where it falls fastest. The default `LR` of each model was chosen by `benchmarks/accuracy.py`; the plot shows whether it sits in the falling part for this data.

# %%
model = make_model(MODEL, task=TASK, progress=True, **model_kwargs)
suggested_lr = training.find_lr(model, train_df)
plt.gcf().savefig(figures / "training_lr_find.png", dpi=100, bbox_inches="tight")
plt.show()
planned = training.resolved_config(model, train_df)
print(f"lr_find valley: {suggested_lr:.2e}; learning rate used: {planned['lr']:.2e} "
      f"(loss {planned.get('loss') or 'mse'}, {planned['epochs']} epochs, batch {planned['batch_size']})")

# %% [markdown]
# ## Training
#
# `fit_one_cycle` warms the learning rate up and anneals it down over the epochs, with weight decay. The evaluation interactions serve as validation data, scored with the training loss. With the default implicit objective (`loss="auto"`, multinomial on a catalogue of this size) each batch is a set of users, each user's items are the targets of one softmax over the whole catalogue, and 70% of the user's history is hidden from the user vector at every pass; the validation loss is then the mean negative log-likelihood of each held-out item given the user's full training history. With `loss="bce"` each evaluation interaction is paired with sampled negatives (drawn once) instead. fastai's table shows both losses per epoch.

# %%
model = training.fit(model, train_df, valid=eval_df)
model.losses

# %% [markdown]
# ## Training and validation loss per epoch
#
# Both curves should fall. A validation loss that turns up while the training loss keeps falling is over-fitting (more weight decay or fewer epochs); two curves that stay high together mean the model under-fits (more epochs, a higher learning rate or wider embeddings). With the multinomial objective the two curves are not on the same footing: training hides 70% of each user's history and spreads the softmax over every item, validation sees the whole history and leaves the user's training items out of the softmax (as recommending does), so the validation curve can sit below the training curve; what matters is where it flattens.

# %%
ax = model.losses.plot(x="epoch", y=["train_loss", "valid_loss"], marker="o", figsize=(6, 4))
loss_names = {"multinomial": "multinomial NLL per item", "bce": "binary cross-entropy",
              "softmax": "sampled softmax", "bpr": "BPR loss", None: "mean squared error"}
ax.set(xlabel="epoch", ylabel=loss_names.get(model.config.get("loss") if TASK == "implicit" else None),
       title=f"{MODEL} ({TASK}) on {DATASET}")
ax.figure.savefig(figures / "training_losses.png", dpi=100, bbox_inches="tight")
plt.show()

# %% [markdown]
# ## The model
#
# The layers and the number of trainable parameters. Most parameters sit in the embedding tables (one row per user and per item). The implicit default has no MLP branch (`layers=[]`): its score is the GMF dot product of a user vector (the user's embedding plus the pooled embeddings of their items) with the item's embedding, plus biases, which the catalogue-wide softmax needs; `LAYERS = [64]` adds the concat-MLP (trained with `loss="bce"`), whose first layer is split into a user part and an item part: the same as one layer on the concatenation, but full ranking computes each part once.

# %%
print(model.summary())

# %% [markdown]
# ## Held-out accuracy, saving, recording
#
# A first look at accuracy on the evaluation interactions (the evaluation notebook compares models properly, with confidence intervals): for the implicit task HR@10 and NDCG@10, each held-out item ranked against 99 items the user never touched; for the rating task the RMSE in stars. The model file holds the weights, the configuration, the id maps and this training's metadata; `helpers.models.load_model` reads it back without retraining.

# %%
held_out = notebook.evaluation_summary(model, train_df, eval_df, seed=SEED)
model_path = model.save(Path(MODEL_DIR) / f"{model.name}.pth",
                        metadata={"dataset": DATASET, "split": SPLIT, "evaluation": held_out})
record_metrics("training", {
    "dataset": DATASET, "split": SPLIT, "seed": SEED, "sample": SAMPLE, "model": model.name, "task": TASK,
    "config": {k: v for k, v in model.config.items() if k != "progress"},
    "split_summary": split_summary, "n_parameters": model.n_parameters, "lr_find_valley": suggested_lr,
    "epochs": model.metadata["epochs"], "train_seconds": model.metadata["train_seconds"],
    "device": model.metadata["device"], "losses": model.metadata["losses"],
    "final_train_loss": float(model.losses["train_loss"].iloc[-1]),
    "final_valid_loss": float(model.losses["valid_loss"].iloc[-1]),
    "evaluation": held_out, "model_path": str(model_path),
}, path=Path(OUTPUT_DIR) / "metrics.json")
held_out
