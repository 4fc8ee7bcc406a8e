"""Runs every benchmark once, each in its own subprocess, and writes BENCHMARKS.md.

Run (about 25 minutes on 2 cores; ``make bench`` does the same):

    python -m benchmarks.run_all [--repeats 3] [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from pathlib import Path

from benchmarks import bench_backends, common

PEER = "keras.applications"


def run_script(module, *arguments):
    """Runs one benchmark, echoing its output; returns its measurements."""
    print(f"== {module} {' '.join(arguments)}", flush=True)
    return common.run_benchmark(module, *arguments)


def inference_table(records):
    matmul = next(r["gflops"] for r in records if r["kind"] == "matmul")
    rows = [r for r in records if r["kind"] == "inference"]
    peers = {(r["variant"], r["batch"]): r["images_per_second"] for r in rows if r["runtime"] == PEER}
    lines = [
        f"fp32 matmul (2048 x 2048, TensorFlow) in the same run: **{matmul:.0f} GFLOP/s**, the peak below "
        "(a practical fp32 one: OpenVINO at its default bf16 precision can go past 100%).",
        "",
        "| variant | batch | runtime | backend | images/s | vs keras.applications | GFLOP/s | % of peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        peer = peers.get((r["variant"], r["batch"]))
        ratio = f"{r['images_per_second'] / peer:.2f}x" if peer else "-"
        percent = 100 * r["gflops"] / matmul
        lines.append(
            f"| {r['variant'].upper()} | {r['batch']} | {r['runtime']} | {r['backend']} | "
            f"{r['images_per_second']:.1f} | {ratio} | {r['gflops']:.1f} | {percent:.0f}% |"
        )
    exports = [r for r in records if r["kind"] == "onnx_export"]
    if exports:
        lines += [
            "",
            "ONNX export (`export_onnx`, tf2onnx) took "
            + ", ".join(f"{r['seconds']:.0f} s for {r['variant'].upper()}" for r in exports)
            + ".",
        ]
    return lines


def onednn_table(records):
    rows = [r for r in records if r["kind"] == "onednn"]
    if not rows:
        return ["(not measured)"]
    speed = {(r["onednn"], r["runtime"], r["batch"]): r["images_per_second"] for r in rows}
    lines = [
        "| model | batch | oneDNN off: images/s | oneDNN on: images/s | on vs off |",
        "|---|---|---|---|---|",
    ]
    for runtime, batch in sorted({(r["runtime"], r["batch"]) for r in rows}, key=lambda k: (k[1], k[0])):
        off, on = speed.get(("off", runtime, batch)), speed.get(("on", runtime, batch))
        ratio = f"{on / off:.2f}x" if on and off else "-"
        lines.append(f"| {runtime} B0 | {batch} | {off or 0:.1f} | {on or 0:.1f} | {ratio} |")
    return lines


def train_table(records):
    rows = [r for r in records if r["kind"] == "train"]
    by_key = {(r["model"], r["batch"]): r for r in rows}
    lines = [
        "| model | batch | steps/s (median round) | rounds | images/s | peak RSS (MiB) | "
        "RSS above TF baseline (MiB) | speed vs reference | peak RSS vs reference |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        reference = by_key.get((PEER, r["batch"])) or by_key.get(("ours", r["batch"]))
        reference_name = PEER if (PEER, r["batch"]) in by_key else "ours"
        speed = f"{r['steps_per_second'] / reference['steps_per_second']:.2f}x {reference_name}"
        memory = f"{r['peak_rss_mib'] / reference['peak_rss_mib']:.2f}x {reference_name}"
        rounds = ", ".join(f"{rate:.3f}" for rate in r.get("rounds", [r["steps_per_second"]]))
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['steps_per_second']:.3f} | {rounds} | "
            f"{r['steps_per_second'] * r['batch']:.1f} | {r['peak_rss_mib']:.0f} | "
            f"{r['peak_rss_mib'] - r['baseline_rss_mib']:.0f} | {speed} | {memory} |"
        )
    plain, remat = by_key.get(("ours", 32)), by_key.get(("ours remat", 32))
    if plain and remat:
        above = (remat["peak_rss_mib"] - remat["baseline_rss_mib"]) / (
            plain["peak_rss_mib"] - plain["baseline_rss_mib"]
        )
        lines += [
            "",
            f"remat at B0, batch 32, 224 px: peak RSS {remat['peak_rss_mib'] / plain['peak_rss_mib']:.2f}x "
            f"the default's (whole process; {above:.2f}x counting only what the model adds above "
            f"TensorFlow's baseline), at {remat['steps_per_second'] / plain['steps_per_second']:.2f}x "
            "its steps/s.",
        ]
    return lines


def deploy_table(records):
    rows = [r for r in records if r["kind"] == "deploy"]
    peer = next((r for r in records if r["kind"] == "deploy_peer"), None)
    machine = next((r for r in records if r["kind"] == "deploy_machine"), None)
    if not rows or peer is None or machine is None:
        return ["(not measured)"]
    lines = [
        f"{machine['held_out']} held-out views of scikit-image's photos, int8 calibrated on "
        f"{machine['calibration']} other views (benchmarks/photo_crops.py). Agreement is with the float "
        "Keras model's top-1 on all views / on the views it gives >= 0.5 probability. Speed: median "
        f"latency at batch 1 and images/s at batch 32, every runtime at its default threads on this "
        f"{machine['cores']}-core CPU; keras.applications EfficientNetB0 fp32 on TensorFlow in the same "
        f"run: {peer['latency_ms']:.1f} ms at batch 1, {peer['images_per_second']:.1f} images/s at batch 32.",
        "",
        "| model | runtime | precision | MB | export s | top-1 agree | confident | top-5 overlap | mean KL | "
        "batch 1 ms | vs KA B0 | images/s b32 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model'].capitalize()} | {r['runtime']} | {r['precision']} | {r['size_mb']:.1f} | "
            f"{r['export_seconds']:.0f} | {100 * r['top1_agreement']:.1f}% | "
            f"{100 * r['top1_agreement_confident']:.0f}% of {r['confident']} | "
            f"{100 * r['top5_overlap']:.1f}% | "
            f"{r['mean_kl']:.4f} | {r['latency_ms']:.1f} | {peer['latency_ms'] / r['latency_ms']:.2f}x | "
            f"{r['images_per_second']:.1f} |"
        )
    int8_lite0 = [r for r in rows if r["model"] == "lite0" and r["precision"] == "int8"]
    if int8_lite0:
        fastest = min(int8_lite0, key=lambda r: r["latency_ms"])
        lines += [
            "",
            f"Fastest int8 Lite0: {fastest['runtime']}, {fastest['latency_ms']:.1f} ms at batch 1, "
            f"**{peer['latency_ms'] / fastest['latency_ms']:.2f}x** keras.applications B0 fp32 on "
            "TensorFlow.",
        ]
    recovery = [r for r in records if r["kind"] == "b0_recovery"]
    skipped = [r["skipped"] for r in recovery if "skipped" in r]
    lines += ["", "B0 (swish + squeeze-excite) int8 with layers kept in float (`keep_float`):", ""]
    if skipped or not recovery:
        lines.append(
            f"not measured: {skipped[0] if skipped else 'not run'}. Random weights say nothing about it."
        )
    else:
        lines += ["| runtime | keep_float | top-1 agree | top-5 overlap | mean KL |", "|---|---|---|---|---|"]
        for r in recovery:
            lines.append(
                f"| {r['runtime']} | {', '.join(r['keep_float']) or '-'} | "
                f"{100 * r['top1_agreement']:.1f}% | "
                f"{100 * r['top5_overlap']:.1f}% | {r['mean_kl']:.4f} |"
            )
    return lines


def distributed_table(records):
    rows = sorted((r for r in records if r["kind"] == "distributed"), key=lambda r: r["replicas"])
    if not rows:
        return ["(not measured)"]
    one = rows[0]["steps_per_second"]
    lines = [
        "| replicas | global batch | steps/s | vs 1 replica |",
        "|---|---|---|---|",
        *(
            f"| {r['replicas']} | {r['batch']} | {r['steps_per_second']:.3f} | "
            f"{r['steps_per_second'] / one:.2f}x |"
            for r in rows
        ),
        "",
        "Both replicas are logical devices of the same CPU: the table shows what replication costs "
        "(two half-size steps and the gradient all-reduce on the same cores), not a speed-up, which needs "
        "devices that add compute. tests/test_training_distribution.py shows the replicas train the same "
        "weights.",
    ]
    return lines


def build_table(records):
    rows = [r for r in records if r["kind"] == "build"]
    peers = {r["variant"]: r["seconds"] for r in rows if r["model"] == PEER}
    lines = ["| variant | model | build s | time vs keras.applications |", "|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['variant'].upper()} | {r['model']} | {r['seconds']:.2f} | "
            f"{r['seconds'] / peers[r['variant']]:.2f}x |"
        )
    return lines


def onednn_state(records) -> str:
    states = {r["onednn"] for r in records if r["kind"] == "matmul" and "onednn" in r}
    return ", ".join(sorted(states)) or "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(common.ROOT / "BENCHMARKS.md"))
    parser.add_argument("--from-log", help="render the RESULT lines of a saved run instead of running")
    parser.add_argument("--minutes", type=float, default=0.0, help="with --from-log: the run's duration")
    args = parser.parse_args()

    if args.from_log:
        # Re-renders the tables from the RESULT lines of an earlier run's output.
        records = common.parse_records(Path(args.from_log).read_text().splitlines())
        minutes = args.minutes
    else:
        start = time.perf_counter()
        # The JAX and PyTorch rows come from bench_backends, beside each backend's peer.
        records = run_script("bench_inference", "--repeats", str(args.repeats), "--no-backends")
        records += run_script("bench_backends", "--repeats", str(args.repeats))
        records += run_script("bench_train")
        records += run_script("bench_build")
        records += run_script("bench_distributed")
        records += run_script("bench_deploy", "--repeats", str(args.repeats))
        minutes = (time.perf_counter() - start) / 60
    Path(args.output).write_text(render(records, minutes))
    print(f"wrote {args.output} ({minutes:.1f} min)")


def render(records, minutes) -> str:
    """BENCHMARKS.md from the records of one run."""
    versions = ", ".join(f"{name} {version}" for name, version in common.versions().items())
    text = [
        "# Benchmarks",
        "",
        "Written by `python -m benchmarks.run_all` (`make bench`); every figure below comes from one run "
        "on the machine described. Random weights (timing does not depend on their values), the same "
        "weights in every runtime of a row group. How each figure is measured: benchmarks/README.md.",
        "",
        f"- Date: {datetime.date.today().isoformat()}; run took {minutes:.1f} min",
        f"- CPU: {common.cpu_model()}, {os.cpu_count()} cores visible to the process; "
        f"flags: {', '.join(common.cpu_flags()) or 'none of AVX2/AVX-512/VNNI/AMX'}",
        f"- TensorFlow's oneDNN kernels: {onednn_state(records)} in the main rows (TF_ENABLE_ONEDNN_OPTS="
        f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}); the oneDNN table runs both",
        f"- Versions: {versions}",
        "- Medians over the repeats; TensorFlow backend unless the backend column says otherwise.",
        "- On a shared machine single figures move by 10-30% between runs; the TF rows of ours and "
        "keras.applications run the same layers, so only a difference beyond that, repeated, says "
        "something.",
        "",
        "## Inference (native resolution: B0 224 px, B3 300 px)",
        "",
        *inference_table(records),
        "",
        "## Every backend beside its peer (B0, 224 px; each backend in its own process)",
        "",
        "TensorFlow against keras.applications, JAX against ours on TensorFlow, PyTorch against timm's "
        "tf_efficientnet_b0 in eager mode (the same network).",
        "",
        *bench_backends.backends_table(records),
        "",
        "## TensorFlow's oneDNN kernels (TF_ENABLE_ONEDNN_OPTS=0 and =1, each in its own process)",
        "",
        "TensorFlow turns them on by default only on some Intel CPUs; the command line, `make demo` and "
        "these benchmarks set TF_ENABLE_ONEDNN_OPTS=1 unless it is set (README, Performance).",
        "",
        *onednn_table(records),
        "",
        "## Training step (B0, 224 px, SGD, `train_on_batch`; each row its own process)",
        "",
        *train_table(records),
        "",
        "## MirroredStrategy on this CPU (B0, 224 px, global batch 16; each row its own process)",
        "",
        *distributed_table(records),
        "",
        "## Build time (weights=None)",
        "",
        *build_table(records),
        "",
        "## Deployment: LiteRT, ONNX Runtime, OpenVINO, SavedModel (real Lite0-2 ImageNet weights)",
        "",
        *deploy_table(records),
        "",
    ]
    return "\n".join(text)


if __name__ == "__main__":
    main()
