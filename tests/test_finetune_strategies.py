"""finetune.strategy: which weights train under frozen, ridge, lora, ia3, dora, full and
two_stage, on a pretrained encoder with batch norm and dropout (the dual-branch conformer),
and how a fine-tuned model with adapters exports and loads back."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from sklearn.linear_model import RidgeClassifier
from torch import nn
from torch.utils.data import DataLoader

from neurodecode import train
from neurodecode.errors import CheckpointError, ConfigError
from neurodecode.finetune import (
    STRATEGIES,
    adapter_targets,
    initialise,
    model_for_task,
    read_init_source,
)
from neurodecode.hub import build_model, export_model, export_run, from_pretrained
from neurodecode.models.adapters import (
    adapter_layers,
    add_adapters,
    fit_ridge,
    merge_adapters,
    write_linear_head,
)
from neurodecode.models.heads import MLPHead
from neurodecode.tasks.classification import ClassificationTask

NAMES = ["Fp1", "Fp2", "C3", "C4"]
SFREQ, N_TIMES = 128.0, 128
MODEL = {"_target_": "dual_branch_conformer", "size": "tiny", "dropout": 0.25}


def encoder(n_outputs: int = 2) -> nn.Module:
    arch = {k: v for k, v in MODEL.items() if k != "_target_"}
    return build_model(MODEL["_target_"], n_chans=4, n_outputs=n_outputs, n_times=N_TIMES,
                       sfreq=SFREQ, **arch)  # fmt: skip


def windows(n: int, seed: int) -> list[dict[str, object]]:
    """Two classes told apart by a 10 Hz rhythm on the first channel."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(N_TIMES) / SFREQ
    out = []
    for i in range(n):
        x = torch.randn(4, N_TIMES, generator=generator)
        x[0] += 2.0 * (i % 2) * torch.sin(2 * torch.pi * 10 * t)
        out.append({"x": x, "y": i % 2})
    return out


class Windows(L.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        self.parts = {"train": windows(32, 0), "val": windows(16, 1), "test": windows(16, 2)}

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.parts["train"], batch_size=8, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.parts["val"], batch_size=8)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.parts["test"], batch_size=8)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A pretrained encoder (weights and batch-norm statistics off their initial values)."""
    torch.manual_seed(0)
    model = encoder(n_outputs=3)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 4, N_TIMES))  # batch-norm statistics move
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    folder = export_model(model, tmp_path_factory.mktemp("pretrained"), ch_names=NAMES)
    return read_init_source(folder)


def task_for(source, strategy: str, **settings) -> ClassificationTask:
    torch.manual_seed(1)
    task = ClassificationTask(model=MODEL, n_chans=4, n_outputs=2, n_times=N_TIMES, sfreq=SFREQ,
                              ch_names=NAMES, lr=1e-2, warmup_fraction=0.0)  # fmt: skip
    initialise(task, source, sfreq=SFREQ, strategy=strategy, **settings)
    return task


def fit(task: ClassificationTask, epochs: int = 1, callbacks=()) -> None:
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=list(callbacks))  # fmt: skip
    trainer.fit(task, datamodule=Windows())


def encoder_state(task, *, head: bool = False) -> dict[str, torch.Tensor]:
    """The encoder's weights and buffers outside (or, with ``head``, inside) its head."""
    return {
        k: v.detach().clone()
        for k, v in task.encoder.state_dict().items()
        if k.startswith("final_layer.") == head
    }


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_frozen_trains_the_head_and_leaves_every_encoder_tensor_bit_identical(pretrained):
    task = task_for(pretrained, "frozen")
    before, head = encoder_state(task), encoder_state(task, head=True)
    assert any(k.endswith("running_mean") for k in before)  # batch norm is there to move
    fit(task, epochs=2)
    assert same(encoder_state(task), before)
    assert not same(encoder_state(task, head=True), head)


class Snapshots(L.Callback):
    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.states.append(encoder_state(pl_module))


def test_two_stage_trains_the_head_first_then_everything_with_layer_decay(pretrained):
    task = task_for(pretrained, "two_stage", head_epochs=1)
    before, snapshots = encoder_state(task), Snapshots()
    # the optimiser holds the frozen encoder's weights too, for the second stage
    assert sum(len(g["params"]) for g in task.param_groups) == len(list(task.parameters()))
    fit(task, epochs=2, callbacks=[snapshots])
    assert same(snapshots.states[0], before)
    assert not same(snapshots.states[1], before)
    assert all(p.requires_grad for p in task.encoder.parameters())


def test_two_stage_on_a_random_initialisation_still_optimises_every_weight_later():
    task = task_for(None, "two_stage")
    assert not any(p.requires_grad for p in task.encoder.temporal_embedding.parameters())
    assert sum(len(g["params"]) for g in task.param_groups) == len(list(task.parameters()))
    assert {g["lr"] for g in task.param_groups} == {task.lr}  # no decay without pretraining


def test_full_trains_every_weight_with_layer_decay(pretrained):
    task = task_for(pretrained, "full", layer_decay=0.5)
    assert all(p.requires_grad for p in task.encoder.parameters())
    assert sum(len(g["params"]) for g in task.param_groups) == len(list(task.parameters()))
    assert not task.callbacks and task.head_fit is None


@pytest.mark.parametrize("kind", ["lora", "ia3", "dora"])
def test_adapters_and_the_head_train_alone_and_the_export_merges_them(pretrained, kind, tmp_path):
    task = task_for(pretrained, kind, targets=["qkv", "out"], adapter={"rank": 4})
    trainable = {n for n, p in task.encoder.named_parameters() if p.requires_grad}
    assert trainable and all(
        n.startswith("final_layer.") or f"{kind[:3]}_" in n or "lora_" in n for n in trainable
    ), trainable
    adapted = {name for name, _ in adapter_layers(task.encoder)}
    assert adapted and all(name.endswith((".qkv", ".out")) for name in adapted)
    base = {k: v for k, v in encoder_state(task).items() if ".base_layer." in k or k in dict(
        (n, None) for n, _ in task.encoder.named_buffers())}  # fmt: skip
    adapters = {n: p.detach().clone() for n, p in task.encoder.named_parameters()
                if p.requires_grad and not n.startswith("final_layer.")}  # fmt: skip
    fit(task)
    after = encoder_state(task)
    assert all(torch.equal(after[k], v) for k, v in base.items() if ".base_layer." in k)
    assert any(not torch.equal(p, adapters[n]) for n, p in task.encoder.named_parameters()
               if n in adapters)  # fmt: skip

    encoder = task.encoder.eval()
    assert not same(merge_adapters(encoder).state_dict(), pretrained.state)  # adapters merged
    folder = export_model(encoder, tmp_path / "export", ch_names=NAMES)
    assert adapter_layers(encoder)  # exporting did not change the trained model
    loaded = from_pretrained(folder).model.eval()
    assert not adapter_layers(loaded)
    x = torch.randn(5, 4, N_TIMES)
    assert same(loaded.state_dict(), merge_adapters(encoder).state_dict())  # bit for bit
    with torch.no_grad():  # merging changes only the rounding of the sums
        torch.testing.assert_close(loaded(x), encoder(x), atol=1e-5, rtol=1e-4)


def test_a_wrong_adapter_target_lists_the_layers_that_exist():
    model = encoder()
    with pytest.raises(ConfigError, match="'qvk' names no adaptable layer") as err:
        add_adapters(model, "lora", ["qkv", "qvk"])
    assert "qkv, " in str(err.value) and "proj" in str(err.value)
    with pytest.raises(ConfigError, match="peft_targets"):
        add_adapters(model, "lora", None)
    assert not adapter_layers(model)  # nothing was added


def test_the_head_never_receives_adapters():
    model = encoder()
    with pytest.raises(ConfigError, match="names no adaptable layer"):
        add_adapters(model, "lora", ["final_layer.layers.1"])


def test_ridge_fits_the_head_in_closed_form_and_leaves_the_encoder_unchanged(pretrained):
    task = task_for(pretrained, "ridge", ridge_alphas=[0.1, 10.0])
    before = encoder_state(task)
    assert task.closed_form and not any(p.requires_grad for p in task.parameters())
    datamodule = Windows()
    task.fit_closed_form(datamodule)
    assert same(encoder_state(task), before)
    batch = next(iter(DataLoader(datamodule.parts["train"], batch_size=32)))
    with torch.no_grad():
        accuracy = (task.eval()(batch).argmax(1) == batch["y"]).float().mean()
    assert accuracy > 0.9  # the 10 Hz rhythm is linearly visible in the frozen features


def test_ridge_is_scikit_learns_balanced_ridge_classifier_at_one_of_the_given_penalties():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    x = rng.normal(size=(60, 5)) + y[:, None] * [1.0, 0, 0, 0, 0]
    weight, bias, alpha = fit_ridge((x[:40], y[:40]), (x[40:], y[40:]), 2, [0.1, 1.0, 100.0])
    reference = RidgeClassifier(alpha=alpha, class_weight="balanced").fit(x[:40], y[:40])
    coef = reference.coef_.reshape(-1)  # one score for two classes: class 1's
    np.testing.assert_allclose(weight[1].numpy(), coef, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weight[0].numpy(), -coef, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias[1].numpy(), reference.intercept_.reshape(-1)[0], rtol=1e-5)
    assert alpha in (0.1, 1.0, 100.0)
    with pytest.raises(ConfigError, match="positive"):
        fit_ridge((x, y), None, 2, [0.0])


@pytest.mark.parametrize("head", ["mlp", "linear"])
def test_a_linear_map_is_written_exactly_into_the_head(head):
    torch.manual_seed(0)
    model = nn.Module()
    model.final_layer = MLPHead(6, 3, hidden=8) if head == "mlp" else nn.Linear(6, 3)
    weight, bias, h = torch.randn(3, 6), torch.randn(3), torch.randn(10, 6)
    write_linear_head(model, weight, bias)
    normed = nn.functional.layer_norm(h, (6,)) if head == "mlp" else h
    with torch.no_grad():
        torch.testing.assert_close(model.final_layer.eval()(h), normed @ weight.T + bias)


def test_ridge_refuses_a_head_a_linear_map_does_not_fit_into():
    model = nn.Module()
    model.final_layer = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                                      nn.Linear(8, 2))  # fmt: skip
    with pytest.raises(ConfigError, match="strategy=frozen"):
        write_linear_head(model, torch.zeros(2, 6), torch.zeros(2))


def test_unknown_strategies_and_settings_are_refused(pretrained):
    with pytest.raises(ConfigError, match="did you mean 'frozen'"):
        task_for(pretrained, "frozn")
    with pytest.raises(ConfigError, match="head_epochs"):
        task_for(pretrained, "two_stage", head_epochs=0)
    with pytest.raises(ConfigError, match="rnak"):
        task_for(pretrained, "lora", targets=["qkv"], adapter={"rnak": 4})
    with pytest.raises(ConfigError, match="finetune.mode"):  # the key before strategies
        task_for(pretrained, "frozen", mode="linear_probe")
    assert STRATEGIES == ("frozen", "ridge", "lora", "ia3", "dora", "full", "two_stage")


def test_a_closed_form_encoder_takes_only_the_full_strategy():
    task = ClassificationTask(model={"_target_": "csp_lda"}, n_chans=4, n_outputs=2,
                              n_times=N_TIMES, sfreq=SFREQ)  # fmt: skip
    assert initialise(task, None, strategy="full") is None
    with pytest.raises(ConfigError, match="closed form"):
        initialise(task, None, strategy="frozen")


def test_configs_name_the_adapter_targets_outside_the_model_arguments():
    for model in ("dual_branch_conformer", "patch_conformer"):
        cfg = train.compose(["recipe=seizure", "data=simulated", f"model={model}"])
        assert list(cfg.finetune.targets) == ["qkv", "out"]
        assert cfg.finetune.strategy == "full"
        built = model_for_task(dict(cfg.model), None)
        assert "peft_targets" not in built
    cfg = train.compose(["recipe=seizure", "data=simulated", "model=eegnet"])
    assert cfg.finetune.targets is None


@pytest.fixture(scope="module")
def pretraining_encoder(tmp_path_factory):
    """A pretraining encoder (patch conformer, any montage) exported at the recipe's 128 Hz."""
    torch.manual_seed(0)
    model = build_model("patch_conformer", n_chans=4, n_outputs=1, n_times=512, sfreq=SFREQ,
                        patch_s=0.5, dim=16, depth=1, n_heads=2, head_hidden=16)  # fmt: skip
    return export_model(model, tmp_path_factory.mktemp("pretraining") / "encoder", ch_names=NAMES)


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    """One NEURODECODE_HOME for the runs below, so the simulated data are built once."""
    patch = pytest.MonkeyPatch()
    patch.setenv("NEURODECODE_HOME", str(tmp_path_factory.mktemp("home")))
    yield
    patch.undo()


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ridge", "lora"])
def test_a_recipe_fine_tunes_the_pretraining_encoder_with_a_strategy(
    shared_home, pretraining_encoder, strategy, tmp_path, caplog
):
    overrides = [
        "recipe=seizure", "data=simulated", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
        "preprocess.windows.stride_s=4", "data.datamodule.batch_size=64",
        f"init_from={pretraining_encoder}", f"finetune.strategy={strategy}",
    ]  # fmt: skip
    with caplog.at_level("INFO", logger="neurodecode.finetune"):
        results = train.run(train.compose(overrides), tmp_path / "run", recipe="seizure")
    assert results["metrics"]["test"]["window"]["n"] > 0
    pretrained = read_init_source(pretraining_encoder).state
    if strategy == "ridge":  # fitted in closed form: no epoch, no checkpoint
        assert results["metrics"]["epochs_trained"] == 0
        assert "ridge head fitted in closed form" in caplog.text
        return
    assert "lora adapters on 4 layers" in caplog.text
    export_run(tmp_path / "run", tmp_path / "export")
    loaded = from_pretrained(tmp_path / "export").model
    assert not adapter_layers(loaded)
    merged = loaded.state_dict()
    assert not torch.equal(merged["layers.0.temporal.attn.qkv.weight"],
                           pretrained["layers.0.temporal.attn.qkv.weight"])  # fmt: skip
    untouched = [k for k in pretrained if ".attn." not in k and not k.startswith("final_layer.")]
    assert untouched and all(torch.equal(merged[k], pretrained[k]) for k in untouched)

    # the run starts another one (init_from), its adapters merged; its bare checkpoint can't
    last = export_run(tmp_path / "run", tmp_path / "last", checkpoint="last")
    assert same(read_init_source(tmp_path / "run").state, read_init_source(last).state)
    with pytest.raises(CheckpointError, match="adapters"):
        read_init_source(tmp_path / "run" / "checkpoints" / "last.ckpt")


@pytest.fixture(scope="module")
def braindecode_source(tmp_path_factory):
    """braindecode's EEGConformer, 'pretrained' for three classes (its head is
    ``net.final_layer``, reached through the wrapper's ``final_layer`` property)."""
    pytest.importorskip("braindecode")
    torch.manual_seed(0)
    model = build_model("braindecode", name="EEGConformer", n_chans=4, n_outputs=3,
                        n_times=N_TIMES, sfreq=SFREQ)  # fmt: skip
    folder = export_model(model, tmp_path_factory.mktemp("braindecode") / "m", ch_names=NAMES)
    return read_init_source(folder)


def braindecode_task(source, strategy: str, **settings) -> ClassificationTask:
    torch.manual_seed(1)
    model = {"_target_": "braindecode", "name": "EEGConformer"}
    task = ClassificationTask(model=model, n_chans=4, n_outputs=2, n_times=N_TIMES, sfreq=SFREQ,
                              ch_names=NAMES, lr=1e-2, warmup_fraction=0.0)  # fmt: skip
    report = initialise(task, source, sfreq=SFREQ, strategy=strategy, **settings)
    assert report.missing == ["net.final_layer.bias", "net.final_layer.weight"]  # a new head
    return task


def test_strategies_work_on_a_braindecode_model_whose_head_sits_elsewhere(braindecode_source):
    task = braindecode_task(braindecode_source, "frozen")
    before = {k: v for k, v in encoder_state(task).items() if not k.startswith("net.final")}
    fit(task)
    after = encoder_state(task)
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert not same(after, before)  # the head trained

    task = braindecode_task(braindecode_source, "lora", targets=["queries", "values"])
    adapted = [name for name, _ in adapter_layers(task.encoder)]
    assert adapted and all(name.endswith((".queries", ".values")) for name in adapted)
    with pytest.raises(ConfigError, match="names no adaptable layer"):
        add_adapters(encoder_of(braindecode_source), "lora", ["final_layer"])

    task = braindecode_task(braindecode_source, "ridge")
    task.fit_closed_form(Windows())
    assert all(torch.equal(encoder_state(task)[k], v) for k, v in before.items())


def encoder_of(source) -> nn.Module:
    arguments = {k: v for k, v in source.model.items() if k != "_target_"}
    return build_model(source.model["_target_"], **arguments)


def test_adapters_go_on_the_layers_of_the_architecture_init_from_builds():
    """The motor-imagery recipe's model names its own layers (``spatial_filters``); a
    pretrained patch conformer fine-tuned from it takes its own config's ``[qkv, out]``,
    while targets given explicitly are kept."""
    recipe = {"_target_": "log_variance_net", "peft_targets": ["spatial_filters"]}
    built = {"_target_": "neurodecode.models.patch_conformer.PatchConformer"}
    assert adapter_targets(["spatial_filters"], recipe, built) == ["qkv", "out"]
    assert adapter_targets(["qkv"], recipe, built) == ["qkv"]
    assert adapter_targets(["spatial_filters"], recipe, {"_target_": "log_variance_net"}) == [
        "spatial_filters"
    ]
