"""finetune.int8: training with the int8 inference path in the loop computes what that path computes."""

import copy

import pytest


def _lora_model(tiny_model_dir):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                             "up_proj", "down_proj"]))
    with torch.no_grad():  # a trained adapter: B is not zero, so the merged weight differs from the base
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model.eval()


@pytest.mark.parametrize("weights", ["int8", "int8-mixed"])
def test_each_layer_computes_what_the_int8_model_computes(tiny_model_dir, weights):
    # layer by layer, on the inputs the int8 model itself sees: the simulated layer (adapter unmerged) is far closer
    # to torch's dynamic int8 layer (adapter merged) than the fp32 layer is. (End to end the two drift apart, since
    # one rounding that falls the other way changes every later input.)
    import torch

    from agent.backends import int8_linears
    from finetune.int8 import simulate_int8
    from shopdesk.settings import INT8_KEEP_FP32

    keep = INT8_KEEP_FP32[weights]
    model = _lora_model(tiny_model_dir)
    merged = copy.deepcopy(model).merge_and_unload()
    fp32 = {n: copy.deepcopy(m) for n, m in merged.named_modules() if isinstance(m, torch.nn.Linear)}
    int8 = int8_linears(merged, keep)
    counts = simulate_int8(model, keep)
    assert counts == {"lora": 14 - 2 * len(keep), "linear": 1, "kept_fp32": 2 * len(keep)}  # 2 layers x 7, lm_head
    simulated = {n.removeprefix("base_model.model."): m for n, m in model.named_modules()}
    rows = []

    def hook(name):
        def check(module, inputs, out):
            x = inputs[0]
            gap = (out - fp32[name](x)).abs().mean().item()
            rows.append((name, gap, (out - simulated[name](x)).abs().mean().item()))
        return check

    for name, module in int8.named_modules():
        if name in fp32:
            module.register_forward_hook(hook(name))
    with torch.no_grad():
        int8(torch.randint(0, 2000, (1, 40)))
    assert len(rows) == 15
    for name, gap, miss in rows:
        if name.endswith(keep) and keep:
            assert gap == 0 and miss < 1e-5, name  # left fp32 in both
        else:
            assert gap > 0 and miss < 0.2 * gap, (name, gap, miss)


def test_gradients_reach_the_adapter_through_the_rounding(tiny_model_dir):
    import torch

    from finetune.int8 import simulate_int8

    model = _lora_model(tiny_model_dir)
    model.train()
    simulate_int8(model)
    ids = torch.randint(0, 2000, (1, 16))
    model(input_ids=ids, labels=ids).loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_rounding_grids():
    import torch

    from finetune.int8 import fake_int8_weight, fake_uint7_activation

    w = torch.tensor([[1.0, -0.5, 0.003], [127.5, 3.2, -1.0]])
    q = fake_int8_weight(w)
    # per row: scale max|w| / 127.5; 0.003 is below half a step of row 0 and rounds to 0; 127.5 clamps to 127
    assert q[0, 2] == 0 and torch.allclose(q[1], torch.tensor([127.0, 3.0, -1.0]))
    x = torch.linspace(-1, 3, 50).reshape(1, 5, 10)
    xq = fake_uint7_activation(x)
    assert len(torch.unique(xq)) <= 128 and (xq - x).abs().max() <= 4 / 127 / 2 + 1e-6
