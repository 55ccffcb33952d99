"""NeuMF (He et al. 2017): GMF and MLP branches fused in one output layer, optionally pretrained."""
from __future__ import annotations

import torch
from torch import nn

from helpers.models.collabnn import CollabNN
from helpers.models.registry import register


@register
class NeuMF(CollabNN):
    """NeuMF (He et al. 2017): GMF + MLP fused in one output layer, no biases.

    `pretrain=True` first trains a GMF alone (the MLP branch's output weight frozen at zero) and a
    plain MLP, `pretrain_epochs` each, then starts NeuMF from their weights, its output layer being
    the two output layers weighted 0.5 / 0.5 as in the paper.
    """
    name = "neumf"
    extra_keys = (*CollabNN.extra_keys, "pretrain", "pretrain_epochs")
    defaults = {
        task: {**cfg, "layers": [128, 64, 32], "emb_size": 32, "gmf_size": 32, "bias": False, "history": False,
               "item_item": False,
               "pretrain": False, "pretrain_epochs": None, **({"loss": "bce"} if task == "implicit" else {})}
        for task, cfg in CollabNN.defaults.items()
    }
    loss_defaults = {"bce": {**CollabNN.loss_defaults["bce"], "gmf_size": 32}}

    def fill_loss_defaults(self) -> None:
        super().fill_loss_defaults()
        if self.config.get("pretrain_epochs") is None:
            self.config["pretrain_epochs"] = self.config["epochs"]

    def pretraining_stages(self) -> list[tuple[str, CollabNN]]:
        """With `pretrain=True`: a GMF alone (the MLP branch's output weight held at zero) and a plain MLP,
        each sharing this model's id maps, trained `pretrain_epochs`; `build_module` then starts from them."""
        if not self.config.get("pretrain"):
            return []
        self.fill_loss_defaults()
        stages = []
        for part, overrides in (("gmf", {}), ("mlp", {"gmf_size": 0})):
            cfg = {k: v for k, v in self.config.items() if k not in ("pretrain", "pretrain_epochs")}
            sub = CollabNN(**{**cfg, "bias": False, "epochs": self.config["pretrain_epochs"], **overrides})
            sub.user_ids, sub.item_ids, sub.seen = self.user_ids, self.item_ids, self.seen
            sub.freeze_mlp = part == "gmf"
            stages.append((part, sub))
        return stages

    def build_module(self) -> nn.Module:
        module = super().build_module()
        init = self.init_from
        if init:
            gmf, mlp = init["gmf"], init["mlp"]
            with torch.no_grad():
                module.user_gmf.weight.copy_(gmf.user_gmf.weight)
                module.item_gmf.weight.copy_(gmf.item_gmf.weight)
                mlp_state = {k: v for k, v in mlp.state_dict().items() if not k.startswith("out.")}
                module.load_state_dict(mlp_state, strict=False)
                n_mlp = mlp.out.in_features
                module.out.weight[0, :n_mlp] = 0.5 * mlp.out.weight[0]
                module.out.weight[0, n_mlp:] = 0.5 * gmf.out.weight[0, -module.gmf_size:]
                module.out.bias[0] = 0.5 * (mlp.out.bias[0] + gmf.out.bias[0])
        return module

