"""Models: the `Recommender` interface (base), the registry, torch building blocks (layers), the neural
models (collabnn, mf, neumf; trained by `helpers.training`) and the closed-form baselines.

Importing this package imports every implementation module, so each registers itself by name.
"""
from helpers.models import baselines, collabnn, mf, neumf  # noqa: F401  (each registers its classes)
from helpers.models.base import FORMAT, TASKS, Recommender, check_config, load_model
from helpers.models.baselines import BASELINES, EASE, BiasBaseline, ItemKNN, MostPopular
from helpers.models.collabnn import CollabNN, CollabNNFactor, CollabNNMLP
from helpers.models.collabnn_module import CollabNNModule
from helpers.models.layers import Bias, Embedding, History, n_parameters
from helpers.models.mf import DotProductBias, DotProductBiasModule
from helpers.models.neumf import NeuMF
from helpers.models.neural import TRAIN_KEYS, NeuralRecommender
from helpers.models.registry import (
                                     DEFAULT_MODEL,
                                     MODEL_CLASSES,
                                     is_neural,
                                     make_model,
                                     model_class,
                                     model_file_name,
                                     neural_models,
                                     register,
)

MODELS = neural_models()  # {name: class} of the neural models: collabnn, collabnn_factor, collabnn_mlp, mf, neumf

__all__ = ["FORMAT", "TASKS", "Recommender", "check_config", "load_model", "BASELINES", "EASE", "BiasBaseline",
           "ItemKNN", "MostPopular", "CollabNN", "CollabNNFactor", "CollabNNMLP", "CollabNNModule", "Bias", "Embedding",
           "History",
           "n_parameters", "DotProductBias", "DotProductBiasModule", "NeuMF", "TRAIN_KEYS", "NeuralRecommender",
           "DEFAULT_MODEL", "MODEL_CLASSES", "is_neural", "make_model", "model_class", "model_file_name",
           "neural_models", "register",
           "MODELS"]
