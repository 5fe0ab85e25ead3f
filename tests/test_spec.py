"""Dataset specs and original-format configs: resolution, defaults and one-line errors."""
from __future__ import annotations

import json

import pytest
import yaml

from fomm_convert.spec import SpecError, available_specs, load_spec

from conftest import FIXTURES, SPEC_TABLES, TPSMM_SPEC_TABLES


def test_every_dataset_has_a_spec():
    assert available_specs() == sorted({**SPEC_TABLES, **TPSMM_SPEC_TABLES})


@pytest.mark.parametrize("name", sorted(SPEC_TABLES))
def test_spec_model_params_equal_upstream(name):
    """Each spec's model parameters are those of the upstream config (fact table's record)."""
    spec = load_spec(name)
    table = json.loads((FIXTURES / "statedicts" / f"{SPEC_TABLES[name]}.json").read_text())
    upstream = {k: v for k, v in table["config"].items() if k != "discriminator_params"}
    resolved = spec.model_params()
    for section, params in upstream.items():
        for key, value in params.items():
            if key == "dense_motion_params":
                for k, v in value.items():
                    assert resolved[section][key][k] == v, (name, k)
            else:
                assert resolved[section][key] == value, (name, section, key)
    assert list(spec.frame_shape) == table["frame_shape"]


def test_checkpoint_names():
    assert load_spec("fashion").checkpoint == "fashion.pth.tar"
    assert load_spec("vox").checkpoint == "vox-cpk.pth.tar"
    assert load_spec("taichi-adv").checkpoint == "taichi-adv-cpk.pth.tar"


def test_original_config_defaults():
    spec = load_spec(FIXTURES / "configs" / "tiny-pad.yaml")
    assert spec.frame_shape == (64, 64, 3)
    assert spec.kp_detector["pad"] == 3
    assert spec.kp_detector["single_jacobian_map"] is False
    assert spec.dense_motion["kp_variance"] == 0.01
    assert spec.align_corners is False
    assert spec.settings["normalization"] == {"relative": True, "adapt_scale": False}  # its
    # animate_params
    assert spec.checkpoint is None


def _write(tmp_path, data, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _vox(tmp_path):
    return yaml.safe_load((load_spec("vox").path).read_text())


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["model_params"]["kp_detector_params"].update(temprature=0.1),
     "model_params.kp_detector_params.temprature: unknown field"),
    (lambda d: d["model_params"]["kp_detector_params"].pop("temperature"),
     "model_params.kp_detector_params.temperature: missing"),
    (lambda d: d["model_params"]["generator_params"]["dense_motion_params"].update(blocks=3),
     "model_params.generator_params.dense_motion_params.blocks: unknown field"),
    (lambda d: d.pop("checkpoint"), "checkpoint: missing"),
    (lambda d: d.update(colour="red"), "colour: unknown field"),
    (lambda d: d["normalization"].update(relative="yes"),
     "normalization.relative: expected true or false"),
    (lambda d: d.update(frame_shape=[256, 256]), "frame_shape: expected [H, W, C]"),
    (lambda d: d["model_params"]["kp_detector_params"].update(scale_factor=0.3),
     "model_params.kp_detector_params.scale_factor: 0.3 must be 1 or 1/n"),
    (lambda d: d["model_params"]["common_params"].update(num_kp=2.5),
     "model_params.common_params.num_kp: expected a non-negative integer"),
])
def test_spec_errors_name_file_and_field(tmp_path, mutate, message):
    data = _vox(tmp_path)
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    text = str(err.value)
    assert str(path) in text and message in text
    assert "\n" not in text


def test_original_config_errors(tmp_path):
    data = yaml.safe_load((FIXTURES / "configs" / "tiny.yaml").read_text())
    del data["model_params"]["generator_params"]["dense_motion_params"]
    path = _write(tmp_path, data, "custom.yaml")
    with pytest.raises(SpecError, match=r"custom.yaml: model_params.generator_params"
                                        r".dense_motion_params: missing"):
        load_spec(path)


def test_unknown_dataset_and_bad_yaml(tmp_path):
    with pytest.raises(SpecError, match="unknown dataset 'voxx'.*known: bair"):
        load_spec("voxx")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(SpecError, match="bad.yaml: not valid YAML"):
        load_spec(bad)
