"""The PyTorch + PEFT side of `npm run bench -- --pytorch PYTHON`: the same shape, LoRA and optimizer as the
engine's benchmark (randomly initialised model, dropout off, AdamW at lr 1e-3, clip 1.0), timed the same way
(median of the steps after a warm-up). Prints one JSON object."""
import argparse
import json
import resource
import statistics
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

p = argparse.ArgumentParser()
p.add_argument("--shape", required=True, help="the engine's bench shape as JSON")
p.add_argument("--steps", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--checkpointing", action="store_true")
a = p.parse_args()
s = json.loads(a.shape)
torch.set_num_threads(a.threads)
torch.manual_seed(0)

if s["arch"] == "gpt2":
    cfg = GPT2Config(vocab_size=s["vocab"], n_embd=s["d"], n_layer=s["layers"], n_head=s["heads"], n_inner=s.get("ffn"),
                     n_positions=max(1024, s["seq"]), attn_pdrop=0.0, embd_pdrop=0.0, resid_pdrop=0.0)
    model = GPT2LMHeadModel(cfg)
else:
    kw = dict(vocab_size=s["vocab"], hidden_size=s["d"], num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
              num_key_value_heads=s.get("kvHeads") or s["heads"], intermediate_size=s.get("ffn") or 4 * s["d"],
              max_position_embeddings=max(2048, s["seq"]), tie_word_embeddings=bool(s.get("tie")), rms_norm_eps=1e-5)
    model = (Qwen2ForCausalLM(Qwen2Config(**kw)) if s["vocab"] == 151936 else LlamaForCausalLM(LlamaConfig(**kw)))
if a.checkpointing:
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
model = get_peft_model(model, LoraConfig(r=s["r"], lora_alpha=2 * s["r"], target_modules=s["targets"], lora_dropout=0.0, task_type="CAUSAL_LM"))
model.train()
opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-3, weight_decay=0.0)
ids = torch.randint(0, s["vocab"], (s["batch"], s["seq"]), generator=torch.Generator().manual_seed(1))
times = []
losses = []
for i in range(a.steps + 1):
    t0 = time.perf_counter()
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_([q for q in model.parameters() if q.requires_grad], 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    losses.append(out.loss.item())
    if i > 0:
        times.append(time.perf_counter() - t0)

n = 1024
x = torch.rand(n, n)
y = torch.rand(n, n)
mm = []
for i in range(6):
    t0 = time.perf_counter()
    torch.mm(x, y)
    if i > 0:
        mm.append(time.perf_counter() - t0)
ms = statistics.median(times) * 1000
print(json.dumps({
    "torch": torch.__version__,
    "threads": a.threads,
    "gradient_checkpointing": a.checkpointing,
    "ms_per_step": round(ms, 2),
    "tokens_per_sec": round(s["batch"] * s["seq"] / ms * 1000, 2),
    "loss_first": round(losses[0], 2),
    "loss_last": round(losses[-1], 2),
    "matmul_gflops": round(2 * n ** 3 / statistics.median(mm) / 1e9, 2),
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
}))
