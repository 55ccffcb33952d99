"""Evaluation: metrics (pure functions on positions), protocols (sampled, full ranking, rating), statistics
(bootstrap intervals over users, paired comparisons), everything-at-once (`evaluate_models`) and breakdowns
by user group."""
from helpers.evaluation.groups import cold_start_table, metrics_by_group, user_activity_buckets, user_warmth
from helpers.evaluation.protocols import (
                                          PROTOCOLS,
                                          UNKNOWN,
                                          Ranking,
                                          candidate_item_codes,
                                          cold_item_ranking,
                                          full_ranking,
                                          rating_errors,
                                          sampled_ranking,
)
from helpers.evaluation.results import EvaluationResult, evaluate_models, metrics_over_k, paired_comparisons
from helpers.evaluation.stats import bootstrap_ci, paired_comparison, sign_flip_p_value

__all__ = ["cold_start_table", "user_warmth", "cold_item_ranking", "metrics_by_group", "user_activity_buckets",
           "PROTOCOLS", "UNKNOWN", "Ranking", "candidate_item_codes", "full_ranking", "rating_errors",
           "sampled_ranking", "EvaluationResult", "evaluate_models", "metrics_over_k", "paired_comparisons",
           "bootstrap_ci", "paired_comparison", "sign_flip_p_value"]
