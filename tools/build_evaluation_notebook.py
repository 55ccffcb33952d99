"""Writes evaluation.ipynb (kept as a script so the notebook's structure is reviewable in diffs).

    .venv/bin/python tools/build_evaluation_notebook.py
"""
from pathlib import Path

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("# Evaluation: every model, every protocol, with confidence intervals\n\n"
       "How good are the recommenders, measured in a way a reviewer can trust? Every model (baselines and "
       "neural models alike) goes through the same three protocols of `helpers/evaluate.py`:\n\n"
       "- **sampled**: each held-out interaction ranked against `N_NEGATIVES` items the user never touched, drawn "
       "once with `SEED` and shared by every model (the NCF protocol; numbers are *not* comparable with full ranking);\n"
       "- **full ranking**: each user's held-out items ranked among *all* items not seen in training, plus what the "
       "lists look like (catalogue coverage, novelty, popularity, intra-list diversity);\n"
       "- **rating**: RMSE / MAE of the models trained to predict ratings.\n\n"
       "Ties count against the held-out item, evaluation data unknown to the model counts as a miss (figures are over "
       "all evaluation users), and every figure carries a 95% bootstrap interval over users. Comparisons between "
       "models are paired (same users, same candidates). All logic lives in `helpers/`; figures go to "
       "`OUTPUT_DIR/figures/` and the numbers to `OUTPUT_DIR/metrics.json` under `evaluation`."),
    code("from pathlib import Path\n\n"
         "import matplotlib.pyplot as plt\n"
         "from IPython.display import display\n\n"
         "from helpers import evaluate, evaluation_plots\n"
         "from helpers.reports import record_metrics\n\n"
         "%matplotlib inline"),
    code('DATASET = "ml-100k"  # ml-100k | electronics | csv:PATH; used only when DATA_DIR has no train.csv/evaluation.csv\n'
         'SPLIT = "random"  # random (80:20 per user) | leave_one_out | temporal; only when the split is made here\n'
         'MODELS = ["popular", "itemknn", "ease", "bias", "mf", "collabnn", "collabnn_mlp", "mf_rating", "collabnn_rating"]  # any of popular | itemknn | ease | bias |'
         ' mf | collabnn | collabnn_mlp | neumf; neural ones optionally NAME_rating / NAME_implicit (file MODEL_DIR/NAME_rating.pth)\n'
         "K = 10  # cut-off of the top-K metrics: 5 | 10 | 20 ...\n"
         'PROTOCOLS = ["sampled", "full", "rating"]  # any of sampled | full | rating\n'
         "N_NEGATIVES = 99  # sampled protocol: negatives per held-out item, 99 as in NCF; 1 to n_items - 1\n"
         "SEED = 0  # seed of the split (when made here), the negatives, the bootstrap and neural training: any non-negative int\n"
         "SAMPLE = 0  # interactions to keep (whole users, drawn at random); 0 keeps all. Smoke tests: 3000\n"
         'DATA_DIR = "data"  # folder with train.csv and evaluation.csv (written by training.ipynb); made here if absent\n'
         'MODEL_DIR = "model"  # folder with <model>.pth saved by training.ipynb; missing models are trained here\n'
         'OUTPUT_DIR = "reports"  # where figures/ and metrics.json go; tests use a temporary folder',
         metadata={"tags": ["parameters"]}),
    md("## Parameters, data and models\n\n"
       "The parameters are checked first (a misspelt protocol or model fails here, naming the allowed values). The "
       "split is the one `training.ipynb` wrote to `DATA_DIR`, so the models are evaluated on interactions they "
       "never saw; without those files the split is made here. Each model is loaded from `MODEL_DIR` when "
       "`training.ipynb` saved it (a file trained on another split is refused, not silently used), otherwise "
       "trained here with its defaults. The table says which is which and how long it took."),
    code("params = evaluate.check_parameters(DATASET=DATASET, SPLIT=SPLIT, MODELS=MODELS, K=K, PROTOCOLS=PROTOCOLS,\n"
         "                                   N_NEGATIVES=N_NEGATIVES, SEED=SEED, SAMPLE=SAMPLE, DATA_DIR=DATA_DIR,\n"
         "                                   MODEL_DIR=MODEL_DIR, OUTPUT_DIR=OUTPUT_DIR)\n"
         "train, evaluation, source = evaluate.evaluation_data(DATA_DIR, DATASET, SPLIT, SEED, SAMPLE)\n"
         "print(f\"data: {source}\")\n"
         "print(f\"train: {len(train):,} rows, {train['user_id'].nunique():,} users, {train['item_id'].nunique():,} items; \"\n"
         "      f\"evaluation: {len(evaluation):,} rows, {evaluation['user_id'].nunique():,} users\")\n"
         "models, model_sources = evaluate.load_or_train(params[\"MODELS\"], train, evaluation, MODEL_DIR, seed=SEED)\n"
         "model_sources"),
    md("## Results with 95% confidence intervals\n\n"
       "One row per model, one column per protocol and metric, each cell `value [low, high]`. Read the columns of "
       "one protocol together: sampled HR@K is much higher than full-ranking HR@K for the same model because 99 "
       "random negatives are far easier to beat than the whole catalogue. Most-popular is the floor every "
       "personalised model has to clear by a wide margin; EASE, a closed-form linear model, is the strong baseline. "
       "Implicit models have no rating column: their scores are not ratings."),
    code("result = evaluate.evaluate_models(models, train, evaluation, protocols=params[\"PROTOCOLS\"], k=K,\n"
         "                                  n_negatives=N_NEGATIVES, seed=SEED,\n"
         "                                  item_categories=evaluate.item_categories(train, evaluation))\n"
         "figures = {}\n"
         "result.table()"),
    md("## One bar chart per metric\n\n"
       "Bars are models, whiskers the 95% interval over users. Where two whiskers overlap, look at the paired "
       "comparison below before calling a winner. In the full-ranking panels the beyond-accuracy metrics pull the "
       "other way: most-popular recommends the same few items to everyone (lowest coverage and novelty, highest "
       "average popularity), the personalised models spread over more of the catalogue."),
    code("for protocol in params[\"PROTOCOLS\"]:\n"
         "    if protocol in set(result.summary[\"protocol\"]):\n"
         "        figures[f\"evaluation_{protocol}\"] = evaluation_plots.plot_metric_bars(result.summary, protocol)\n"
         "        evaluation_plots.save_figure(figures[f\"evaluation_{protocol}\"], OUTPUT_DIR, f\"evaluation_{protocol}\")\n"
         "        plt.show()"),
    md("## Paired comparisons\n\n"
       "Each pair of models on exactly the same rows (same users, same sampled candidates): `diff` = A - B with a "
       "paired bootstrap interval and the p-value of a paired sign-flip permutation test over users (the same "
       "statistic, so an interval that excludes 0 goes with a small p-value). Such a difference survives "
       "resampling the users; small differences between strong models often do not."),
    code("paired = evaluate.paired_comparisons(result)\n"
         "paired.round(4)"),
    md("## HR@K and NDCG@K for K = 1 .. 20\n\n"
       "The ranking of the models should not depend on the cut-off: lines that cross mean the choice of K decides "
       "the winner. HR grows with K by construction; NDCG grows more slowly because late hits are discounted."),
    code("over_k = evaluate.metrics_over_k(result, ks=range(1, 21), protocols=[p for p in params[\"PROTOCOLS\"] if p != \"rating\"])\n"
         "if len(over_k):\n"
         "    figures[\"evaluation_over_k\"] = evaluation_plots.plot_metrics_over_k(over_k)\n"
         "    evaluation_plots.save_figure(figures[\"evaluation_over_k\"], OUTPUT_DIR, \"evaluation_over_k\")\n"
         "    plt.show()"),
    md("## By user activity: cold, medium and heavy users\n\n"
       "Users are split at the terciles of their number of training interactions. Heavy users have more held-out "
       "items, so their full-ranking HR@K (any hit among many relevant items) is usually the highest, while their "
       "sampled HR@K is often the lowest (their held-out items are less popular, harder to rank above random "
       "negatives). The gap between a personalised model and most-popular within a bucket shows where "
       "personalisation pays off; cold users are where a model can fall below the popularity floor."),
    code("activity = evaluate.user_activity_buckets(train)\n"
         "print(\"training interactions per user: cold <= {} < medium <= {} < heavy\".format(*activity.attrs[\"edges\"]))\n"
         "by_activity = evaluate.metrics_by_group(result, activity, metrics=(\"hr\", \"ndcg\"), group_name=\"activity\")\n"
         "if len(by_activity):\n"
         "    figures[\"evaluation_by_activity\"] = evaluation_plots.plot_metrics_by_group(by_activity, \"activity\")\n"
         "    evaluation_plots.save_figure(figures[\"evaluation_by_activity\"], OUTPUT_DIR, \"evaluation_by_activity\")\n"
         "    plt.show()"),
    md("## By user gender\n\n"
       "The same metrics for women and men (where the data records gender: ml-100k and Electronics do). Overlapping "
       "intervals mean the models serve both groups about equally well; a gap that every model shows comes from the "
       "data (e.g. fewer women, with different tastes), not from one model."),
    code("genders = evaluate.user_genders(train, evaluation)\n"
         "by_gender = None\n"
         "if genders is None:\n"
         "    print(\"this data has no user_gender column; no breakdown by gender\")\n"
         "else:\n"
         "    by_gender = evaluate.metrics_by_group(result, genders, metrics=(\"hr\", \"ndcg\"), group_name=\"gender\")\n"
         "    figures[\"evaluation_by_gender\"] = evaluation_plots.plot_metrics_by_group(by_gender, \"gender\")\n"
         "    evaluation_plots.save_figure(figures[\"evaluation_by_gender\"], OUTPUT_DIR, \"evaluation_by_gender\")\n"
         "    plt.show()"),
    md("## Recording the numbers\n\n"
       "Everything above goes to `OUTPUT_DIR/metrics.json` under `evaluation`, read by name (e.g. "
       "`results.sampled.ease[\"hr@10\"].value`), never scraped from this page."),
    code("values = evaluate.report_values(result, paired, over_k, {\"activity\": by_activity, \"gender\": by_gender})\n"
         "values.update(dataset=DATASET, data=source, split=SPLIT, sample=SAMPLE, models=list(models),\n"
         "              model_sources=model_sources.drop(columns=\"config\").to_dict(\"records\"),\n"
         "              activity_edges=list(activity.attrs[\"edges\"]), figures=sorted(figures),\n"
         "              n_train=len(train), n_evaluation=len(evaluation))\n"
         "record_metrics(\"evaluation\", values, path=Path(OUTPUT_DIR) / \"metrics.json\")\n"
         "print(f\"recorded {len(result.summary)} figures of {len(models)} models in {Path(OUTPUT_DIR) / 'metrics.json'}\")"),
]
nb = nbf.v4.new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
nb.metadata["language_info"] = {"name": "python"}
out = Path(__file__).resolve().parent.parent / "evaluation.ipynb"
nbf.write(nb, out)
print(f"wrote {out}")
