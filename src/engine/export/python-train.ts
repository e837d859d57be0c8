/**
 * train.py of the exported Python project: the studio's run as transformers' Trainer + PEFT code, with PEFT's
 * config class and field names and TrainingArguments' names, so it runs under `accelerate launch` on any number of
 * GPUs (DDP, DeepSpeed ZeRO-2, FSDP) and can start from an adapter the studio trained (--resume-adapter).
 */
import { methodOf } from '../peft/registry';
import { kwargs, py } from './python-literal';
import type { PythonProjectSpec } from './python-project';

/** PEFT's config class of each peft_type. */
export const PEFT_CONFIG_CLASS: Record<string, string> = {
  LORA: 'LoraConfig', IA3: 'IA3Config', ADALORA: 'AdaLoraConfig', PROMPT_TUNING: 'PromptTuningConfig',
  P_TUNING: 'PromptEncoderConfig', PREFIX_TUNING: 'PrefixTuningConfig',
};

/** adapter_config.json fields that are not constructor arguments, or that PEFT fills from the model. */
const NOT_ARGUMENTS = new Set(['peft_type', 'task_type', 'base_model_name_or_path', 'revision', 'inference_mode', 'auto_mapping']);

/** The PEFT config's keyword arguments (PEFT's names; null fields left to PEFT's default of None). */
export function peftKwargs(spec: PythonProjectSpec): [string, unknown][] {
  const json = methodOf(spec.peft.peftType).toJson(spec.peft, { baseModelNameOrPath: spec.model, task: spec.task });
  return Object.entries(json).filter(([k, v]) => !NOT_ARGUMENTS.has(k) && v !== null);
}

/** transformers' lr_scheduler_type for the studio's schedule (its constant schedule warms up like Trainer's). */
function schedulerName(spec: PythonProjectSpec): string {
  const a = spec.args;
  return a.scheduler === 'constant' ? (a.warmupSteps > 0 ? 'constant_with_warmup' : 'constant') : a.scheduler;
}

/** TrainingArguments' keyword arguments for the run (Trainer's names). */
export function trainingKwargs(spec: PythonProjectSpec, evaluates: boolean): [string, unknown][] {
  const a = spec.args;
  const out: [string, unknown][] = [
    ['learning_rate', a.learningRate],
    a.maxSteps ? ['max_steps', a.maxSteps] : ['num_train_epochs', a.epochs],
    ['per_device_train_batch_size', a.batchSize],
    ['per_device_eval_batch_size', a.batchSize],
    ['gradient_accumulation_steps', a.gradientAccumulationSteps],
    ['warmup_steps', a.warmupSteps],
    ['lr_scheduler_type', schedulerName(spec)],
    ['weight_decay', a.weightDecay],
    ['max_grad_norm', a.maxGradNorm],
    ['optim', 'adamw_torch'],
    ['seed', a.seed],
    ['gradient_checkpointing', a.gradientCheckpointing],
    ['logging_steps', 1],
  ];
  if (evaluates && a.evalSteps > 0) out.push(['eval_strategy', 'steps'], ['eval_steps', a.evalSteps]);
  else out.push(['eval_strategy', evaluates ? 'epoch' : 'no']);
  const save = a.saveSteps || (evaluates ? a.evalSteps : 0);
  if (save > 0) out.push(['save_strategy', 'steps'], ['save_steps', save]);
  else out.push(['save_strategy', 'epoch']);
  if (a.saveTotalLimit != null) out.push(['save_total_limit', a.saveTotalLimit]);
  // Trainer's EarlyStoppingCallback insists on load_best_model_at_end (the studio stops early without it).
  if (evaluates && (a.loadBestModelAtEnd || a.earlyStoppingPatience)) out.push(['load_best_model_at_end', true]);
  if (evaluates) out.push(['metric_for_best_model', a.metricForBestModel]);
  if (evaluates && a.greaterIsBetter != null) out.push(['greater_is_better', a.greaterIsBetter]);
  return out;
}

const FLOATS = new Set(['learning_rate', 'weight_decay', 'max_grad_norm', 'lora_dropout', 'encoder_dropout', 'num_train_epochs', 'beta1', 'beta2', 'orth_reg_weight']);

/** The text of train.py. */
export function trainPy(spec: PythonProjectSpec, files: { train: string; validation: string | null; format: string }): string {
  const method = methodOf(spec.peft.peftType);
  const cls = PEFT_CONFIG_CLASS[spec.peft.peftType];
  const evaluates = !!(files.validation || spec.data.validationSplit || spec.data.hubDataset);
  const a = spec.args;
  const auto = spec.task === 'SEQ_CLS' ? 'AutoModelForSequenceClassification' : 'AutoModelForCausalLM';
  const d = spec.data;
  const resumable = method.prompt
    ? spec.peft.peftType === 'PROMPT_TUNING' || (spec.peft.peftType === 'PREFIX_TUNING' && !(spec.peft as { prefixProjection?: boolean }).prefixProjection)
    : true;
  return `#!/usr/bin/env python3
"""${spec.title ?? `Fine-tune ${spec.model} with ${method.label}`}: transformers' Trainer + PEFT, written by PEFT Studio.

One device:      python train.py
Several GPUs:    accelerate launch --config_file accelerate/multi_gpu.yaml train.py
DeepSpeed / FSDP: accelerate/deepspeed_zero2.yaml, accelerate/fsdp.yaml (see README.md)
From the studio's adapter: python train.py --resume-adapter path/to/downloaded-adapter
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from datasets import load_dataset
from peft import ${cls}, PeftModel, TaskType, get_peft_model, set_peft_model_state_dict
from transformers import (
    ${auto},
    AutoTokenizer,
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = ${py(spec.model)}
REVISION = ${py(spec.revision ?? null)}
TASK = ${py(spec.task)}
MAX_LENGTH = ${a.maxLength}
# Data as the studio read it: file format, columns, and the held-out share when there is no validation file.
DATA = {
    "format": ${py(files.format)},
    "train": ${files.train ? `os.path.join(HERE, ${py(files.train)})` : 'None'},
    "validation": ${files.validation ? `os.path.join(HERE, ${py(files.validation)})` : 'None'},
    "hub_dataset": ${py(d.hubDataset ?? null)},
    "validation_split": ${py(d.validationSplit ?? null)},
    "text_column": ${py(d.textColumn ?? 'text')},
    "label_column": ${py(d.labelColumn ?? 'label')},
    "prompt_column": ${py(d.promptColumn ?? 'prompt')},
    "response_column": ${py(d.responseColumn ?? 'response')},
    "txt_lines": ${py(!!d.txtLines)},
}
# SEQ_CLS: class names by id (label strings sorted, as the studio numbers them; integer labels are ids).
LABELS = ${py(spec.labels ?? null)}
NUM_LABELS = ${py(spec.numLabels ?? null)}
PAD_TOKEN_ID = ${py(spec.padTokenId ?? null)}
${a.loraplusLrRatio ? `LORAPLUS_LR_RATIO = ${py(a.loraplusLrRatio, true)}\n` : ''}${a.earlyStoppingPatience ? `EARLY_STOPPING_PATIENCE = ${a.earlyStoppingPatience}\n` : ''}

def peft_config():
    """The studio's ${method.label} settings, under PEFT's field names."""
    return ${cls}(
        task_type=TaskType.${spec.task},
${kwargs(peftKwargs(spec), '        ', FLOATS)}
    )


def training_arguments(cli):
    """The studio's training settings, under TrainingArguments' names."""
    return TrainingArguments(
        output_dir=cli.output_dir,
${kwargs(trainingKwargs(spec, evaluates), '        ', FLOATS)}
        gradient_checkpointing_kwargs={"use_reentrant": False},
        bf16=cli.bf16,
        fp16=cli.fp16,
        report_to="none",
        remove_unused_columns=False,
    )


def load_rows():
    """The training (and validation) rows, as datasets."""
    if DATA["hub_dataset"]:
        ds = load_dataset(DATA["hub_dataset"])
    else:
        kind = {"jsonl": "json", "json": "json", "csv": "csv", "txt": "text"}[DATA["format"]]
        files = {"train": DATA["train"]}
        if DATA["validation"]:
            files["validation"] = DATA["validation"]
        # The studio reads TXT as one example per blank-line-separated paragraph (or per line with --txt-lines).
        extra = {"sample_by": "line" if DATA["txt_lines"] else "paragraph"} if kind == "text" else {}
        ds = load_dataset(kind, data_files=files, **extra)
        if kind == "text":
            ds = ds.filter(lambda r: r["text"].strip() != "")
    if "validation" not in ds and DATA["validation_split"]:
        split = ds["train"].train_test_split(test_size=DATA["validation_split"], seed=${a.seed})
        ds = {"train": split["train"], "validation": split["test"]}
    return ds["train"], ds.get("validation")


def encoder(tok):
    """Row -> input_ids / attention_mask / labels, as the studio tokenizes (truncated to MAX_LENGTH)."""
    eos = tok.eos_token_id
    label2id = {name: i for i, name in enumerate(LABELS)} if LABELS else None

    def encode(row):
        labels = None
        if row.get("input_ids") is not None and row.get(DATA["text_column"]) is None:
            ids = list(row["input_ids"])
        elif TASK == "CAUSAL_LM" and row.get(DATA["prompt_column"]) is not None:
            # Prompt and response are tokenized apart (each with the tokenizer's special tokens, as the studio
            # does); the loss covers the response and the closing eos only.
            p = tok(row[DATA["prompt_column"]])["input_ids"]
            r = tok(row[DATA["response_column"]] or "")["input_ids"] + ([eos] if eos is not None else [])
            ids, labels = p + r, [-100] * len(p) + r
        else:
            ids = tok(row[DATA["text_column"]])["input_ids"]
            if TASK == "CAUSAL_LM" and eos is not None:
                ids = ids + [eos]
        ids = ids[:MAX_LENGTH]
        out = {"input_ids": ids, "attention_mask": [1] * len(ids)}
        if TASK == "SEQ_CLS":
            value = row[DATA["label_column"]]
            out["labels"] = label2id[str(value)] if label2id and str(value) in label2id else int(value)
        else:
            out["labels"] = (labels if labels is not None else ids)[:MAX_LENGTH]
        return out

    return encode


class Collator:
    """Right padding, -100 on padded labels (the studio pads to multiples of 16 for speed; the loss is the same)."""

    def __init__(self, pad_id):
        self.pad_id = pad_id

    def __call__(self, rows):
        n = max(len(r["input_ids"]) for r in rows)
        pad = lambda xs, v: xs + [v] * (n - len(xs))
        batch = {
            "input_ids": torch.tensor([pad(r["input_ids"], self.pad_id) for r in rows]),
            "attention_mask": torch.tensor([pad(r["attention_mask"], 0) for r in rows]),
        }
        if TASK == "SEQ_CLS":
            batch["labels"] = torch.tensor([r["labels"] for r in rows])
        else:
            batch["labels"] = torch.tensor([pad(r["labels"], -100) for r in rows])
        return batch


def compute_metrics(pred):
    """accuracy and macro F1 for classification (the studio's eval_accuracy / eval_f1)."""
    logits, labels = pred
    guess = np.argmax(logits, axis=-1)
    f1s = []
    for c in np.unique(np.concatenate([labels, guess])):
        tp = np.sum((guess == c) & (labels == c))
        fp = np.sum((guess == c) & (labels != c))
        fn = np.sum((guess != c) & (labels == c))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return {"accuracy": float(np.mean(guess == labels)), "f1": float(np.mean(f1s))}


class AdaLoraStep(TrainerCallback):
    """AdaLoRA's rank allocation after every optimizer step, before the gradients are cleared (PEFT's update_and_allocate)."""

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        model.base_model.update_and_allocate(state.global_step)


def build_model(cli, tok):
    extra = {}
    if TASK == "SEQ_CLS":
        n = NUM_LABELS or (len(LABELS) if LABELS else 2)
        extra["num_labels"] = n
        if LABELS:
            extra["id2label"] = {i: name for i, name in enumerate(LABELS)}
            extra["label2id"] = {name: i for i, name in enumerate(LABELS)}
    model = ${auto}.from_pretrained(MODEL, revision=REVISION, torch_dtype=torch.float32, **extra)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    if cli.resume_adapter:
        print(f"starting from the adapter in {cli.resume_adapter}")
${resumable ? (method.prompt ? `        # PEFT does not load prompt-learning adapters as trainable; their saved tensor goes into a fresh model.
        from safetensors.torch import load_file

        model = get_peft_model(model, peft_config())
        set_peft_model_state_dict(model, load_file(os.path.join(cli.resume_adapter, "adapter_model.safetensors")))
        return model` : `        return PeftModel.from_pretrained(model, cli.resume_adapter, is_trainable=True)`) : `        # PEFT saves only the prompt encoder's output for this method, not the encoder that training needs.
        sys.exit("--resume-adapter: a ${method.label} adapter holds only the encoder's output; train from scratch or use the studio's checkpoint")`}
    return get_peft_model(model, peft_config())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", dest="output_dir", default=os.path.join(HERE, "output"))
    parser.add_argument("--resume-adapter", dest="resume_adapter", default=None, help="start from a PEFT adapter folder (e.g. the one the studio downloaded)")
    parser.add_argument("--resume-from-checkpoint", dest="resume_from_checkpoint", default=None, help="continue a Trainer checkpoint-<step> folder of this script")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 mixed precision (the studio trains in float32)")
    parser.add_argument("--fp16", action="store_true", help="float16 mixed precision")
    cli = parser.parse_args()

    set_seed(${a.seed})
    tok = AutoTokenizer.from_pretrained(MODEL, revision=REVISION)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if PAD_TOKEN_ID is not None:
        tok.pad_token_id = PAD_TOKEN_ID
    model = build_model(cli, tok)
    model.print_trainable_parameters()

    train_rows, valid_rows = load_rows()
    encode = encoder(tok)
    train = train_rows.map(encode, remove_columns=train_rows.column_names)
    valid = valid_rows.map(encode, remove_columns=valid_rows.column_names) if valid_rows is not None else None

    callbacks = []
${spec.peft.peftType === 'ADALORA' ? '    callbacks.append(AdaLoraStep())\n' : ''}${a.earlyStoppingPatience ? '    callbacks.append(EarlyStoppingCallback(early_stopping_patience=EARLY_STOPPING_PATIENCE))\n' : ''}    optimizers = (None, None)
${a.loraplusLrRatio ? `    # LoRA+: lora_B (and 1-D) tensors train at learning_rate * ratio (PEFT's create_loraplus_optimizer).
    from peft.optimizers import create_loraplus_optimizer

    targs = training_arguments(cli)
    optimizers = (create_loraplus_optimizer(model, optimizer_cls=torch.optim.AdamW, lr=targs.learning_rate, loraplus_lr_ratio=LORAPLUS_LR_RATIO, weight_decay=targs.weight_decay), None)
` : '    targs = training_arguments(cli)\n'}    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=train,
        eval_dataset=valid,
        data_collator=Collator(tok.pad_token_id),
        compute_metrics=compute_metrics if TASK == "SEQ_CLS" else None,
        callbacks=callbacks,
        optimizers=optimizers,
    )
    if getattr(trainer.accelerator.state, "fsdp_plugin", None):
        # FSDP wraps PEFT's trainable modules apart from the frozen ones (PEFT's FSDP guide).
        from peft.utils.other import fsdp_auto_wrap_policy

        trainer.accelerator.state.fsdp_plugin.auto_wrap_policy = fsdp_auto_wrap_policy(trainer.model)
    trainer.train(resume_from_checkpoint=cli.resume_from_checkpoint)
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    final = os.path.join(cli.output_dir, "adapter")
    trainer.save_model(final)  # adapter_config.json + adapter_model.safetensors, as the studio writes them
    if trainer.is_world_process_zero():
        tok.save_pretrained(final)
        with open(os.path.join(cli.output_dir, "log_history.json"), "w") as f:
            json.dump(trainer.state.log_history, f, indent=2)
        print(f"adapter -> {final}")


if __name__ == "__main__":
    main()
`;
}
