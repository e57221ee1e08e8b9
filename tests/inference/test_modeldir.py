import json
import shutil
import struct
from pathlib import Path

import pytest

from inference.engine.modeldir import ModelDirError, inspect_model_dir


@pytest.fixture
def model_copy(demo_models, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(demo_models["target_dir"], target)
    return target


def test_inspects_a_complete_model_without_loading_it(demo_models):
    info = inspect_model_dir(demo_models["target_dir"])
    config = json.loads((Path(info.path) / "config.json").read_text())
    assert info.architecture == "LlamaForCausalLM"
    assert info.model_type == "llama"
    assert info.parameter_count == demo_models["target"]["parameters"]
    assert info.dtype == "float32"
    assert info.weight_bytes == info.parameter_count * 4
    assert info.context_length == config["max_position_embeddings"]
    assert info.vocab_size == config["vocab_size"]
    assert info.num_layers == config["num_hidden_layers"]
    assert info.hidden_size == config["hidden_size"]
    assert info.num_attention_heads == config["num_attention_heads"]
    assert info.num_kv_heads == config["num_key_value_heads"]
    assert info.head_dim == config["hidden_size"] // config["num_attention_heads"]
    assert info.has_chat_template
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(info.files)


def test_missing_config_names_the_file(model_copy):
    (model_copy / "config.json").unlink()
    with pytest.raises(ModelDirError, match=r"config\.json is missing") as caught:
        inspect_model_dir(model_copy)
    assert caught.value.file.endswith("config.json")


def test_unparsable_config_names_the_file(model_copy):
    (model_copy / "config.json").write_text("{not json")
    with pytest.raises(ModelDirError, match="cannot be parsed") as caught:
        inspect_model_dir(model_copy)
    assert caught.value.file.endswith("config.json")


def test_missing_weights_are_reported(model_copy):
    (model_copy / "model.safetensors").unlink()
    with pytest.raises(ModelDirError, match="No \\*.safetensors") as caught:
        inspect_model_dir(model_copy)
    assert caught.value.file.endswith(".safetensors")


def test_truncated_weights_are_reported(model_copy):
    weights = model_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelDirError, match="truncated") as caught:
        inspect_model_dir(model_copy)
    assert caught.value.file.endswith("model.safetensors")


def test_corrupt_safetensors_header_is_reported(model_copy):
    weights = model_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    (header_size,) = struct.unpack("<Q", data[:8])
    data[8 : 8 + header_size] = b"\xff" * header_size
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelDirError, match="corrupt safetensors header") as caught:
        inspect_model_dir(model_copy)
    assert caught.value.file.endswith("model.safetensors")


def test_absurd_header_length_is_reported(model_copy):
    weights = model_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(struct.pack("<Q", 10**12) + data[8:])
    with pytest.raises(ModelDirError, match="corrupt or truncated"):
        inspect_model_dir(model_copy)


def test_missing_tokenizer_is_reported(model_copy):
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(ModelDirError, match="No tokenizer") as caught:
        inspect_model_dir(model_copy)
    assert caught.value.file.endswith("tokenizer.json")


def test_missing_directory_is_reported(tmp_path):
    with pytest.raises(ModelDirError, match="does not exist"):
        inspect_model_dir(tmp_path / "nowhere")
