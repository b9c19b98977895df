#!/usr/bin/env python3
"""Checks a `dem merge` output against mergekit's own sparsification code on the same checkpoints.

    python3 scripts/mergekit_check.py --mergekit PATH/TO/mergekit --merged OUT_DIR [--json]

mergekit's merge runner needs pydantic, transformers and safetensors; its sparsification module
(mergekit/sparsify.py: magnitude, magnitude_outliers, the L1-restoring rescale) needs only torch,
so that file is loaded straight from the given checkout and run. The rest of generalized task
arithmetic (weights, sign consensus by sum, normalisation, lambda) is written here from mergekit's
GTATask.execute, in float32 as a `dtype: float32` config runs it. DARE's random masks are the
studio's (mergekit draws its own with torch.bernoulli): they are reproduced here from the studio's
PCG hash, and mergekit's rescaled_masked_tensor is applied to them.

Reported per merged tensor and method: whether the kept sets have exactly k = int(density·n)
elements on both sides and whether they differ only among equal |Δ| (mergekit's argsort breaks
ties at the threshold in its own order, the studio keeps the lower index: such differences are
expected, any other is a failure, exit status 1); how many output elements equal mergekit's
arithmetic applied to the studio's kept sets, and how far apart they are in units of the output
dtype's last place; and how many equal mergekit end to end (its own kept sets). Recipes with
scalar parameters only (no gradients or filters). Nothing of mergekit is copied here: its
sparsify.py is imported from the checkout given, and the rest is this file's own code written
from the behaviour of mergekit's generalized task arithmetic.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_ppl import load_checkpoint  # noqa: E402  (the independent safetensors reader)


def load_sparsify(mergekit_dir):
    path = os.path.join(mergekit_dir, "mergekit", "sparsify.py")
    spec = importlib.util.spec_from_file_location("mergekit_sparsify", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The studio's DARE RNG (src/engine/merge/reference.ts, shaders/common/rng.wgsl): PCG hash chains.
M32 = 0xFFFFFFFF


def pcg(v):
    v = np.asarray(v, dtype=np.uint64)
    state = (v * np.uint64(747796405) + np.uint64(2891336453)) & np.uint64(M32)
    word = (((state >> ((state >> np.uint64(28)) + np.uint64(4))) ^ state) * np.uint64(277803737)) & np.uint64(M32)
    return ((word >> np.uint64(22)) ^ word) & np.uint64(M32)


def dare_mask(seed, tensor, model, n, density):
    key = pcg(np.uint64(model) ^ pcg(np.uint64(tensor) ^ pcg(np.uint64(seed))))
    h = pcg(pcg(np.arange(n, dtype=np.uint64)) ^ key)
    threshold = min(2 ** 32 - 1, max(0, int(np.ceil(density * 2 ** 32)) - 1))
    return torch.from_numpy((h <= threshold).astype(np.float32))


def studio_band(delta, lo, hi):
    """The studio's kept set: ranks [max(hi, 1), lo] by (|Δ| desc, index asc)."""
    a = delta.abs().view(-1).numpy()
    order = np.lexsort((np.arange(a.size), -a))
    keep = torch.zeros(a.size)
    if lo > 0:
        keep[torch.from_numpy(order[max(hi, 1) - 1: lo].copy())] = 1
    return keep


def out_round(x, dtype):
    return x.to({"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[dtype]).to(torch.float64)


def ulp_distance(a, b, dtype):
    """|a − b| in units of the last place of the output dtype at b."""
    mant = {"F32": 23, "F16": 10, "BF16": 7}[dtype]
    e = torch.floor(torch.log2(b.abs().clamp_min(1e-30)))
    return ((a - b).abs() / torch.pow(2.0, e - mant)).max().item() if a.numel() else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mergekit", required=True, help="a checkout of github.com/arcee-ai/mergekit")
    ap.add_argument("--merged", required=True, help="a `dem merge` output folder (with dem-recipe.json)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sp = load_sparsify(args.mergekit)
    with open(os.path.join(args.merged, "dem-recipe.json")) as f:
        recipe = json.load(f)
    method = recipe["method"]
    supported = {"ties": "magnitude", "breadcrumbs": "outliers", "breadcrumbs_ties": "outliers", "dare_linear": "random", "dare_ties": "random", "task_arithmetic": None}
    if method not in supported:
        sys.exit(f"{method}: only the generalized task arithmetic family is checked here")
    sparsify = supported[method]
    consensus = method in ("ties", "breadcrumbs_ties", "dare_ties")
    g = recipe["parameters"]

    def scalar(p, name, default):
        v = p.get(name, g.get(name, default))
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            sys.exit(f"{name}: only scalar parameters are supported here, got {v!r}")
        return float(v)

    _, base = load_checkpoint(recipe["base"])
    models = [load_checkpoint(m["model"])[1] for m in recipe["models"]]
    weights = [scalar(m["parameters"], "weight", None) for m in recipe["models"]]
    densities = [scalar(m["parameters"], "density", 1.0) for m in recipe["models"]]
    gammas = [scalar(m["parameters"], "gamma", 0.01) for m in recipe["models"]]
    lam = float(g.get("lambda", 1.0))
    normalize = bool(g.get("normalize", consensus))
    rescale = g.get("rescale", "none")
    seed = int(g.get("seed", 0))
    _, merged = load_checkpoint(args.merged)
    # The studio's tensor index (DARE's counter) is the base's tensor order as the engine reads it
    # (architecture table order): `dem inspect --json` lists it.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    listed = subprocess.run(["node", os.path.join(root, "src/cli/dem.mjs"), "inspect", recipe["base"], "--json"], capture_output=True, text=True, check=True)
    order = {t["name"]: i for i, t in enumerate(json.loads(listed.stdout)["tensors"])}

    report = []
    for name, (bdt, b) in base.items():
        if name not in merged or any(name not in m for m in models) or bdt not in ("F32", "F16", "BF16"):
            continue
        out_dtype, ours = merged[name]
        base_t = torch.from_numpy(b.astype(np.float32)).view(-1)
        n = base_t.numel()
        tvs, own, masks_mk, masks_ours = [], [], [], []
        for r, m in enumerate(models):
            delta = torch.from_numpy(m[name][1].astype(np.float32)).view(-1) - base_t
            d = densities[r]
            if sparsify == "magnitude":
                mk = sp.magnitude(delta, density=d)  # mergekit: exactly int(d·n) by argsort
                k = int(d * n) if d < 1 else n
                ours_mask = studio_band(delta, max(k, 1), 0) if d < 1 else torch.ones(n)
                masks_mk.append((mk != 0) | ((delta == 0) & (ours_mask != 0)))
                masks_ours.append(ours_mask != 0)
                tv = delta * ours_mask  # the studio's selection; `own` keeps mergekit's
                own.append(mk)
            elif sparsify == "outliers":
                mk = sp.magnitude_outliers(delta, density=d, gamma=gammas[r])
                target = int(d * n)
                top = int(gammas[r] * n)
                bottom = n - target - top
                if bottom < 0:
                    top += bottom
                ours_mask = studio_band(delta, top + target, top + 1) if d < 1 and target > 0 else (torch.ones(n) if d >= 1 else torch.zeros(n))
                masks_mk.append((mk != 0) | ((delta == 0) & (ours_mask != 0)))
                masks_ours.append(ours_mask != 0)
                tv = delta * ours_mask
                own.append(mk)
            elif sparsify == "random":
                mask = dare_mask(seed, order[name], r, n, d) if d < 1 else torch.ones(n)
                if rescale == "l1":
                    tv = sp.rescaled_masked_tensor(delta, mask, sp.RescaleNorm.l1)
                elif rescale == "density":
                    tv = delta * mask / d
                else:
                    tv = sp.rescaled_masked_tensor(delta, mask, None)
            else:
                tv = delta
            tvs.append(tv)
        theirs = gta_combine(base_t, tvs, weights, consensus, normalize, lam, out_dtype)
        # mergekit end to end: its own kept sets (top-k ties broken by its argsort).
        theirs_own = gta_combine(base_t, own, weights, consensus, normalize, lam, out_dtype) if own else theirs
        ours_t = torch.from_numpy(ours.astype(np.float64)).view(-1)
        row = {"tensor": name, "n": n, "equal": int((theirs == ours_t).sum()), "equal_own_selection": int((theirs_own == ours_t).sum()), "max_ulp": ulp_distance(ours_t, theirs, out_dtype)}
        if masks_mk:
            kept = []
            for r, (mk, ou) in enumerate(zip(masks_mk, masks_ours)):
                delta_abs = (torch.from_numpy(models[r][name][1].astype(np.float32)).view(-1) - base_t).abs()
                # Equal multisets of kept |Δ| on both sides: the sets differ only by swapping equal |Δ| (ties).
                same_magnitudes = torch.equal(torch.sort(delta_abs[mk]).values, torch.sort(delta_abs[ou]).values)
                kept.append({"mergekit": int(mk.sum()), "studio": int(ou.sum()), "differ": int((mk != ou).sum()), "differ_only_at_ties": bool(same_magnitudes)})
            row["kept"] = kept
        report.append(row)
    if args.json:
        print(json.dumps({"method": method, "tensors": report}, indent=1))
        return
    total = sum(r["n"] for r in report)
    equal = sum(r["equal"] for r in report)
    equal_own = sum(r["equal_own_selection"] for r in report)
    worst = max((r["max_ulp"] for r in report), default=0)
    print(f"{method}: {len(report)} tensors; on the studio's kept sets {equal}/{total} elements equal to mergekit's arithmetic ({100 * equal / max(total, 1):.2f}%), worst {worst:.2f} ulp; "
          f"with mergekit's own kept sets {equal_own}/{total} ({100 * equal_own / max(total, 1):.2f}%)")
    bad = 0
    for r in report:
        for i, k in enumerate(r.get("kept", [])):
            if k["mergekit"] != k["studio"] or not k["differ_only_at_ties"]:
                bad += 1
                print(f"  {r['tensor']} model {i}: kept {k['studio']} (mergekit {k['mergekit']}), {k['differ']} differ, only at ties: {k['differ_only_at_ties']}")
    differ = sum(k["differ"] for r in report for k in r.get("kept", []))
    if any("kept" in r for r in report):
        print(f"  kept sets: same size everywhere and {differ} elements chosen differently among equal |Δ| (tie order)" if not bad else f"  {bad} kept sets differ beyond ties")
    sys.exit(1 if bad else 0)


def gta_combine(base_t, tvs, weights, consensus, normalize, lam, out_dtype):
    """Weights, sign consensus by sum, normalisation and lambda, in float32 (written from
    GTATask.execute and get_mask of mergekit's generalized_task_arithmetic.py)."""
    deltas = torch.stack(tvs)
    w = torch.tensor(weights, dtype=torch.float32).unsqueeze(-1)
    weighted = deltas * w
    if consensus:
        sign = weighted.sign()
        majority = (weighted.sum(0) >= 0).to(torch.float32) * 2 - 1
        mask = (sign == majority).to(torch.float32)
        mixed = (weighted * mask).sum(0)
        divisor = (w * mask).sum(0)
        divisor[divisor == 0] = 1
    else:
        mixed = weighted.sum(0)
        divisor = w.sum(0).expand_as(mixed).clone()
        divisor[divisor.abs() < 1e-8] = 1
    if normalize:
        mixed = mixed / divisor
    mixed = mixed * lam
    return out_round(base_t + mixed, out_dtype)


if __name__ == "__main__":
    main()
