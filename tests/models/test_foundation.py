"""braindecode's foundation models under neurodecode's contract: channels mapped through
data.montage, the rate resampled or refused, units checked (models.foundation)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from neurodecode.data.montage import DOUBLE_BANANA, SZCORE_19, channel_positions
from neurodecode.errors import ChannelError, ConfigError, ContractError, UnknownNameError
from neurodecode.models.foundation import check_units, fft_resample
from neurodecode.registry import MODELS
from tests.models.foundation_cases import REVE_TINY, TINY, named_chs


def build(name: str, n_chans: int = 19, n_times: int = 512, sfreq: float = 128.0, **extra):
    names = extra.pop("names", SZCORE_19)
    return MODELS.build(name, n_chans=n_chans, n_outputs=2, n_times=n_times, sfreq=sfreq,
                        chs_info=named_chs(n_chans, tuple(names)), **{**TINY.get(name, {}), **extra})  # fmt: skip


def test_fft_resampling_is_band_limited_and_exact_for_periodic_signals():
    t_in, t_out = torch.arange(512) / 128.0, torch.arange(800) / 200.0
    wave = lambda t: torch.sin(2 * math.pi * 5 * t) + 0.5 * torch.cos(2 * math.pi * 31 * t)  # noqa: E731
    out = fft_resample(wave(t_in)[None, None], 800)
    torch.testing.assert_close(out[0, 0], wave(t_out), atol=1e-4, rtol=0)
    assert fft_resample(wave(t_in), 512) is not None


def test_other_rate_is_resampled_inside_the_model_or_refused():
    model = build("cbramod")  # data at 128 Hz, model at 200 Hz
    assert (model.model_times, model.report()["resampled"]) == (800, True)
    assert model.to_model(torch.randn(2, 19, 512)).shape == (2, 19, 800)
    assert model(torch.randn(2, 19, 512)).shape == (2, 2)
    with pytest.raises(ContractError, match=r"200 Hz.*128 Hz") as err:
        build("cbramod", on_other_sfreq="refuse")
    assert "preprocess.resample=200" in str(err.value)
    with pytest.raises(ConfigError, match="on_other_sfreq"):
        build("cbramod", on_other_sfreq="maybe")


def test_bipolar_model_channels_are_derived_from_referential_data():
    model = build("biot", channels="double_banana", on_other_sfreq="refuse", model_sfreq=128.0)
    x = torch.randn(2, 19, 512)
    derived = model.to_model(x)
    fp1, f7 = SZCORE_19.index("Fp1"), SZCORE_19.index("F7")
    torch.testing.assert_close(derived[:, 0], x[:, fp1] - x[:, f7])
    assert model.mapping.names("derived") == list(DOUBLE_BANANA)
    assert model.report()["channels"]["derivations"]["Fp1-F7"] == "Fp1 - F7"


def test_channels_the_data_cannot_give_are_refused_by_name_unless_allowed():
    with pytest.raises(ChannelError, match=r"cannot give: Fp1, Fp2, F3") as err:
        build("labram", n_chans=18, names=DOUBLE_BANANA, channels="szcore_19")
    assert "allow_missing_channels=true" in str(err.value)
    model = build("labram", n_chans=18, names=DOUBLE_BANANA, channels="szcore_19",
                  allow_missing_channels=True)  # fmt: skip
    assert model.report()["channels"]["missing"] == list(SZCORE_19)
    assert not model.to_model(torch.randn(1, 18, 512)).any()


def test_channels_a_model_has_no_embedding_for_are_refused():
    with pytest.raises(ChannelError, match="no embedding for channel.*Fp1-O2"):
        build("labram", channels=["Fp1", "Fp1-O2"])


def test_models_that_place_channels_by_name_need_the_names():
    with pytest.raises(ChannelError, match="needs the data's channel names"):
        MODELS.build("labram", n_chans=19, n_outputs=2, n_times=512, sfreq=128.0, **TINY["labram"])


def test_unknown_braindecode_class_lists_the_available_ones():
    with pytest.raises(
        UnknownNameError, match=r"NoSuchNet.*Labram.*CBraMod|NoSuchNet.*CBraMod.*Labram"
    ):
        MODELS.build("braindecode", name="NoSuchNet", n_chans=3, n_outputs=2, n_times=256, sfreq=128.0)  # fmt: skip


@pytest.mark.parametrize(
    ("expected", "scaling", "ok"),
    [
        ("uV/100", {"method": "fixed", "scale_uv": 100.0}, True),
        ("mV", {"method": "fixed", "scale_uv": 1000.0}, True),
        ("uV", {"method": "fixed", "scale_uv": 1.0}, True),
        ("normalised", {"method": "robust_zscore"}, True),
        ("uV/100", {"method": "robust_zscore"}, False),
        ("uV/100", {"method": "fixed", "scale_uv": 1.0}, False),
        ("normalised", {"method": "fixed", "scale_uv": 100.0}, False),
    ],
)
def test_units_other_than_the_pretrained_ones_are_refused(expected, scaling, ok):
    if ok:
        check_units("m", expected, scaling)
        return
    with pytest.raises(ContractError, match=f"pretrained on inputs in {expected}") as err:
        check_units("m", expected, scaling)
    assert "preprocess.scaling.method=" in str(err.value)


def test_the_pretraining_rate_must_be_given():
    with pytest.raises(ConfigError, match="needs model_sfreq"):
        build("cbramod", model_sfreq=None)


def test_unknown_units_are_a_config_error():
    with pytest.raises(ConfigError, match="input_units"):
        build("cbramod", input_units="volts")


def test_reve_places_channels_by_position(tmp_path, monkeypatch):
    """REVE reads its position bank (normally downloaded); a stand-in from MNE's 10-05
    positions is written here so that nothing is downloaded."""
    bank = dict(zip(SZCORE_19, channel_positions(SZCORE_19).tolist(), strict=True))
    (tmp_path / "reve_positions.json").write_text(json.dumps(bank))
    monkeypatch.setenv("REVE_POSITIONS_PATH", str(tmp_path))
    model = build("reve", **REVE_TINY)
    assert model(torch.randn(2, 19, 512)).shape == (2, 2)
    assert model(torch.randn(2, 19, 512), return_features=True).shape[0] == 2


def test_without_model_channels_the_data_channels_go_in_as_they_are():
    # model.channels=null: a file's unnamed channels (the Graz sample's "Channel 1", ...)
    # reach a model that does not place channels by name; known names are canonical
    names = ("Channel 1", "Channel 2", "EEG C4-REF")
    model = build("cbramod", n_chans=3, names=names, channels=None)
    assert model.identity_mapping
    assert model.mapping.target == ["Channel 1", "Channel 2", "C4"]
    assert model.report()["channels"]["matched"] == ["Channel 1", "Channel 2", "C4"]
    x = torch.randn(2, 3, 512)
    assert model(x).shape == (2, 2)
    with pytest.raises(ChannelError, match="no embedding for channel.*Channel 1"):
        build("labram", n_chans=3, names=names, channels=None)
