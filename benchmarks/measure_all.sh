#!/usr/bin/env bash
# Every table of BENCHMARKS.md measured again on this checkout, one benchmark after the other
# (run it on an otherwise idle machine), each writing the raw log BENCHMARKS.md cites to
# docs/benchmarks/. Needs the bench extra (pip install -e ".[bench]"); 32 minutes on the 2-core
# machine of BENCHMARKS.md.
#
#   bash benchmarks/measure_all.sh [IMAGE_DIR]     # default ../shared/data/cifar10-jpeg
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-../shared/data/cifar10-jpeg}
out=docs/benchmarks
mkdir -p "$out"
export PYTHONUNBUFFERED=1

# name, then the command: its stdout and stderr go to $out/<name>.log
measure() {
  local name=$1
  shift
  echo "[$(date +%T)] $name: $*"
  "$@" >"$out/$name.log" 2>&1 || { echo "error: $name failed (see $out/$name.log)" >&2; exit 1; }
}

measure cpu_q3_end_to_end python benchmarks/q3_end_to_end.py --image_dir="$images" \
  --batch_size=50 --sides=jax,torch,torch_channels_last --log_dir="$out" \
  --json="$out/cpu_q3_end_to_end.json"
for side in jax torch torch_channels_last; do  # the sides' own logs, named for this machine
  mv "$out/q3_end_to_end_$side.log" "$out/cpu_q3_end_to_end_$side.log"
done

# The same one-epoch job twice with one fresh HOME and JAX's compilation cache on (the default
# except on Intel CPUs: jaxcolor.app): the second compiles almost nothing.
home=$(mktemp -d) scratch=$(mktemp -d)
for run in 1 2; do
  measure "cpu_compile_cache_run$run" env HOME="$home" JAXCOLOR_COMPILATION_CACHE=1 \
    python experiments/q3_unet.py \
    --epochs=1 --image_dir="$images" --output_dir="$scratch/q3" --noresume
done
rm -rf "$home" "$scratch"

# Train steps three times each (this VM's speed varies between runs: BENCHMARKS.md quotes the
# medians), AVX-512 and, emulated, AVX2 (native kernels, XLA and oneDNN capped at AVX2).
for run in 1 2 3; do
  measure "cpu_train_throughput_run$run" python benchmarks/train_throughput.py \
    --models=cnn,unet,conv_transpose,unet_transpose --batch_sizes=100 --repeats=9 \
    --precisions=float32 --image_dir="$images" --json="$out/cpu_train_throughput_run$run.json"
  measure "cpu_avx2_train_throughput_run$run" env JAXCOLOR_NATIVE_ISA=avx2 \
    XLA_FLAGS=--xla_cpu_max_isa=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/train_throughput.py \
    --batch_sizes=100 --repeats=9 --precisions=float32 --image_dir="$images" \
    --json="$out/cpu_avx2_train_throughput_run$run.json"
done
# Mixed precision: both precisions beside PyTorch's bfloat16 autocast (on an AVX512_BF16 CPU),
# and the main job in both.
measure cpu_bf16_train_throughput python benchmarks/train_throughput.py \
  --models=cnn,unet,conv_transpose,unet_transpose --batch_sizes=100 --repeats=5 \
  --image_dir="$images" --json="$out/cpu_bf16_train_throughput.json"
measure cpu_bf16_q3_end_to_end python benchmarks/q3_end_to_end.py --image_dir="$images" \
  --batch_size=50 --sides=jax,jax_bfloat16 --log_dir="$out" \
  --json="$out/cpu_bf16_q3_end_to_end.json"
for side in jax jax_bfloat16; do
  mv "$out/q3_end_to_end_$side.log" "$out/cpu_bf16_q3_end_to_end_$side.log"
done
measure cpu_xla_variants_train_throughput python benchmarks/train_throughput.py \
  --models=cnn,unet --batch_sizes=100 --repeats=3 --xla_convolutions --xla_defaults \
  --precisions=float32 --image_dir="$images" --json="$out/cpu_xla_variants_train_throughput.json"
measure cpu_layer_rewrites python benchmarks/layer_rewrites.py --image_dir="$images" --rounds=6
measure cpu_layer_rewrites_lab_bins python benchmarks/layer_rewrites.py --image_dir="$images" \
  --lab_bins --rounds=3
measure cpu_profile_step_unet python benchmarks/profile_step.py --image_dir="$images" --model=unet
measure cpu_profile_step_unet_transpose python benchmarks/profile_step.py --image_dir="$images" \
  --model=unet_transpose
measure cpu_conv_layers python benchmarks/conv_layers.py --batch=100
measure cpu_host_memory python benchmarks/host_memory.py --image_dir="$images" --rounds=2
measure cpu_scan_vs_steps python benchmarks/scan_vs_steps.py --batches=10 --repeats=3
measure cpu_compile_levels python benchmarks/compile_levels.py --train_steps
measure cpu_palette python benchmarks/palette.py --image_dir="$images" --categories=horse,all
measure cpu_reporting python benchmarks/reporting.py
echo "[$(date +%T)] done: logs in $out/"
