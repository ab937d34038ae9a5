"""Training with the int8 inference path in the loop: `--int8_aware` (finetune.train).

`SHOPDESK_LOCAL_WEIGHTS=int8` (agent.backends.int8_linears) merges the adapter into the base and replaces every
Linear layer (`int8-mixed`: all but shopdesk.settings.INT8_KEEP_FP32's) with torch's dynamic int8 one: weights int8
per output channel (symmetric, scale = max|w| / 127.5), activations quantized at each call to 7-bit unsigned integers
over the whole input tensor (fbgemm's reduce_range). It decodes 3x faster, but an adapter trained in fp32 lost 14
points of eval task success there (the tool choice moves). Here each adapted layer computes what that path computes,
in floating point: the merged weight W + s·B·A and the input are rounded to those grids, and the rounding passes
gradients straight through, so the adapter learns to choose the same tools with the rounding in place. The input's
range is taken per sequence, which is what a prefill of one prompt sees. Measured: bench/README.md (session 19).
"""

from __future__ import annotations

from typing import Any

WEIGHT_LEVELS = 127.5  # symmetric qint8: scale = max|w| / ((127 - -128) / 2), as PerChannelMinMaxObserver
ACTIVATION_LEVELS = 127  # quint8 with reduce_range: 0..127


def fake_int8_weight(w):
    """`w` rounded to int8 per output channel (row) and back; the gradient passes straight through."""
    import torch

    scale = (w.detach().abs().amax(dim=-1, keepdim=True) / WEIGHT_LEVELS).clamp_min(torch.finfo(w.dtype).tiny)
    q = torch.clamp(torch.round(w / scale), -128, 127) * scale
    return w + (q - w).detach()


def fake_uint7_activation(x):
    """`x` rounded as fbgemm's dynamic linear rounds its input: 7-bit affine, range per sequence (the first axis of
    a 3-d input, the whole tensor otherwise), zero always representable; the gradient passes straight through.
    """
    import torch

    dims = tuple(range(1, x.dim())) if x.dim() >= 3 else tuple(range(x.dim()))
    lo = x.detach().amin(dim=dims, keepdim=True).clamp(max=0)
    hi = x.detach().amax(dim=dims, keepdim=True).clamp(min=0)
    scale = ((hi - lo) / ACTIVATION_LEVELS).clamp_min(torch.finfo(x.dtype).tiny)
    zero = torch.clamp(torch.round(-lo / scale), 0, ACTIVATION_LEVELS)
    q = (torch.clamp(torch.round(x / scale) + zero, 0, ACTIVATION_LEVELS) - zero) * scale
    return x + (q - x).detach()


def _lora_forward(layer: Any):
    import torch.nn.functional as F

    def forward(x, *args, **kwargs):
        base = layer.base_layer
        weight = base.weight
        for name in layer.active_adapters:
            if name in layer.lora_A:
                delta = layer.lora_B[name].weight @ layer.lora_A[name].weight
                weight = weight + delta.to(weight.dtype) * layer.scaling[name]
        return F.linear(fake_uint7_activation(x), fake_int8_weight(weight), base.bias)

    return forward


def _linear_forward(linear: Any):
    import torch.nn.functional as F

    def forward(x):
        return F.linear(fake_uint7_activation(x), fake_int8_weight(linear.weight), linear.bias)

    return forward


def simulate_int8(model: Any, keep_fp32: tuple[str, ...] = ()) -> dict[str, int]:
    """Make the Linear layers of `model` (a PEFT LoRA model) compute as the int8 path will, except those whose name
    ends with one of `keep_fp32` (shopdesk.settings.INT8_KEEP_FP32); how many of each kind were changed.
    """
    import torch
    from peft.tuners.lora import Linear as LoraLinear

    inside_lora = set()
    counts = {"lora": 0, "linear": 0, "kept_fp32": 0}
    for name, module in model.named_modules():
        if isinstance(module, LoraLinear):
            inside_lora.update(id(m) for m in module.modules() if m is not module)
            if keep_fp32 and name.endswith(keep_fp32):
                counts["kept_fp32"] += 1
            else:
                module.forward = _lora_forward(module)
                counts["lora"] += 1
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and id(module) not in inside_lora:
            if keep_fp32 and name.endswith(keep_fp32):
                counts["kept_fp32"] += 1
            else:
                module.forward = _linear_forward(module)
                counts["linear"] += 1
    return counts
