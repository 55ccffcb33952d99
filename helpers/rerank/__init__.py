"""Re-ranking a model's candidate lists: the context (item categories, popularity, user groups), the
re-rankers (affinity, popularity, MMR, calibration, fairness), list measures, the two-stage path, and the
experiments of reranking.ipynb measured over all users."""
from helpers.rerank.context import CALIBRATION_ALPHA, RERANKERS, WEIGHT_RANGES, RerankContext, build_context, check_weight
from helpers.rerank.measures import (
                                     PER_USER_MEASURES,
                                     exposure_by_group,
                                     group_exposure_gap,
                                     kl_divergence,
                                     list_measures,
                                     long_tail_items,
                                     relevance_positions,
                                     stereotype_amplification,
                                     summarise_lists,
)
from helpers.rerank.rerankers import (
                                     RERANK_FUNCTIONS,
                                     popularity_prior,
                                     rerank,
                                     rerank_affinity,
                                     rerank_calibration,
                                     rerank_fairness,
                                     rerank_mmr,
                                     rerank_popularity,
)
from helpers.rerank.two_stage import rescore, timed_recommend, two_stage_recommend

__all__ = ["CALIBRATION_ALPHA", "RERANKERS", "WEIGHT_RANGES", "RerankContext", "build_context", "check_weight",
           "PER_USER_MEASURES", "exposure_by_group", "group_exposure_gap", "kl_divergence", "list_measures",
           "long_tail_items", "relevance_positions", "stereotype_amplification", "summarise_lists", "RERANK_FUNCTIONS",
           "popularity_prior", "rerank", "rerank_affinity", "rerank_calibration", "rerank_fairness", "rerank_mmr",
           "rerank_popularity", "rescore", "timed_recommend", "two_stage_recommend"]
