#!/usr/bin/env python3
"""Export the real-model corpus: real architectures with random weights, dynamic dims, two exporters.

Run it in the corpus's own environment (`make real-models-env` creates .venv-models/):

    .venv-models/bin/python scripts/real-models/export.py            # every model, both exporters
    .venv-models/bin/python scripts/real-models/export.py --only bert # one model (both exporters)
    .venv-models/bin/python scripts/real-models/export.py --list      # the models and their exports

Nothing is downloaded: every model is built from its constructor or an explicit config class with
random weights (torchvision `weights=None`, transformers `XConfig(...)`). Transformer configs keep
the real hidden sizes, heads and structure, with fewer layers (see LAYERS) to keep sizes and
export times sane on a 2-core machine.

Each model is exported by the legacy exporter (`torch.onnx.export(..., dynamo=False)`, opset 13 or
17) and by the dynamo exporter (`dynamo=True`, opset 18) into
models/real/<name>-<exporter>-opset<N>.onnx, with dynamic batch (and sequence for text, image size
where the model allows it). Each export runs in a child process with a time limit; one that fails
is recorded with its reason and the script goes on. Each exported model is loaded and run once in
ONNX Runtime on the export's inputs. models/real/exports.json records every attempt (updated per
export, so `--only` refreshes one model's entries and keeps the rest).
"""

import argparse
import inspect
import json
import multiprocessing
import re
import sys
import time
import traceback
from pathlib import Path

import torch
import torchvision

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "models" / "real"
RECORD = OUT / "exports.json"
EXPORT_TIMEOUT_S = 900
LAYERS = 2  # transformer layers kept (encoder and decoder each)


class Export:
    """One model to export: how to build it and its example inputs, and which opsets to use."""

    def __init__(self, name, family, build, legacy_opset, note=""):
        self.name = name
        self.family = family  # the op-type table run.py uses: cnn, detection or transformer
        self.build = build  # a builder below
        self.opsets = {"legacy": legacy_opset, "dynamo": 18}
        self.note = note

    def file(self, exporter):
        return OUT / f"{self.name}-{exporter}-opset{self.opsets[exporter]}.onnx"


# Builders: each returns (module, args, input_names, output_names, dynamic {input: {axis: name}}).

IMAGE = {0: "batch", 2: "height", 3: "width"}
TEXT = {0: "batch", 1: "sequence"}


class Picked(torch.nn.Module):
    """Calls a module with keyword arguments in a fixed order and returns the chosen output fields."""

    def __init__(self, module, keywords, fields, **fixed):
        super().__init__()
        self.module, self.keywords, self.fields, self.fixed = module, keywords, fields, fixed

    def forward(self, *args):
        out = self.module(**dict(zip(self.keywords, args)), **self.fixed)
        return tuple(out[f] for f in self.fields)


class Detector(torch.nn.Module):
    """A torchvision detector on one image [3, H, W], returning boxes, labels and scores."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        found = self.model([image])[0]
        return found["boxes"], found["labels"], found["scores"]


class GPT2WithPast(torch.nn.Module):
    """GPT-2 decoding with past key values: per layer, past key and value in, present key and value out."""

    def __init__(self, config):
        super().__init__()
        from transformers import GPT2Model

        self.config = config
        self.decoder = GPT2Model(config)

    def forward(self, input_ids, attention_mask, *past):
        from transformers import DynamicCache

        cache = DynamicCache(config=self.config)
        for layer in range(self.config.n_layer):
            cache.update(past[2 * layer], past[2 * layer + 1], layer)
        out = self.decoder(input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=True)
        present = [t for layer in out.past_key_values.layers for t in (layer.keys, layer.values)]
        return (out.last_hidden_state, *present)


def classifier(constructor):
    def build():
        model = getattr(torchvision.models, constructor)(weights=None)
        return model, (torch.randn(2, 3, 224, 224),), ["images"], ["logits"], {"images": IMAGE}

    return build


def detector(constructor, size):
    def build():
        model = getattr(torchvision.models.detection, constructor)(weights=None, weights_backbone=None)
        return (Detector(model), (torch.rand(3, size, size),), ["image"], ["boxes", "labels", "scores"],
                {"image": {1: "height", 2: "width"}})

    return build


def text_ids(batch=2, seq=16, vocab=1000):
    return torch.randint(0, vocab, (batch, seq)), torch.ones(batch, seq, dtype=torch.int64)


def bert():
    from transformers import BertConfig, BertModel

    ids, mask = text_ids()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    outputs = ["last_hidden_state", "pooler_output"]
    model = Picked(BertModel(BertConfig(num_hidden_layers=LAYERS)), names, outputs)
    return model, (ids, mask, ids * 0), names, outputs, {name: TEXT for name in names}


def gpt2():
    from transformers import GPT2Config

    config = GPT2Config(n_layer=LAYERS)
    batch, seq, past_len = 2, 4, 12
    head_dim = config.n_embd // config.n_head
    past = [torch.randn(batch, config.n_head, past_len, head_dim) for _ in range(2 * config.n_layer)]
    ids, _ = text_ids(batch, seq)
    mask = torch.ones(batch, past_len + seq, dtype=torch.int64)
    kv_names = [f"past_key_values.{i}.{kind}" for i in range(config.n_layer) for kind in ("key", "value")]
    dynamic = {"input_ids": TEXT, "attention_mask": {0: "batch", 1: "total_sequence"}}
    dynamic.update({name: {0: "batch", 2: "past_sequence"} for name in kv_names})
    return (GPT2WithPast(config), (ids, mask, *past), ["input_ids", "attention_mask", *kv_names],
            ["last_hidden_state", *(n.replace("past_key_values", "present") for n in kv_names)], dynamic)


def vision_transformer(model, outputs):
    """A transformers vision model on 224x224 images (position embeddings fix the size): dynamic batch."""
    return (Picked(model, ["pixel_values"], outputs), (torch.randn(2, 3, 224, 224),), ["pixel_values"], outputs,
            {"pixel_values": {0: "batch"}})


def vit():
    from transformers import ViTConfig, ViTModel

    return vision_transformer(ViTModel(ViTConfig(num_hidden_layers=LAYERS)), ["last_hidden_state", "pooler_output"])


def swin():
    from transformers import SwinConfig, SwinModel

    return vision_transformer(SwinModel(SwinConfig(depths=[LAYERS] * 4)), ["last_hidden_state", "pooler_output"])


def detr():
    from transformers import DetrConfig, DetrForObjectDetection

    config = DetrConfig(use_timm_backbone=False, use_pretrained_backbone=False, encoder_layers=LAYERS, decoder_layers=LAYERS)
    outputs = ["logits", "pred_boxes"]
    model = Picked(DetrForObjectDetection(config), ["pixel_values"], outputs)
    return model, (torch.randn(2, 3, 320, 320),), ["pixel_values"], outputs, {"pixel_values": IMAGE}


def whisper_encoder():
    """Whisper-tiny's sizes (d_model 384, 6 heads); the encoder takes 30 s of 80 mel bins (3000 frames)."""
    from transformers import WhisperConfig, WhisperModel

    config = WhisperConfig(d_model=384, encoder_attention_heads=6, decoder_attention_heads=6, encoder_ffn_dim=1536,
                           decoder_ffn_dim=1536, encoder_layers=LAYERS, decoder_layers=LAYERS)
    model = Picked(WhisperModel(config).get_encoder(), ["input_features"], ["last_hidden_state"])
    return (model, (torch.randn(2, config.num_mel_bins, 3000),), ["input_features"], ["last_hidden_state"],
            {"input_features": {0: "batch"}})


def t5_encoder():
    from transformers import T5Config, T5EncoderModel

    names = ["input_ids", "attention_mask"]
    model = Picked(T5EncoderModel(T5Config(num_layers=LAYERS)), names, ["last_hidden_state"])
    return model, text_ids(), names, ["last_hidden_state"], {name: TEXT for name in names}


def t5_decoder():
    """T5-small's decoder stack (no cache) over encoder states, as in a seq2seq export's decoder model."""
    from transformers import T5Config, T5Model

    config = T5Config(num_layers=LAYERS, num_decoder_layers=LAYERS, use_cache=False)
    model = Picked(T5Model(config).get_decoder(), ["input_ids", "encoder_hidden_states"], ["last_hidden_state"], use_cache=False)
    ids, _ = text_ids(seq=5)
    states = torch.randn(2, 16, config.d_model)
    return (model, (ids, states), ["decoder_input_ids", "encoder_hidden_states"], ["last_hidden_state"],
            {"decoder_input_ids": TEXT, "encoder_hidden_states": {0: "batch", 1: "encoder_sequence"}})


def clip_text():
    from transformers import CLIPTextConfig, CLIPTextModel

    names = ["input_ids", "attention_mask"]
    outputs = ["last_hidden_state", "pooler_output"]
    model = Picked(CLIPTextModel(CLIPTextConfig(num_hidden_layers=LAYERS)), names, outputs)
    return model, text_ids(), names, outputs, {name: TEXT for name in names}


MODELS = [
    Export("resnet50", "cnn", classifier("resnet50"), 13),
    Export("mobilenet_v3_small", "cnn", classifier("mobilenet_v3_small"), 17),
    Export("efficientnet_b0", "cnn", classifier("efficientnet_b0"), 13),
    Export("fasterrcnn_mobilenet_v3_large_fpn", "detection", detector("fasterrcnn_mobilenet_v3_large_fpn", 320), 13),
    Export("ssdlite320_mobilenet_v3_large", "detection", detector("ssdlite320_mobilenet_v3_large", 320), 17),
    Export("retinanet_resnet50_fpn", "detection", detector("retinanet_resnet50_fpn", 320), 17),
    Export("bert", "transformer", bert, 17, f"bert-base sizes, {LAYERS} layers"),
    Export("gpt2", "transformer", gpt2, 17, f"gpt2 (small) sizes, {LAYERS} layers, past key values in and out, no LM head"),
    Export("vit", "transformer", vit, 17, f"vit-base/16 sizes, {LAYERS} layers, 224x224"),
    Export("detr", "transformer", detr, 17, f"detr-resnet-50 sizes, {LAYERS} encoder and {LAYERS} decoder layers"),
    Export("whisper_encoder", "transformer", whisper_encoder, 17, f"whisper-tiny sizes, {LAYERS} layers"),
    Export("t5_encoder", "transformer", t5_encoder, 17, f"t5-small sizes, {LAYERS} layers"),
    Export("t5_decoder", "transformer", t5_decoder, 17, f"t5-small sizes, {LAYERS} layers, no cache"),
    Export("swin", "transformer", swin, 17, "swin-tiny sizes, depths 2-2-2-2 (swin-tiny: 2-2-6-2)"),
    Export("clip_text", "transformer", clip_text, 17, f"CLIP ViT-B/32 text sizes, {LAYERS} layers"),
]


def export_one(name, exporter, queue):
    """Child process: export one model with one exporter, check it in ONNX Runtime; put the outcome on queue."""
    spec = next(m for m in MODELS if m.name == name)
    torch.manual_seed(0)
    start = time.time()
    target = spec.file(exporter)
    try:
        model, args, input_names, output_names, dynamic = spec.build()
        model.eval()
        options = dict(input_names=input_names, output_names=output_names, opset_version=spec.opsets[exporter])
        with torch.no_grad():
            if exporter == "legacy":
                torch.onnx.export(model, args, str(target), dynamo=False, dynamic_axes=dynamic, **options)
            else:
                shapes = dynamo_shapes(model, [dynamic.get(name) for name in input_names])
                torch.onnx.export(model, args, str(target), dynamo=True, dynamic_shapes=shapes, external_data=False, **options)
        outcome = {"status": "exported", "seconds": round(time.time() - start, 1), "bytes": target.stat().st_size}
        outcome["onnxruntime"] = run_in_onnxruntime(target, dict(zip(input_names, args)))
    except Exception as error:  # noqa: BLE001 — any exporter failure is recorded, not raised
        target.unlink(missing_ok=True)
        outcome = {"status": "failed", "seconds": round(time.time() - start, 1), "reason": reason(error),
                   "traceback": traceback.format_exc()[-4000:]}
    queue.put(outcome)


def dynamo_shapes(model, per_arg):
    """torch.export's dynamic_shapes for positional arguments: those that a `*args` parameter of
    forward takes form one tuple there."""
    params = list(inspect.signature(model.forward).parameters.values())
    named = next((i for i, p in enumerate(params) if p.kind == p.VAR_POSITIONAL), None)
    return tuple(per_arg) if named is None else (*per_arg[:named], tuple(per_arg[named:]))


def run_in_onnxruntime(path, inputs):
    """'ok', or the first line of ONNX Runtime's error when loading or running the model fails."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {i.name: inputs[i.name].numpy() for i in session.get_inputs()}
        session.run(None, feeds)
        return "ok"
    except Exception as error:  # noqa: BLE001
        return reason(error)


def reason(error):
    """One line: the exception's type and the first line of its message, shortened. For the dynamo
    exporter's wrapped torch.export errors, the summarised inner exception and where it was caused."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    kind = type(error).__name__
    if "## Exception summary" in text:
        text = text.split("## Exception summary", 1)[1]
        inner = re.match(r"\s*<class '([\w.]+)'>: ", text)
        if inner:
            kind, text = inner.group(1).rsplit(".", 1)[-1], text[inner.end():]
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    first = lines[0] if lines else ""
    first = first if len(first) <= 200 else first[:197] + "..."
    caused = next((l for l in lines if l.startswith("Caused by:")), None)
    return f"{kind}: {first}" + (f" {caused}" if caused else "")


def load_record():
    return json.loads(RECORD.read_text()) if RECORD.exists() else {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", metavar="NAME", help="export this model only (both exporters)")
    parser.add_argument("--exporter", choices=["legacy", "dynamo"], help="this exporter only")
    parser.add_argument("--list", action="store_true", help="list the models and their export files, and exit")
    parser.add_argument("--timeout", type=int, default=EXPORT_TIMEOUT_S, help="seconds per export (default %(default)s)")
    opts = parser.parse_args()

    chosen = [m for m in MODELS if opts.only in (None, m.name)]
    if not chosen:
        sys.exit(f"export.py: no model named {opts.only!r}; --list shows them")
    exporters = [opts.exporter] if opts.exporter else ["legacy", "dynamo"]
    if opts.list:
        record = load_record()
        for spec in chosen:
            for exporter in exporters:
                entry = record.get(spec.file(exporter).name, {})
                status = entry.get("status", "not exported")
                print(f"{spec.name:36} {spec.family:12} {spec.file(exporter).relative_to(ROOT)}  {status}")
        return

    OUT.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    for spec in chosen:
        for exporter in exporters:
            print(f"export.py: {spec.name} ({exporter}, opset {spec.opsets[exporter]}) ...", flush=True)
            queue = context.Queue()
            child = context.Process(target=export_one, args=(spec.name, exporter, queue))
            child.start()
            child.join(opts.timeout)
            if child.is_alive():
                child.kill()
                child.join()
                outcome = {"status": "failed", "seconds": opts.timeout, "reason": f"timed out after {opts.timeout} s"}
            elif queue.empty():
                outcome = {"status": "failed", "reason": f"the export process died (exit code {child.exitcode})"}
            else:
                outcome = queue.get()
            outcome.update(model=spec.name, family=spec.family, exporter=exporter, opset=spec.opsets[exporter],
                           file=str(spec.file(exporter).relative_to(ROOT)), note=spec.note)
            current = {m.file(e).name for m in MODELS for e in m.opsets}  # entries of older opsets go
            record = {k: v for k, v in load_record().items() if k in current}
            record[spec.file(exporter).name] = outcome
            RECORD.write_text(json.dumps(dict(sorted(record.items())), indent=1) + "\n")
            detail = outcome.get("reason") or f"{outcome['bytes'] / 1e6:.1f} MB, onnxruntime: {outcome['onnxruntime']}"
            print(f"export.py:   {outcome['status']} in {outcome.get('seconds', '?')} s: {detail}", flush=True)


if __name__ == "__main__":
    main()
