"""Training the neural models through fastai's `Learner`: `fit(model, train, valid)`, `train_model`,
`find_lr`; data loaders, losses, the lazy sparse Adam, callbacks and distributed (DDP) training."""
from helpers.training.device import DEVICES, library_versions, resolve_device, seed_everything
from helpers.training.learner import build_learner, find_lr, fit, loss_history, refit, resolved_config, train_model
from helpers.training.loaders import TensorBatches, UserBatches, build_dataloaders
from helpers.training.losses import (
                                     CATALOGUE_BUDGET,
                                     IMPLICIT_LOSSES,
                                     GroupRankingLoss,
                                     implicit_loss,
                                     multinomial_nll,
                                     resolve_loss,
)
from helpers.training.optim import LazyAdam, lazy_adam

__all__ = ["DEVICES", "library_versions", "resolve_device", "seed_everything", "build_learner", "find_lr", "fit",
           "loss_history", "refit", "resolved_config", "train_model", "TensorBatches", "UserBatches", "build_dataloaders",
           "CATALOGUE_BUDGET", "IMPLICIT_LOSSES", "GroupRankingLoss", "implicit_loss", "multinomial_nll", "resolve_loss",
           "LazyAdam", "lazy_adam"]
