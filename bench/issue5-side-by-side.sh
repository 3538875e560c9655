#!/usr/bin/env bash
# Issue 5 side-by-side runs: the PyTorch anchor (../shared/bench) then ftune, same preset,
# method, shape, r and targets, one right after the other. Run on a quiet machine:
#   bash bench/issue5-side-by-side.sh | tee /tmp/issue5.txt
cd "$(dirname "$0")/.."
A() { bash ../shared/bench/torch-anchor.sh "$@" 2>/dev/null | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print(json.dumps({k: d[k] for k in ['preset','mode','autocast','batch','seq','tokens_per_s','peak_rss_mib','achieved_gflops']}))"; }
F() { node dist/src/cli/main.js bench "$@" | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print(json.dumps({k: d.get(k) for k in ['preset','method','bf16','batch','seq','tokens_per_s','peak_rss_mib','achieved_gflops','fwd_ms','bwd_ms','opt_ms','gradient_checkpointing']}))"; }
echo "## medium lora-bf16 all r16 b4"
A --preset medium --mode lora-bf16base --autocast bf16 --r 16 --targets all --batch 4 --steps 3 --warmup 1
F --preset medium --method lora --target-modules all --r 16 --bf16 --batch 4 --steps 3 --warmup 1
echo "## medium full bf16 b4"
A --preset medium --mode full --autocast bf16 --batch 4 --steps 3 --warmup 1
F --preset medium --method full --bf16 --batch 4 --steps 3 --warmup 1
echo "## medium full f32 b4"
A --preset medium --mode full --batch 4 --steps 3 --warmup 1
F --preset medium --method full --batch 4 --steps 3 --warmup 1
echo "## medium qlora all r16 b4 (vs ftune lora-bf16 above)"
F --preset medium --method qlora --target-modules all --r 16 --batch 4 --steps 3 --warmup 1
F --preset medium --method qlora --target-modules all --r 16 --batch 4 --steps 3 --warmup 1 --no-gradient-checkpointing
F --preset medium --method qlora --target-modules all --r 16 --bf16 --batch 4 --steps 3 --warmup 1
F --preset medium --method qlora --target-modules all --r 16 --bf16 --batch 4 --steps 3 --warmup 1 --no-gradient-checkpointing
# tiny steps take ~40 ms and small ~0.5 s: more of them, on both sides, so one slow
# step (the machine's noise) moves the median less.
echo "## tiny full b8"
A --preset tiny --mode full --steps 20
F --preset tiny --method full --steps 20
echo "## tiny lora qv r8 b8"
A --preset tiny --mode lora --steps 20
F --preset tiny --method lora --steps 20
echo "## small full b8"
A --preset small --mode full --steps 6
F --preset small --method full --steps 6
echo "## small lora qv r8 b8"
A --preset small --mode lora --steps 6
F --preset small --method lora --steps 6
echo "## decode medium (128 new tokens)"
for w in f32 bf16 nf4; do node dist/src/cli/main.js bench --generate --preset medium --weights $w --new-tokens 128; done
for l in merged unmerged; do node dist/src/cli/main.js bench --generate --preset medium --weights bf16 --lora $l --target-modules all --r 16 --new-tokens 128; done
echo "## decode A/B in one process (alternating rounds; the targets' ratios)"
node dist/bench/decode-ab.js --a bf16 --b nf4 --rounds 6
node dist/bench/decode-ab.js --a merged --b unmerged --rounds 6
