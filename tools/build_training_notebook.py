"""Writes training.ipynb (kept as a script so the notebook's structure is reviewable in diffs).

    .venv/bin/python tools/build_training_notebook.py
"""
from pathlib import Path

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("# Training a neural recommender (CollabNN and its peers) with fastai\n\n"
       "This notebook loads a dataset, splits it into training and evaluation interactions (written to "
       "`DATA_DIR/train.csv` and `DATA_DIR/evaluation.csv` for the other notebooks), looks for a learning rate "
       "with fastai's `lr_find`, trains the model with `fit_one_cycle`, plots the training and validation loss "
       "per epoch, prints the model and its parameter count, saves it to `MODEL_DIR/<name>.pth` and records its "
       "numbers in `OUTPUT_DIR/metrics.json` under `training`.\n\n"
       "Models (`helpers/models.py`): **collabnn** (default: concatenated user/item embeddings through an MLP, "
       "fused with a multiplicative GMF branch, biases and the user's item history), **mf** (dot product with "
       "biases) and **neumf** (GMF + MLP, He et al. 2017). Tasks: **implicit** (did the user interact? binary "
       "cross-entropy against 4 sampled negatives per interaction, re-drawn every epoch) and **rating** (mean "
       "squared error on the 1-5 stars). Training code lives in `helpers/train.py`; this notebook only calls it."),
    code("from pathlib import Path\n\n"
         "import matplotlib.pyplot as plt\n\n"
         "from helpers import data, split, train\n"
         "from helpers.reports import record_metrics\n\n"
         "%matplotlib inline"),
    code('DATASET = "ml-100k"  # ml-100k (offline) | electronics (downloaded on first use) | csv:PATH\n'
         'SPLIT = "random"  # random (80:20 per user) | leave_one_out (latest per user) | temporal (latest 20%)\n'
         'MODEL = "collabnn"  # collabnn | collabnn_mlp (the seeds concat-MLP, bce) | mf | neumf\n'
         'TASK = "implicit"  # implicit (interacted or not) | rating (predict the stars)\n'
         "EPOCHS = None  # a positive int; None: the model's default; smoke tests: 1\n"
         "LR = None  # maximum learning rate of the one-cycle schedule; None: the model's default\n"
         "WD = None  # weight decay; None: the model's default\n"
         "EMB_SIZE = None  # embedding width (collabnn without MLP: its GMF factors); None: the model's default\n"
         "LAYERS = None  # hidden widths of the concat-MLP, e.g. [64] or [128, 64]; None: the model's default (collabnn implicit: none)\n"
         "LOSS = None  # implicit task: auto | multinomial | bce | softmax | bpr; None: the model's default (collabnn: auto)\n"
         "SEED = 0  # seed of the user sample, the split, the initial weights, the negatives and the shuffling\n"
         'DEVICE = "auto"  # auto (CUDA when present) | cpu | cuda\n'
         "SAMPLE = 0  # interactions to keep (whole users, drawn at random); 0: all. Smoke tests: 3000\n"
         'OUTPUT_DIR = "reports"  # metrics.json and figures/ go here; tests use a temporary folder\n'
         'DATA_DIR = "data"  # train.csv and evaluation.csv are written here\n'
         'MODEL_DIR = "model"  # the trained model is saved here as <name>.pth',
         metadata={"tags": ["parameters"]}),
    md("## Parameters, data and split\n\n"
       "The first call checks the parameters (an unknown value stops here with the allowed ones). Then the "
       "dataset is loaded in the project's schema (`user_id, item_id, rating, timestamp`), optionally cut to "
       "`SAMPLE` interactions of whole users, and split. The two files written here are what the evaluation "
       "and re-ranking notebooks read, so every notebook works on the same split."),
    code("model_kwargs = train.check_parameters(DATASET, SPLIT, MODEL, TASK, DEVICE, epochs=EPOCHS, lr=LR, wd=WD,\n"
         "                                      emb_size=EMB_SIZE, layers=LAYERS, loss=LOSS, seed=SEED, sample=SAMPLE)\n"
         "figures = Path(OUTPUT_DIR) / \"figures\"\n"
         "figures.mkdir(parents=True, exist_ok=True)\n"
         "df = data.sample_users(data.load(DATASET), SAMPLE, seed=SEED)\n"
         "train_df, eval_df = split.make_split(df, SPLIT, seed=SEED)\n"
         "split.write_split(train_df, eval_df, DATA_DIR)\n"
         "split_summary = split.split_summary(train_df, eval_df)\n"
         "print(f\"{DATASET}: {len(df):,} interactions, {df['user_id'].nunique():,} users, {df['item_id'].nunique():,} items\")\n"
         "split_summary"),
    md("## Learning rate\n\n"
       "fastai's learning-rate finder trains a throw-away copy of the model for a few batches while the rate "
       "grows exponentially. The loss should stay flat, fall, then shoot up; the marked *valley* is a rate where "
       "it falls fastest. The default `LR` of each model was chosen by `benchmarks/accuracy.py`; the plot "
       "shows whether it sits in the falling part for this data."),
    code("model = train.make_model(MODEL, task=TASK, progress=True, **model_kwargs)\n"
         "suggested_lr = train.find_lr(model, train_df)\n"
         "plt.gcf().savefig(figures / \"training_lr_find.png\", dpi=100, bbox_inches=\"tight\")\n"
         "plt.show()\n"
         "planned = train.resolved_config(model, train_df)\n"
         "print(f\"lr_find valley: {suggested_lr:.2e}; learning rate used: {planned['lr']:.2e} \"\n"
         "      f\"(loss {planned.get('loss') or 'mse'}, {planned['epochs']} epochs, batch {planned['batch_size']})\")"),
    md("## Training\n\n"
       "`fit_one_cycle` warms the learning rate up and anneals it down over the epochs, with weight decay. "
       "The evaluation interactions serve as validation data, scored with the training loss. With the "
       "default implicit objective (`loss=\"auto\"`, multinomial on a catalogue of this size) each batch is a "
       "set of users, each user's items are the targets of one softmax over the whole catalogue, and 70% of "
       "the user's history is hidden from the user vector at every pass; the validation loss is then the mean "
       "negative log-likelihood of each held-out item given the user's full training history. With "
       "`loss=\"bce\"` each evaluation interaction is paired with sampled negatives (drawn once) instead. "
       "fastai's table shows both losses per epoch."),
    code("model.fit(train_df, valid=eval_df)\n"
         "model.losses"),
    md("## Training and validation loss per epoch\n\n"
       "Both curves should fall. A validation loss that turns up while the training loss keeps falling is "
       "over-fitting (more weight decay or fewer epochs); two curves that stay high together mean the model "
       "under-fits (more epochs, a higher learning rate or wider embeddings). With the multinomial objective the "
       "two curves are not on the same footing: training hides 70% of each user's history and spreads the "
       "softmax over every item, validation sees the whole history and leaves the user's training items out of "
       "the softmax (as recommending does), so the validation curve can sit below the training curve; what "
       "matters is where it flattens."),
    code("ax = model.losses.plot(x=\"epoch\", y=[\"train_loss\", \"valid_loss\"], marker=\"o\", figsize=(6, 4))\n"
         "loss_names = {\"multinomial\": \"multinomial NLL per item\", \"bce\": \"binary cross-entropy\",\n"
         "              \"softmax\": \"sampled softmax\", \"bpr\": \"BPR loss\", None: \"mean squared error\"}\n"
         "ax.set(xlabel=\"epoch\", ylabel=loss_names.get(model.config.get(\"loss\") if TASK == \"implicit\" else None),\n"
         "       title=f\"{MODEL} ({TASK}) on {DATASET}\")\n"
         "ax.figure.savefig(figures / \"training_losses.png\", dpi=100, bbox_inches=\"tight\")\n"
         "plt.show()"),
    md("## The model\n\n"
       "The layers and the number of trainable parameters. Most parameters sit in the embedding tables (one "
       "row per user and per item). The implicit default has no MLP branch (`layers=[]`): its score is the GMF "
       "dot product of a user vector (the user's embedding plus the pooled embeddings of their items) with the "
       "item's embedding, plus biases, which the catalogue-wide softmax needs; `LAYERS = [64]` adds the concat-MLP "
       "(trained with `loss=\"bce\"`), whose first layer is split into a user part and an item part: the same as "
       "one layer on the concatenation, but full ranking computes each part once."),
    code("print(model.summary())"),
    md("## Held-out accuracy, saving, recording\n\n"
       "A first look at accuracy on the evaluation interactions (the evaluation notebook compares models "
       "properly, with confidence intervals): for the implicit task HR@10 and NDCG@10, each held-out item ranked "
       "against 99 items the user never touched; for the rating task the RMSE in stars. The model file holds "
       "the weights, the configuration, the id maps and this training's metadata; `helpers.recommender.load_model` "
       "reads it back without retraining."),
    code("held_out = train.evaluation_summary(model, train_df, eval_df, seed=SEED)\n"
         "model_path = model.save(Path(MODEL_DIR) / f\"{model.name}.pth\",\n"
         "                        metadata={\"dataset\": DATASET, \"split\": SPLIT, \"evaluation\": held_out})\n"
         "record_metrics(\"training\", {\n"
         "    \"dataset\": DATASET, \"split\": SPLIT, \"seed\": SEED, \"sample\": SAMPLE, \"model\": model.name, \"task\": TASK,\n"
         "    \"config\": {k: v for k, v in model.config.items() if k != \"progress\"},\n"
         "    \"split_summary\": split_summary, \"n_parameters\": model.n_parameters, \"lr_find_valley\": suggested_lr,\n"
         "    \"epochs\": model.metadata[\"epochs\"], \"train_seconds\": model.metadata[\"train_seconds\"],\n"
         "    \"device\": model.metadata[\"device\"], \"losses\": model.metadata[\"losses\"],\n"
         "    \"final_train_loss\": float(model.losses[\"train_loss\"].iloc[-1]),\n"
         "    \"final_valid_loss\": float(model.losses[\"valid_loss\"].iloc[-1]),\n"
         "    \"evaluation\": held_out, \"model_path\": str(model_path),\n"
         "}, path=Path(OUTPUT_DIR) / \"metrics.json\")\n"
         "held_out"),
]

nb = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
    "language_info": {"name": "python"},
})
out = Path(__file__).resolve().parent.parent / "training.ipynb"
nbf.write(nb, out)
print(f"wrote {out}")
