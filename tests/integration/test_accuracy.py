"""The default neural model on the original notebook's exact split (../shared/data/ml-latest-small-seed-split):
the figure the accuracy benchmark reports, for one training seed, as a regression check (no timing).

Measured (benchmarks/accuracy.py, 2026-11-27, seed 0): collabnn HR@10 0.872, NDCG@10 0.665 (mean of
seeds 0-2: 0.879 / 0.666); most popular 0.736 / 0.483; the original notebook published 0.754 / 0.535.
"""
import sys

import pytest

from helpers.data.sampling import sampled_candidates
from helpers.evaluation import sampled_ranking
from helpers.files import ROOT
from helpers.models import MostPopular
from helpers.training.learner import train_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_default_model_reproduces_the_benchmark_on_the_seed_split(seed_split_dir):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from accuracy import read_seed_split

    train, test = read_seed_split(seed_split_dir)
    cand = sampled_candidates(train, test, 99, seed=0)
    model = train_model(train, seed=0)                      # the defaults a user gets
    ranking = sampled_ranking(model, cand, unknown="drop")
    hr, ndcg = ranking.mean("hr", 10), ranking.mean("ndcg", 10)
    pop = sampled_ranking(MostPopular().fit(train), cand, unknown="drop").mean("ndcg", 10)
    assert model.name == "collabnn" and model.config["loss"] == "multinomial"
    assert abs(hr - 0.872) <= 0.02 and abs(ndcg - 0.665) <= 0.02, (hr, ndcg)   # thread count / BLAS may differ
    assert ndcg > pop + 0.15 and ndcg > 0.535 + 0.1, (ndcg, pop)                # popularity; the original notebook
