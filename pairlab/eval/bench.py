"""``python -m pairlab bench eval``: how long evaluating 500 test images takes on this machine.

For each image size (64 and 128 by default) in a temporary workspace:
  1. set-up, not timed as evaluation: render a 1500-face SynthFaces source, write a bench composition whose test
     split holds 500 eyeglasses faces with their ground truth (drawn from the whole source with replacement: the
     figures are timings, not scores), and save a ``cpu-demo-64`` CycleGAN checkpoint (one training iteration;
     at 128 the same preset with image_size 128), so the network is exactly the preset's;
  2. one-off encoder training, reported separately: the lab identity encoder and the Eyeglasses classifier
     (cached per source afterwards);
  3. **cold**: ``evaluate_runs`` with every available metric, translation included (nothing cached but the encoders);
  4. **cached**: the same again, with the outputs read from the cache.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _bench_composition(source, root: Path, n: int, size: int) -> Path:
    """A composition folder with n testA eyeglasses faces (+ truth), n testB faces and a few training images."""
    from ..data.images import save_image

    attr = "Eyeglasses"
    with_attr = [s for s in source.samples if s.attrs and s.attrs.get(attr) == 1 and s.truth]
    without = [s for s in source.samples if s.attrs and s.attrs.get(attr) == -1 and s.truth]
    images = {k: [] for k in ("trainA", "trainB", "testA", "testB")}
    for split in ("trainA", "trainB", "testA", "testB", "testA_truth", "testB_truth"):
        (root / split).mkdir(parents=True)
    cache: dict = {}

    def write(ref, path: Path):
        key = str(ref.path)
        if key not in cache:
            img = ref.load()
            if img.size != (size, size):
                from PIL import Image

                img = img.resize((size, size), Image.LANCZOS)
            cache[key] = np.asarray(img)
        save_image(cache[key], path)

    for split, pool, count in (("trainA", with_attr, 8), ("trainB", without, 8), ("testA", with_attr, n),
                               ("testB", without, n)):
        for i in range(count):
            s = pool[i % len(pool)]
            name = f"{i:05d}_{Path(s.name).stem}.jpg"
            write(s.ref, root / split / name)
            entry = {"file": name, "provenance": "real", "source": s.name, "identity": s.identity}
            if split == "trainA":
                entry["pair"] = None
            if split.startswith("test"):
                write(s.truth[attr], root / f"{split}_truth" / name)
                entry["truth"] = f"{split}_truth/{name}"
            images[split].append(entry)
    manifest = {"kind": "composition", "name": root.name, "task": "eyeglasses",
                "recipe": {"kind": "bench", "n_test": n, "seed": 0},
                "domains": {"A": "with Eyeglasses", "B": "without Eyeglasses"},
                "source": {k: v for k, v in source.describe().items() if k in ("kind", "name", "root", "fingerprint", "knows")},
                "image_size": size, "alpha": 0.0, "has_truth": True, "images": images,
                "counts": {k: len(v) for k, v in images.items()}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _timing_only(run: Path, size: int) -> dict:
    """What LPIPS and FaceNet would add, timed with random weights (timings only, never scores) when the real
    weight files are absent: LPIPS on the 500 (output, truth) pairs, FaceNet extrapolated from 64 images."""
    import torch

    from . import encoders
    from .metrics import alexnet_weights, lpips_model, lpips_values
    from .outputs import translate_test_set

    outputs = translate_test_set(run)
    out = {}
    if alexnet_weights() is None:
        a, b = outputs.load("output"), outputs.load("truth", outputs.truth_indices())
        model = lpips_model(random_backbone=True)
        t = time.perf_counter()
        lpips_values(model, a, b)
        out["lpips_random_trunk_timing_s"] = round(time.perf_counter() - t, 2)
    if encoders.facenet_weights() is None:
        from facenet_pytorch import InceptionResnetV1

        net = InceptionResnetV1(pretrained=None).to(encoders._device()).eval()
        x = encoders.to_input(outputs.load("output", range(min(64, len(outputs)))), 160)
        t = time.perf_counter()
        with torch.no_grad():
            net(x.to(next(net.parameters()).device))
        per = (time.perf_counter() - t) / len(x)
        out["facenet_random_weights_estimate_s"] = round(per * 2 * len(outputs), 2)  # inputs + outputs
    return out


def bench_eval(sizes=(64, 128), n: int = 500, count: int = 1500, home: str | None = None) -> dict:
    import torch

    from .. import workspace
    from ..data import library as lab
    from ..train import PRESETS, train
    from ..train.device import describe, pick_device
    from ..train.run import Run
    from . import encoders
    from .evaluate import evaluate_runs
    from .metrics import REGISTRY

    keep = home is not None
    tmp = None if keep else tempfile.TemporaryDirectory(prefix="pairlab-bench-eval-")
    previous = os.environ.get("PAIRLAB_HOME")
    os.environ["PAIRLAB_HOME"] = str(home or tmp.name)
    out = {"device": describe(pick_device("auto")), "torch_threads": torch.get_num_threads(), "test_images": n,
           "facenet": "present" if encoders.facenet_weights() else "absent (lab identity encoder)"}
    try:
        for size in sizes:
            res: dict = {}
            t0 = time.perf_counter()
            source = lab.synthfaces_source(count=count, size=size, seed=0)
            comp = workspace.sub("compositions") / f"bench-{size}"
            if not comp.exists():
                _bench_composition(source, comp, n, size)
            cfg = PRESETS["cpu-demo-64"]
            if size != cfg.image_size:
                cfg = cfg.with_overrides({"image_size": size, "load_size": 0})
            cfg = cfg.with_overrides({"max_iters": 1, "save_every": 1, "sample_every": 1000, "log_every": 1,
                                      "n_samples": 1})
            run = workspace.sub("runs") / f"bench-{size}"
            if Run(run).latest_checkpoint() is None:
                train(comp, run, cfg)
            res["setup_s"] = round(time.perf_counter() - t0, 2)
            t = time.perf_counter()
            enc = encoders.lab_identity_encoder(source)
            res["identity_encoder_train_s"] = round(time.perf_counter() - t, 2)
            res["identity_verification_accuracy"] = enc.meta.get("verification_accuracy")
            t = time.perf_counter()
            clf = encoders.attribute_classifier(source, "Eyeglasses")
            res["attribute_classifier_train_s"] = round(time.perf_counter() - t, 2)
            res["attribute_classifier_heldout_accuracy"] = clf.meta.get("heldout_accuracy")
            res["attribute_classifier_test_partition_accuracy"] = clf.meta.get("test_partition_accuracy")
            t = time.perf_counter()
            cold = evaluate_runs([run], write=True)[0]
            res["cold_s"] = round(time.perf_counter() - t, 2)
            if not cold.get("ok"):
                res["error"] = cold.get("error")
                out[f"{size}px"] = res
                continue
            meta = json.loads((Path(cold["outputs"]) / "outputs.json").read_text())
            res["translate_s"] = meta["seconds"]
            res["metric_s"] = cold.get("timings", {})
            t = time.perf_counter()
            cached = evaluate_runs([run], write=True)[0]
            res["cached_s"] = round(time.perf_counter() - t, 2)
            res["cached_reused_outputs"] = cached.get("reused_outputs")
            res["cold_with_encoder_training_s"] = round(res["cold_s"] + res["identity_encoder_train_s"]
                                                        + res["attribute_classifier_train_s"], 2)
            res.update(_timing_only(run, size))
            res["metrics_available"] = ", ".join(cold["metrics"])
            res["metrics_unavailable"] = ", ".join(m for m in REGISTRY if m in cold["unavailable"])
            out[f"{size}px"] = res
    finally:
        if previous is None:
            os.environ.pop("PAIRLAB_HOME", None)
        else:
            os.environ["PAIRLAB_HOME"] = previous
        if tmp is not None:
            tmp.cleanup()
    out["target"] = "under 60 s cold for a cpu-demo-64 run's 500 test images"
    return out


if __name__ == "__main__":
    print(json.dumps(bench_eval(), indent=1))
