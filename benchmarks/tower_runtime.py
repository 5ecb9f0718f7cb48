"""The image tower's throughput on catalog photos: PyTorch against OpenVINO, side by side.

Aligning a catalog runs the frozen EfficientNet-Lite0 trunk over every training photo and every
phone-style view: nearly all of "Align the encoder and embed the catalog" on a large catalog.
This script measures, on the same photos in one run:

* decoding + resizing a photo (`prepare_image`, one thread);
* the trunk's forward pass, batches of `--batch`: PyTorch as the alignment ran it before
  (bf16 autocast where the CPU has it, channels-last) and OpenVINO (`tower_runtime`), in
  alternating rounds (so a change of load hits both); photos per second of wall time and CPU
  milliseconds per photo (the process's CPU time: steadier than wall time on a shared box),
  and how far the features are from PyTorch fp32 (cosine, min and mean);
* drawing a phone-style view: as before (each view decodes and cuts out its photo again) and
  now (one cutout per photo shared by its views), CPU milliseconds per view.

    python benchmarks/tower_runtime.py --photos 256 --rounds 3
    python benchmarks/tower_runtime.py --photos 256 --rounds 3 --onnxruntime   # also ORT fp32

Prints the numbers and the machine load; writes benchmarks/results/tower-runtime.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

MYNTRA = ROOT.parent / "shared" / "datasets" / "myntra_fashion" / "images"


def clocked(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=str(MYNTRA), help="a folder of JPEG photos")
    ap.add_argument("--photos", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--views", type=int, default=60, help="photos whose 2 views are drawn")
    ap.add_argument("--onnxruntime", action="store_true", help="also ONNX Runtime (fp32)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/tower-runtime.json"))
    args = ap.parse_args()

    import torch

    from recsys.encoders.clip_config import CatalogClipConfig
    from recsys.encoders.clip_encoder import normalise_pixels, prepare_image, resolve_precision
    from recsys.encoders.hybrid import build_catalog_model
    from recsys.encoders.tower_runtime import OpenVinoTrunk, openvino_available
    from recsys.encoders.towers import IMAGE_MEAN, IMAGE_STD

    paths = sorted(str(p) for p in Path(args.images).glob("*.jpg"))[:args.photos]
    if not paths:
        raise SystemExit(f"no JPEG photos in {args.images}")
    out: dict = {"photos": len(paths), "batch": args.batch, "threads": torch.get_num_threads(),
                 "precision": resolve_precision(None), "load_start": os.getloadavg()}
    print(f"{len(paths)} photos from {args.images}; torch threads {out['threads']}; "
          f"load {out['load_start']}", flush=True)

    arrays, w, c = clocked(lambda: [prepare_image(p, 224) for p in paths])
    out["decode_resize_ms_per_photo"] = {"wall": w / len(paths) * 1e3, "cpu": c / len(paths) * 1e3}
    print(f"decode + resize: {w / len(paths) * 1e3:.2f} ms per photo (one thread)", flush=True)

    cfg = CatalogClipConfig()
    model = build_catalog_model(cfg.tower, pretrained=True, instance=False).eval()
    model.visual.to(memory_format=torch.channels_last)
    x = normalise_pixels(arrays, IMAGE_MEAN, IMAGE_STD)
    bs = args.batch

    def batches(fn):
        return np.concatenate([np.asarray(fn(x[s:s + bs]), dtype=np.float32)
                               for s in range(0, len(paths), bs)])

    def torch_run(bf16: bool):
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            return batches(lambda b: model.visual.trunk(b).float().numpy())

    engines = {"torch": lambda: torch_run(out["precision"] == "bf16")}
    with torch.inference_mode():
        reference = batches(lambda b: model.visual.trunk(b).float().numpy())   # fp32
    if openvino_available():
        (ov, w, c) = clocked(lambda: OpenVinoTrunk(model.visual.trunk, out["precision"]))
        out["openvino_convert_s"] = {"wall": w, "cpu": c}
        print(f"OpenVINO: converted and compiled in {w:.1f} s ({c:.1f} s CPU), "
              f"precision {ov.precision}", flush=True)
        engines["openvino"] = lambda: batches(lambda b: ov(b).numpy())
    else:
        print("OpenVINO is not installed: PyTorch only")
    if args.onnxruntime:
        import onnxruntime as ort
        onnx_path = Path("/tmp") / f"tower-runtime-{os.getpid()}.onnx"
        torch.onnx.export(model.visual.trunk, (x[:2].contiguous(),), str(onnx_path),
                          input_names=["x"], output_names=["h"], opset_version=17,
                          dynamic_axes={"x": {0: "n"}, "h": {0: "n"}}, dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads = out["threads"]
        sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        onnx_path.unlink()
        engines["onnxruntime"] = lambda: batches(
            lambda b: sess.run(None, {"x": b.contiguous().numpy()})[0])

    for run in engines.values():       # warm-up
        run()
    times: dict = {name: {"wall": [], "cpu": []} for name in engines}
    agree: dict = {}
    for r in range(args.rounds):
        for name, run in engines.items():
            feats, w, c = clocked(run)
            times[name]["wall"].append(w)
            times[name]["cpu"].append(c)
            cos = cosine(feats, reference)
            agree[name] = {"min": float(cos.min()), "mean": float(cos.mean())}
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{n} {len(paths) / times[n]['wall'][-1]:.1f} photos/s" for n in engines) +
            f" (load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"\n{'runtime':<12}{'photos/s (median)':>20}{'CPU ms/photo (min)':>20}"
          f"{'cos vs fp32 min':>17}{'mean':>9}")
    for name in engines:
        wall = statistics.median(times[name]["wall"])
        cpu = min(times[name]["cpu"])
        out.setdefault("runtimes", {})[name] = {
            "photos_per_s_median": len(paths) / wall, "cpu_ms_per_photo_min": cpu / len(paths) * 1e3,
            "wall_s": times[name]["wall"], "cpu_s": times[name]["cpu"], "cosine_vs_fp32": agree[name]}
        print(f"{name:<12}{len(paths) / wall:>20.1f}{cpu / len(paths) * 1e3:>20.1f}"
              f"{agree[name]['min']:>17.5f}{agree[name]['mean']:>9.5f}")
    if "openvino" in engines:
        ratio = [t / o for t, o in zip(times["torch"]["cpu"], times["openvino"]["cpu"])]
        out["torch_over_openvino_cpu"] = ratio
        print(f"PyTorch / OpenVINO CPU time per round: " + ", ".join(f"{v:.2f}x" for v in ratio))

    if args.views > 0:
        out["views"] = views(paths[:args.views])
    out["load_end"] = os.getloadavg()
    print(f"load at end {out['load_end']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print("wrote", args.out)


def views(paths: list[str]) -> dict:
    """CPU ms per phone-style view (2 per photo): each view cutting its photo out again (as
    before) against one cutout per photo (now); the same pixels either way (checked)."""
    from recsys.data.images import load_image
    from recsys.encoders.augment import ViewPlan, render_view
    from recsys.encoders.phone_families import DonorPool, cutout

    plan = ViewPlan(views=2)
    ids = [Path(p).stem for p in paths]
    pool = DonorPool(paths, seed=0)
    for i, p in zip(ids, paths):             # donors decoded once, as in a long run
        render_view(plan.item_families(i)[0], 0, i, pool, p)

    def before():
        return [np.asarray(render_view(f, 0, i, pool, p).image)
                for i, p in zip(ids, paths) for f in plan.item_families(i)]

    def now():
        shots = []
        for i, p in zip(ids, paths):
            product = cutout(load_image(p))
            shots += [np.asarray(render_view(f, 0, i, pool, p, product=product).image)
                      for f in plan.item_families(i)]
        return shots

    a, _, cpu_before = clocked(before)
    b, _, cpu_now = clocked(now)
    same = all(np.array_equal(u, v) for u, v in zip(a, b))
    n = len(a)
    print(f"phone-style views: {cpu_before / n * 1e3:.1f} CPU ms per view before (decode + "
          f"cutout per view), {cpu_now / n * 1e3:.1f} now (one cutout per photo); same pixels: "
          f"{same}")
    return {"views": n, "cpu_ms_per_view_before": cpu_before / n * 1e3,
            "cpu_ms_per_view_now": cpu_now / n * 1e3, "same_pixels": same}


if __name__ == "__main__":
    main()
