#!/usr/bin/env bash
# tests/gpu/tables.sh DIR: the Markdown that a GPU run's results in DIR make for bench/RESULTS.md
# (tests/gpu/run.sh redraws DIR/tables.md with it after every stage; README.md beside this file
# says where it goes). Reads what exists of: stages.tsv (run.sh's stages, with its "# key" lines),
# train_gpu.txt (train_bench rows), train_gpu_torch.tsv (the PyTorch + Transformers peer),
# bench_optim_cuda.tsv (bench_optim --tsv) and torch_gpu.tsv (fused/foreach AdamW and the copy
# ceiling). A missing file or row shows as "-"; never fails on missing input.
set -uo pipefail
dir=${1:?usage: tests/gpu/tables.sh DIR}
st=$dir/stages.tsv tr=$dir/train_gpu.txt tt=$dir/train_gpu_torch.tsv bo=$dir/bench_optim_cuda.tsv to=$dir/torch_gpu.tsv
val() { [ -f "$st" ] && awk -F'\t' -v k="# $1" '$1 == k { v = $2 } END { print v }' "$st"; }
in_() { [ -f "$1" ] && echo "$1" || echo /dev/null; }

echo "### Run of $(val date) on $(val device)"
echo
echo "Source: $(val source). Stages (tests/gpu/run.sh; seconds each):"
echo
echo "| stage | result | s | note |"
echo "|---|---|---:|---|"
awk -F'\t' '!/^#/ && NF >= 3 { gsub(/\|/, "/", $4); printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$(in_ "$st")"

echo
echo "#### Fine-tuning distilbert-base-cased on the GPU (seq 128, batch 32, 50 steps after 5 warm-up)"
echo
echo "Targets: octet >= 1.0x PyTorch's samples/s in each precision; octet's 8-bit optimizer state <= 1/3.9 of AdamW's."
echo "PyTorch: Transformers' DistilBertForSequenceClassification with torch.optim.AdamW(fused=True), bf16 by autocast."
echo
echo "| precision | optimizer | octet samples/s | PyTorch samples/s | octet / PyTorch | target | octet peak MiB | PyTorch peak MiB | octet activations MiB | octet state MB |"
echo "|---|---|---:|---:|---:|---|---:|---:|---:|---:|"
for prec in fp32 bf16; do
    for opt in adamw adamw8bit; do
        awk -v p="$prec" -v o="$opt" -v tf="$(in_ "$tt")" '
            BEGIN { while ((getline l < tf) > 0) { split(l, f, "\t"); if (f[1] == "torch_train") { ts[f[2]] = f[3]; tm[f[2]] = f[4] } } }
            $6 == "cuda" && $7 == p && $8 == o { s = $5; pk = $9; st = $10; ac = $11 }
            END {
                t = (p in ts) ? ts[p] : ""
                r = (s != "" && t > 0) ? sprintf("%.2fx", s / t) : "-"
                v = (s != "" && t > 0) ? (s / t >= 1.0 ? "met" : "missed") : "-"
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p, o, (s != "" ? s : "-"), (t != "" ? t : "-"), r, v,
                       (pk != "" ? sprintf("%.0f", pk / 1048576) : "-"), (p in tm ? tm[p] : "-"),
                       (ac != "" ? sprintf("%.0f", ac / 1048576) : "-"), (st != "" ? sprintf("%.1f", st / 1e6) : "-")
            }' "$(in_ "$tr")"
    done
done
echo
awk '$6 == "cuda" && $8 == "adamw" { a[$7] = $10; act[$7] = $11 } $6 == "cuda" && $8 == "adamw8bit" { b[$7] = $10 }
    END { n = 0
          if (("fp32" in act) && ("bf16" in act) && act["fp32"] > 0)
              printf "Activations (adamw runs): fp32 %.0f MiB, bf16 %.0f MiB (%.0f%%: bf16 stores the saved activations in 16 bits).\n",
                     act["fp32"] / 1048576, act["bf16"] / 1048576, 100 * act["bf16"] / act["fp32"]
          for (p in a) if (p in b && b[p] > 0) { n++
              printf "Optimizer state %s: adamw %d B, adamw8bit %d B, ratio 1/%.2f (target <= 1/3.9): %s.\n", p, a[p], b[p],
                     a[p] / b[p], (a[p] / b[p] >= 3.9 ? "met" : "missed") }
          if (!n) print "Optimizer state: no CUDA rows (no run, or no device)." }' "$(in_ "$tr")"

echo
copy=$(awk -F'\t' '$1 == "copy" { print $2 }' "$(in_ "$to")")
echo "#### Optimizer step on the GPU (bench_optim --device cuda; PyTorch's AdamW fused / foreach; device-to-device copy ${copy:--} GB/s, read + write)"
echo
echo "| optimizer | size | octet Mparam/s | B/param | GB/s | % of copy | torch fused / foreach Mparam/s | octet / best torch | state MB | AdamW state MB |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' -v copy="${copy:-0}" -v tf="$(in_ "$to")" '
    BEGIN { while ((getline l < tf) > 0) { split(l, f, "\t"); if (f[1] == "torch") { m[f[2], f[3]] = f[5]; if (f[5] > best[f[3]]) best[f[3]] = f[5] } } }
    $1 == "row" {
        n = $5; b = best[n]
        printf "| %s | %s | %.1f | %.2f | %.1f | %s | %s / %s | %s | %.1f | %.1f |\n", $2, $4, $7, $8, $9,
               (copy > 0 ? sprintf("%.0f%%", 100 * $9 / copy) : "-"),
               ((("fused", n) in m) ? m["fused", n] : "-"), ((("foreach", n) in m) ? m["foreach", n] : "-"),
               (b > 0 ? sprintf("%.2fx", $7 / b) : "-"), $11 / 1e6, $12 / 1e6 }' "$(in_ "$bo")"
