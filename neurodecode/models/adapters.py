"""Fine-tuning operations on any encoder (``torch.nn.Module`` with a ``final_layer`` head).

Nothing here knows an architecture: the modules that receive adapters are named by the
caller (the model config's ``peft_targets``), and the head is found by its name,
:data:`~neurodecode.models.base.FINAL_LAYER`. So the same code serves neurodecode's
encoders and braindecode's foundation models.

* :func:`freeze_encoder`: every weight outside the head stops training;
* :func:`add_adapters`: LoRA, IA3 or DoRA adapters from the ``peft`` library on the named
  modules, in place (the model keeps its class and its ``forward``); only the adapters and
  the head train;
* :func:`merge_adapters`: a copy with the adapters merged into the base weights and the
  adapter layers removed, i.e. the plain model an export writes and loads back;
* :func:`fit_ridge` and :func:`write_linear_head`: a closed-form ridge classifier on frozen
  features, written into the head so the result is a normal model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import Ridge, RidgeClassifierCV
from sklearn.metrics import balanced_accuracy_score
from sklearn.utils.class_weight import compute_sample_weight
from torch import Tensor, nn

from neurodecode.errors import ConfigError
from neurodecode.models.base import FINAL_LAYER

#: A model config's key naming the layers that receive adapters (not a model argument).
PEFT_TARGETS = "peft_targets"
#: Adapter kinds of ``peft`` that :func:`add_adapters` builds.
ADAPTERS = ("lora", "ia3", "dora")
#: Layer types ``peft`` can put an adapter on.
ADAPTABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)
#: Activations ``f`` with ``f(z) - f(-z) = z``: a hidden layer of them can carry a linear map.
ODD_PART_IDENTITY = (nn.GELU, nn.SiLU, nn.ReLU)


def model_arguments(model: Mapping[str, Any]) -> dict[str, Any]:
    """A model config without :data:`PEFT_TARGETS`: what the model is built with."""
    return {k: v for k, v in model.items() if k != PEFT_TARGETS}


def head_of(model: nn.Module) -> nn.Module:
    """The classification head ``model.final_layer``.

    Raises
    ------
    ConfigError
        If ``model`` has no ``final_layer``.
    """
    head = getattr(model, FINAL_LAYER, None)
    if not isinstance(head, nn.Module):
        raise ConfigError(
            f"{type(model).__name__} has no classification head '{FINAL_LAYER}'; fine-tuning "
            "strategies need one (braindecode's signal contract)"
        )
    return head


def head_prefix(model: nn.Module) -> str:
    """Where the head's weights sit in ``model.state_dict()``: ``"final_layer."``, or e.g.
    ``"net.final_layer."`` for a wrapper whose ``final_layer`` is a property."""
    head = head_of(model)
    return next(f"{name}." for name, module in model.named_modules() if module is head)


def freeze_encoder(model: nn.Module) -> None:
    """Stop every parameter outside the head from training; the head trains."""
    head = {id(p) for p in head_of(model).parameters()}
    for parameter in model.parameters():
        parameter.requires_grad = id(parameter) in head


def train_head_only(model: nn.Module) -> None:
    """Evaluation mode for the model (no dropout, batch-norm statistics kept), training
    mode for its head: a frozen encoder computes what it computed when loaded."""
    model.eval()
    head_of(model).train()


def adaptable_modules(model: nn.Module) -> list[str]:
    """Names of the layers outside the head that can receive an adapter.

    The head is told by identity, not by name: a wrapper may expose a head that lives
    elsewhere in its module tree (neurodecode's braindecode models: ``net.final_layer``).
    """
    head = {id(module) for module in head_of(model).modules()}
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, ADAPTABLE) and id(module) not in head
    ]


def resolve_targets(model: nn.Module, targets: Sequence[str] | str | None) -> list[str]:
    """The full names of the layers that ``targets`` name (a name or the end of one).

    ``"qkv"`` names every ``....qkv`` layer, ``"attn.out"`` every ``....attn.out``; the head
    never receives adapters.

    Raises
    ------
    ConfigError
        If no targets are given, or one names no adaptable layer; the message lists the
        layers that exist.
    """
    available = adaptable_modules(model)
    endings = sorted({name.rsplit(".", 1)[-1] for name in available})
    listing = f"adaptable layers of {type(model).__name__}: {', '.join(endings)} (full names: "
    listing += f"{', '.join(available[:12])}{', ...' if len(available) > 12 else ''})"
    if not targets:
        raise ConfigError(
            f"adapters need target modules; {listing}",
            hint="set peft_targets in the model config or finetune.targets=[...]",
        )
    chosen: list[str] = []
    for target in [targets] if isinstance(targets, str) else list(targets):
        found = [n for n in available if n == target or n.endswith(f".{target}")]
        if not found:
            raise ConfigError(f"peft target {target!r} names no adaptable layer; {listing}")
        chosen += [n for n in found if n not in chosen]
    return chosen


def add_adapters(
    model: nn.Module,
    kind: str,
    targets: Sequence[str] | str | None,
    *,
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
) -> list[str]:
    """Put ``peft`` adapters of ``kind`` on the layers ``targets`` name, in place.

    Afterwards only the adapters and the head train. The model keeps its class, its
    ``forward`` and its head; :func:`merge_adapters` turns it back into a plain model.

    Parameters
    ----------
    model : torch.nn.Module
        An encoder with a ``final_layer`` head.
    kind : {"lora", "ia3", "dora"}
        LoRA (low-rank updates), IA3 (learned rescaling) or DoRA (LoRA on the direction of
        each weight, with a learned magnitude).
    targets : str or sequence of str
        Layer names or name endings (see :func:`resolve_targets`).
    rank, alpha, dropout : int, float, float
        LoRA/DoRA rank, scaling (the update is multiplied by ``alpha / rank``) and dropout
        on the adapter's input; IA3 has none of them.

    Returns
    -------
    list of str
        The full names of the layers that received an adapter.
    """
    if kind not in ADAPTERS:
        raise ConfigError(f"unknown adapter {kind!r}; expected one of {', '.join(ADAPTERS)}")
    names = resolve_targets(model, targets)
    try:
        import peft  # optional: the "finetune" extra
    except ImportError as err:
        raise ConfigError(
            f"finetune.strategy={kind} needs the peft package",
            hint='pip install "neurodecode[finetune]"',
        ) from err
    if kind == "ia3":
        config: Any = peft.IA3Config(target_modules=names, feedforward_modules=[])
    else:
        config = peft.LoraConfig(
            r=rank,
            lora_alpha=alpha,
            lora_dropout=dropout,
            target_modules=names,
            use_dora=kind == "dora",
        )
    peft.inject_adapter_in_model(config, model)  # marks only the adapters trainable
    for parameter in head_of(model).parameters():
        parameter.requires_grad = True
    return names


def adapter_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, layer)`` of every ``peft`` adapter layer in ``model`` (none without peft)."""
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:  # without peft there can be no adapter layers
        return []
    return [(n, m) for n, m in model.named_modules() if isinstance(m, BaseTunerLayer)]


def holds_adapters(state: Mapping[str, Any]) -> bool:
    """Whether the weights ``state`` are those of a model with ``peft`` adapters."""
    return any(".base_layer." in name for name in state)


def merge_adapters(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with its adapters merged into the base weights and removed.

    The copy has the parameter names and classes of the model before :func:`add_adapters`,
    so it exports and loads back like any other; ``model`` itself is not changed. A model
    without adapters is returned as it is.
    """
    if not adapter_layers(model):
        return model
    merged = copy.deepcopy(model)
    for name, layer in adapter_layers(merged):
        layer.merge(safe_merge=True)  # refuses weights that became NaN or infinite
        parent, _, child = name.rpartition(".")
        setattr(merged.get_submodule(parent), child, layer.get_base_layer())
    return merged


def ridge_input_layer(model: nn.Module) -> nn.Linear:
    """The head's first linear layer, whose input the ridge classifier is fitted on.

    Raises
    ------
    ConfigError
        If the head is neither one linear layer nor linear → GELU/SiLU/ReLU → linear (with
        a hidden layer of at least twice ``n_outputs``), the heads a linear map fits into.
    """
    head = head_of(model)
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    odd = any(isinstance(m, ODD_PART_IDENTITY) for m in head.modules())
    fits = len(linears) == 1 or (
        len(linears) == 2 and odd and linears[0].out_features >= 2 * linears[1].out_features
    )
    if not fits:
        raise ConfigError(
            f"finetune.strategy=ridge writes a linear map into the head, but the "
            f"{FINAL_LAYER} of {type(model).__name__} is {head!r}",
            hint="use strategy=frozen, which trains the head by gradient descent",
        )
    return linears[0]


def write_linear_head(model: nn.Module, weight: Tensor, bias: Tensor) -> None:
    """Make the head compute ``weight @ h + bias`` of the input ``h`` of its first linear layer.

    A head of one linear layer receives the map as it is. A head linear → activation →
    linear with ``f(z) - f(-z) = z`` (GELU, SiLU, ReLU) receives it exactly: the hidden
    layer computes ``f(W h)`` and ``f(-W h)`` (other units 0) and the last layer their
    difference plus the bias; dropout between them is off in evaluation.
    """
    first = ridge_input_layer(model)
    linears = [m for m in head_of(model).modules() if isinstance(m, nn.Linear)]
    weight = weight.to(first.weight)
    bias = bias.to(first.weight)
    with torch.no_grad():
        if len(linears) == 1:
            first.weight.copy_(weight)
            first.bias.copy_(bias)
            return
        last, k = linears[1], weight.shape[0]
        first.weight.zero_()
        first.weight[:k] = weight
        first.weight[k : 2 * k] = -weight
        first.bias.zero_()
        last.weight.zero_()
        last.weight[:, :k] = torch.eye(k)
        last.weight[:, k : 2 * k] = -torch.eye(k)
        last.bias.copy_(bias)


def fit_ridge(
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray] | None,
    n_outputs: int,
    alphas: Sequence[float],
) -> tuple[Tensor, Tensor, float]:
    """Closed-form ridge classifier on features, its penalty chosen on validation.

    Each class is a ±1 target (scikit-learn's ``RidgeClassifier``), windows are weighted so
    that every class counts equally, and the penalty of ``alphas`` with the best balanced
    accuracy on ``validation`` is kept (the largest on ties); without validation windows,
    scikit-learn's leave-one-out ``RidgeClassifierCV`` chooses it on the training windows.

    Parameters
    ----------
    train, validation : (features, labels)
        ``(n, n_features)`` features and ``(n,)`` integer class labels.
    n_outputs : int
        Number of classes (a class without training windows is never predicted).
    alphas : sequence of float
        Penalties to try.

    Returns
    -------
    weight, bias : Tensor
        ``(n_outputs, n_features)`` and ``(n_outputs,)``: the class scores.
    alpha : float
        The penalty chosen.
    """
    x, y = train
    if not len(alphas) or min(alphas) <= 0:
        raise ConfigError(f"finetune.ridge_alphas must be positive numbers, got {list(alphas)}")
    targets = np.where(y[:, None] == np.arange(n_outputs)[None], 1.0, -1.0)
    weights = compute_sample_weight("balanced", y)
    if validation is None or not len(validation[1]):
        cv = RidgeClassifierCV(alphas=list(alphas), class_weight="balanced").fit(x, y)
        best = float(cv.alpha_)
    else:
        scores = {}
        for alpha in sorted(alphas):
            ridge = Ridge(alpha=alpha).fit(x, targets, sample_weight=weights)
            predicted = ridge.predict(validation[0]).argmax(axis=1)
            scores[alpha] = balanced_accuracy_score(validation[1], predicted)
        best = max(sorted(scores, reverse=True), key=lambda a: scores[a])
    ridge = Ridge(alpha=best).fit(x, targets, sample_weight=weights)
    weight = torch.as_tensor(ridge.coef_, dtype=torch.float32).reshape(n_outputs, -1)
    bias = torch.as_tensor(ridge.intercept_, dtype=torch.float32).reshape(n_outputs)
    return weight, bias, best
