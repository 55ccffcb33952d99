"""The peer libraries' models behind this repository's `Recommender` interface, for `benchmarks/peers.py`.

Each adapter is fitted on the same index maps as this repository's models (`Recommender.index_training_data`)
and answers `score_users` in that index space, so the peers are scored by the same evaluation code
(`helpers.evaluation.full_ranking` / `sampled_ranking`, the same exclusions and tie rule) and paired with
the default on the same rows. Every interaction counts as a positive (the implicit task), as for the default.

- implicit 0.7.3: `implicit_als` (AlternatingLeastSquares), `implicit_bpr` (BayesianPersonalizedRanking);
- cornac 3.0.1: `cornac_bivae` (BiVAECF), `cornac_bpr` (BPR);
- RecBole 1.2.1: `recbole_neumf`, `recbole_multivae`, `recbole_recvae`, `recbole_ease`, trained by RecBole's
  own Trainer with its early stopping on the validation part (`fit_early_stopped`), then refitted on all of
  train for the chosen number of epochs.

These libraries are benchmark-only (`benchmarks/requirements-peers.txt`), never a runtime dependency of
`helpers`. RecBole 1.2.1 assigns `np.float_` and three other aliases NumPy 2 removed (its
`Config.compatibility_settings`), so `NUMPY_ALIASES` puts them back before it is imported; nothing else
of RecBole is changed.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from helpers.models.base import Recommender  # noqa: E402

# NumPy 2 removed these aliases; RecBole 1.2.1 reads them when a Config is built (see the module docstring).
NUMPY_ALIASES = {"float_": np.float64, "complex_": np.complex128, "unicode_": np.str_}
for _alias, _value in NUMPY_ALIASES.items():
    if not hasattr(np, _alias):
        setattr(np, _alias, _value)

import cornac  # noqa: E402
import recbole.trainer.trainer as recbole_trainer  # noqa: E402
from cornac.data import Dataset as CornacDataset  # noqa: E402
from implicit.cpu.als import AlternatingLeastSquares  # noqa: E402
from implicit.cpu.bpr import BayesianPersonalizedRanking  # noqa: E402
from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.data.interaction import Interaction  # noqa: E402
from recbole.model.general_recommender import EASE, MultiVAE, NeuMF, RecVAE  # noqa: E402
from recbole.utils import get_trainer, init_seed  # noqa: E402


class NullWriter:
    """Stands in for the tensorboard SummaryWriter RecBole's Trainer opens in ./log_tensorboard (a folder in
    whatever the working directory is); the benchmark reads no tensorboard log."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


recbole_trainer.get_tensorboard = lambda logger: NullWriter()

LIBRARY_VERSIONS = {"implicit": __import__("implicit").__version__, "cornac": cornac.__version__,
                    "recbole": __import__("recbole").__version__}


def binary_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """users x items csr float32 matrix with a 1 for every (user, item) seen at least once."""
    matrix = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


class PeerRecommender(Recommender):
    """A peer library's model: `reference` is the configuration its first tuning trial uses (the library's
    defaults, or the settings its authors published for this data where they differ), `space` what Optuna
    searches on the validation part."""
    library = ""
    reference: dict = {}

    def __init__(self, seed: int = 0, threads: int = 2, **config):
        unknown = sorted(set(config) - set(self.reference))
        if unknown:
            raise ValueError(f"{self.name}: unknown setting(s) {unknown}; choose from {sorted(self.reference)}")
        super().__init__(**{**self.reference, **config})
        self.seed, self.threads = int(seed), int(threads)

    @staticmethod
    def space(trial) -> dict:
        raise NotImplementedError

    def score_users(self, users: np.ndarray) -> torch.Tensor:
        users = torch.as_tensor(np.asarray(users, dtype=np.int64))
        return (self._user_factors[users] @ self._item_factors.T).float()


class ImplicitALS(PeerRecommender):
    """implicit's weighted-ALS (Hu, Koren and Volinsky 2008) with its defaults as the reference."""
    name, library = "implicit_als", "implicit"
    reference = {"factors": 100, "regularization": 0.01, "alpha": 1.0, "iterations": 15}

    @staticmethod
    def space(trial) -> dict:
        return {"factors": trial.suggest_int("factors", 16, 256, log=True),
                "regularization": trial.suggest_float("regularization", 1e-3, 10.0, log=True),
                "alpha": trial.suggest_float("alpha", 0.1, 50.0, log=True),
                "iterations": trial.suggest_int("iterations", 5, 50)}

    def _fit(self, users, items, ratings):
        model = AlternatingLeastSquares(**self.config, random_state=self.seed, num_threads=self.threads,
                                        calculate_training_loss=False)
        model.fit(binary_matrix(users, items, self.n_users, self.n_items), show_progress=False)
        self._user_factors = torch.from_numpy(np.asarray(model.user_factors, dtype=np.float32))
        self._item_factors = torch.from_numpy(np.asarray(model.item_factors, dtype=np.float32))


class ImplicitBPR(PeerRecommender):
    """implicit's BPR (Rendle et al. 2009); the item factors carry the item bias as a last column."""
    name, library = "implicit_bpr", "implicit"
    reference = {"factors": 100, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100}

    @staticmethod
    def space(trial) -> dict:
        return {"factors": trial.suggest_int("factors", 16, 256, log=True),
                "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.1, log=True),
                "regularization": trial.suggest_float("regularization", 1e-4, 0.1, log=True),
                "iterations": trial.suggest_int("iterations", 20, 400, log=True)}

    def _fit(self, users, items, ratings):
        model = BayesianPersonalizedRanking(**self.config, random_state=self.seed, num_threads=self.threads)
        model.fit(binary_matrix(users, items, self.n_users, self.n_items), show_progress=False)
        self._user_factors = torch.from_numpy(np.asarray(model.user_factors, dtype=np.float32))
        self._item_factors = torch.from_numpy(np.asarray(model.item_factors, dtype=np.float32))


class CornacModel(PeerRecommender):
    """A cornac model fitted on a cornac Dataset whose raw ids are this repository's indices; `score_users`
    asks cornac for each user's scores and puts them back in this repository's item order."""
    library = "cornac"

    def build(self):
        raise NotImplementedError

    def _fit(self, users, items, ratings):
        triples = list(zip(users.astype(str), items.astype(str), np.ones(len(users), dtype=np.float64)))
        data = CornacDataset.from_uir(triples, seed=self.seed)
        torch.manual_seed(self.seed)
        self._model = self.build().fit(data)
        self._cornac_user = np.array([data.uid_map[str(u)] for u in range(self.n_users)], dtype=np.int64)
        self._cornac_item = np.array([data.iid_map[str(i)] for i in range(self.n_items)], dtype=np.int64)

    def score_users(self, users: np.ndarray) -> torch.Tensor:
        rows = [np.asarray(self._model.score(int(self._cornac_user[u])), dtype=np.float32)[self._cornac_item]
                for u in np.asarray(users, dtype=np.int64)]
        return torch.from_numpy(np.stack(rows)) if rows else torch.zeros((0, self.n_items))


class CornacBiVAE(CornacModel):
    """cornac's BiVAE (Truong et al. 2021); the reference is microsoft/recommenders' ml-100k settings."""
    name = "cornac_bivae"
    reference = {"k": 50, "encoder_width": 100, "likelihood": "pois", "n_epochs": 500, "batch_size": 128,
                 "learning_rate": 0.001}

    @staticmethod
    def space(trial) -> dict:
        return {"k": trial.suggest_categorical("k", [20, 50, 100]),
                "encoder_width": trial.suggest_categorical("encoder_width", [40, 100, 200]),
                "likelihood": trial.suggest_categorical("likelihood", ["pois", "bern", "gaus"]),
                "n_epochs": trial.suggest_categorical("n_epochs", [100, 250, 500]),
                "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
                "learning_rate": trial.suggest_float("learning_rate", 3e-4, 3e-3, log=True)}

    def build(self):
        c = self.config
        return cornac.models.BiVAECF(k=c["k"], encoder_structure=[c["encoder_width"]], act_fn="tanh",
                                     likelihood=c["likelihood"], n_epochs=c["n_epochs"], batch_size=c["batch_size"],
                                     learning_rate=c["learning_rate"], seed=self.seed, use_gpu=False, verbose=False)


class CornacBPR(CornacModel):
    """cornac's BPR (Cython, with item biases) with its defaults as the reference."""
    name = "cornac_bpr"
    reference = {"k": 10, "max_iter": 100, "learning_rate": 0.001, "lambda_reg": 0.01}

    @staticmethod
    def space(trial) -> dict:
        return {"k": trial.suggest_int("k", 10, 200, log=True),
                "max_iter": trial.suggest_int("max_iter", 50, 500, log=True),
                "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.1, log=True),
                "lambda_reg": trial.suggest_float("lambda_reg", 1e-4, 0.1, log=True)}

    def build(self):
        return cornac.models.BPR(**self.config, seed=self.seed, verbose=False)


# (user, item) pairs scored at once for a RecBole model that scores pairs only (NeuMF): its MLP's activations
# follow this, as in RecBole's own evaluator, which scores a batch of users at a time.
PAIRS_PER_CHUNK = 1 << 20


class RecBoleModel(PeerRecommender):
    """A RecBole general recommender trained by RecBole's Trainer on atomic files written from the
    training part (tokens = this repository's indices). `epochs` is the most it trains; with a validation
    part (`fit_early_stopped`) RecBole's early stopping (NDCG@10, full ranking, `stopping_step` epochs
    without improvement) chooses the epoch, whose weights are restored from RecBole's checkpoint."""
    library = "recbole"
    model_class = None
    fixed: dict = {}           # RecBole settings that are not searched
    stopping_step = 5          # RecBole's default is 10; 5 keeps a trial inside the benchmark's time budget

    def __init__(self, seed: int = 0, threads: int = 2, **config):
        super().__init__(seed=seed, threads=threads, **config)
        self.validation: pd.DataFrame | None = None
        self.best_epochs: int | None = None

    def fit_early_stopped(self, train: pd.DataFrame, validation: pd.DataFrame) -> RecBoleModel:
        """Fit on `train`, early-stopped on `validation`; `best_epochs` is the epoch count it chose."""
        self.validation = validation
        try:
            return self.fit(train)
        finally:
            self.validation = None

    def _recbole_config(self, folder: str, epochs: int) -> Config:
        settings = {"data_path": folder, "benchmark_filename": ["train", "valid", "test"],
                    "load_col": {"inter": ["user_id", "item_id"]}, "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id",
                    "eval_args": {"mode": "full", "order": "RO", "group_by": "user", "split": None},
                    "metrics": ["NDCG"], "topk": [10], "valid_metric": "NDCG@10", "stopping_step": self.stopping_step,
                    "eval_step": 1, "epochs": epochs, "seed": self.seed, "reproducibility": True, "device": "cpu",
                    "use_gpu": False, "show_progress": False, "checkpoint_dir": folder, "state": "ERROR",
                    "worker": 0, "log_wandb": False, "eval_batch_size": 4096,
                    **self.fixed, **{k: v for k, v in self.config.items() if k != "epochs"}}
        return Config(model=self.model_class.__name__, dataset="peer", config_dict=settings)

    def _fit(self, users, items, ratings):
        folder = tempfile.mkdtemp(prefix="recbole_")
        try:
            os.makedirs(os.path.join(folder, "peer"))
            train = pd.DataFrame({"user_id:token": users, "item_id:token": items}).drop_duplicates()
            if self.validation is not None:
                valid_users = self.user_index(self.validation["user_id"].to_numpy())
                valid_items = self.item_index(self.validation["item_id"].to_numpy())
                keep = (valid_users >= 0) & (valid_items >= 0)
                valid = pd.DataFrame({"user_id:token": valid_users[keep], "item_id:token": valid_items[keep]})
            else:
                valid = train.head(1)  # RecBole needs a valid and a test file; without early stopping they are not read
            for part, frame in (("train", train), ("valid", valid), ("test", valid)):
                frame.to_csv(os.path.join(folder, "peer", f"peer.{part}.inter"), sep="\t", index=False)
            most = self.config.get("epochs", 1)
            epochs = most if self.validation is not None else (self.best_epochs or most)
            config = self._recbole_config(folder, epochs)
            init_seed(self.seed, True)
            torch.set_num_threads(self.threads)
            dataset = create_dataset(config)
            train_data, valid_data, _ = data_preparation(config, dataset)
            model = self.model_class(config, train_data.dataset).to("cpu")
            trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
            if self.validation is not None:
                trainer.fit(train_data, valid_data, saved=True, show_progress=False)
                state = torch.load(trainer.saved_model_file, weights_only=False)  # RecBole's own checkpoint
                model.load_state_dict(state["state_dict"])
                model.load_other_parameter(state.get("other_parameter"))
                self.best_epochs = int(state["epoch"]) + 1
            else:
                trainer.fit(train_data, None, saved=False, show_progress=False)
            model.eval()
            self._model = model
            self._recbole_user = torch.as_tensor(dataset.token2id("user_id", [str(u) for u in range(self.n_users)]))
            self._recbole_item = torch.as_tensor(dataset.token2id("item_id", [str(i) for i in range(self.n_items)]))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @torch.no_grad()
    def score_users(self, users: np.ndarray) -> torch.Tensor:
        ids = self._recbole_user[torch.as_tensor(np.asarray(users, dtype=np.int64))]
        try:
            scores = self._model.full_sort_predict(Interaction({"user_id": ids})).reshape(len(ids), -1)
            return scores[:, self._recbole_item].float()
        except NotImplementedError:  # NeuMF scores pairs only (RecBole's own evaluator then does the same)
            n = len(self._recbole_item)
            per_chunk = max(PAIRS_PER_CHUNK // n, 1)   # users per chunk: a whole block's pairs at once took 17 GB
            parts = [self._model.predict(Interaction({"user_id": chunk.repeat_interleave(n),
                                                      "item_id": self._recbole_item.repeat(len(chunk))})).reshape(len(chunk), n)
                     for chunk in ids.split(per_chunk)]
            return torch.cat(parts).float() if parts else torch.zeros((0, n))


class RecBoleNeuMF(RecBoleModel):
    """RecBole's NeuMF (He et al. 2017) with its defaults as the reference (one uniform negative per positive)."""
    name, model_class = "recbole_neumf", NeuMF
    fixed = {"train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}
    reference = {"learning_rate": 0.001, "mf_embedding_size": 64, "mlp_embedding_size": 64, "dropout_prob": 0.1,
                 "epochs": 40}

    @staticmethod
    def space(trial) -> dict:
        return {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
                "mf_embedding_size": trial.suggest_categorical("mf_embedding_size", [32, 64, 128]),
                "mlp_embedding_size": trial.suggest_categorical("mlp_embedding_size", [32, 64, 128]),
                "dropout_prob": trial.suggest_float("dropout_prob", 0.0, 0.3), "epochs": 40}


class RecBoleMultiVAE(RecBoleModel):
    """RecBole's MultiVAE (Liang et al. 2018) with its defaults as the reference."""
    name, model_class = "recbole_multivae", MultiVAE
    fixed = {"train_neg_sample_args": None}
    reference = {"learning_rate": 0.001, "latent_dimension": 128, "dropout_prob": 0.5, "anneal_cap": 0.2, "epochs": 200}

    @staticmethod
    def space(trial) -> dict:
        return {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
                "latent_dimension": trial.suggest_categorical("latent_dimension", [64, 128, 200]),
                "dropout_prob": trial.suggest_float("dropout_prob", 0.2, 0.7),
                "anneal_cap": trial.suggest_float("anneal_cap", 0.1, 1.0), "epochs": 200}


class RecBoleRecVAE(RecBoleModel):
    """RecBole's RecVAE (Shenbin et al. 2020) with its defaults as the reference."""
    name, model_class = "recbole_recvae", RecVAE
    fixed = {"train_neg_sample_args": None}
    reference = {"learning_rate": 0.001, "latent_dimension": 64, "dropout_prob": 0.5, "beta": 0.2, "epochs": 100}

    @staticmethod
    def space(trial) -> dict:
        return {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
                "latent_dimension": trial.suggest_categorical("latent_dimension", [64, 128, 200]),
                "dropout_prob": trial.suggest_float("dropout_prob", 0.2, 0.7),
                "beta": trial.suggest_float("beta", 0.05, 1.0, log=True), "epochs": 100}


class RecBoleEASE(RecBoleModel):
    """RecBole's EASE (Steck 2019): a closed form, one 'epoch'."""
    name, model_class = "recbole_ease", EASE
    fixed = {"train_neg_sample_args": None}
    reference = {"reg_weight": 250.0, "epochs": 1}

    @staticmethod
    def space(trial) -> dict:
        return {"reg_weight": trial.suggest_float("reg_weight", 10.0, 3000.0, log=True), "epochs": 1}


PEERS = {cls.name: cls for cls in (ImplicitALS, ImplicitBPR, CornacBiVAE, CornacBPR, RecBoleNeuMF, RecBoleMultiVAE,
                                     RecBoleRecVAE, RecBoleEASE)}
