"""Neural collaborative filtering for product recommendation: the logic behind the notebooks.

Layers, each importing only the ones below it (an import-linter contract in pyproject.toml):

    cli, pipeline   python -m helpers; the papermill pipeline
    notebooks       what one notebook needs: parameter checks, load-or-train, tables, metrics.json
    plots           figures (one save_figure)
    rerank          re-rankers, list measures, re-ranking experiments
    evaluation      metrics (pure functions), protocols (sampled, full, rating), statistics
    training        fastai Learner, data loaders, losses, optimiser, callbacks, distributed
    models          the Recommender interface and registry, torch modules, neural models, baselines
    data            datasets, splits, samplers, synthetic data, exploratory analyses
    files           the repository root and atomic writes
"""
import warnings

# fastai 2.8 decorates a few functions with torch.jit.script, which torch 2.14 deprecates: a FutureWarning
# on every import that a user can do nothing about (and that would precede the CLI's one-line errors).
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
