"""finetune.device_train: the job selection syntax, and the base check that guards a rebuilt model."""

import json

import pytest


def test_selection_names_jobs_and_overrides_their_fields():
    from finetune.device_train import parse_selection

    only, overrides = parse_selection(["fresh:epochs=2", "fresh:learning_rate=5e-4", "cont"])
    assert only == ["fresh", "cont"]
    assert overrides == {"fresh": {"epochs": 2, "learning_rate": 5e-4}}
    assert parse_selection([]) == ([], {})
    with pytest.raises(json.JSONDecodeError):
        parse_selection(["fresh:epochs=two"])


def test_a_rebuilt_base_that_differs_in_one_tensor_stops_the_run(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file

    import finetune.device_train as dt

    base = tmp_path / "base"
    base.mkdir()
    save_file({"a": torch.ones(3), "b": torch.zeros(2)}, str(base / "model.safetensors"))
    want = dt.tensor_hashes(base)
    assert set(want) == {"a", "b"} and want["a"] != want["b"]
    monkeypatch.setattr(dt, "BASE", base)
    (base / "config.json").unlink(missing_ok=True)

    def fake_convert(out):
        save_file({"a": torch.ones(3), "b": torch.ones(2)}, str(out / "model.safetensors"))

    import shopdesk.models as models

    monkeypatch.setattr(models, "convert_smollm2", fake_convert)
    with pytest.raises(SystemExit) as stop:
        dt.convert(want)
    assert stop.value.code == 4
    save_file({"a": torch.ones(3), "b": torch.zeros(2)}, str(base / "model.safetensors"))
    monkeypatch.setattr(models, "convert_smollm2", lambda out: None)
    dt.convert(want)  # identical tensors: no exit


def test_parts_from_earlier_calls_and_this_one_join_in_name_order(tmp_path, monkeypatch):
    # each call copies its part to PARTS; the last call's part may still sit only in its carried .gpu folder
    import hashlib

    import finetune.device_train as dt

    data = bytes(range(256)) * 40
    monkeypatch.setattr(dt, "GGUF", tmp_path / "smol" / "model.gguf")
    monkeypatch.setattr(dt, "PARTS", tmp_path / "parts")
    root = tmp_path / "repo"
    (root / ".gpu3").mkdir(parents=True)
    dt.PARTS.mkdir()
    (dt.PARTS / "gguf.part1").write_bytes(data[:4000])
    (dt.PARTS / "gguf.part2").write_bytes(data[4000:8000])
    (root / ".gpu3" / "gguf.part3").write_bytes(data[8000:])
    dt.assemble(root, hashlib.sha256(data).hexdigest())
    assert dt.GGUF.read_bytes() == data
    dt.GGUF.unlink()
    (dt.PARTS / "gguf.part2").unlink()
    with pytest.raises(SystemExit) as stop:  # a part missing: the checksum stops the run
        dt.assemble(root, hashlib.sha256(data).hexdigest())
    assert stop.value.code == 3 and not dt.GGUF.exists()
