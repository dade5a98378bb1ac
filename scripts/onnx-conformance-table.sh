#!/usr/bin/env bash
# Writes docs/onnx.md's conformance table from the conformance test's results:
#
#   DLMEM_ONNX_CONFORMANCE_OUT=out/conformance.tsv build/release/dlmem_tests --gtest_filter='OnnxConformance.*'
#   bash scripts/onnx-conformance-table.sh out/conformance.tsv > out/conformance.md
#
# One row per ONNX op that dlmem imports (`dlmem models --onnx-ops`): its single-op node
# tests that pass, and why (up to three reasons) the others are refused.
set -euo pipefail
tsv="${1:?usage: onnx-conformance-table.sh CONFORMANCE.tsv DLMEM}"
dlmem="${2:?usage: onnx-conformance-table.sh CONFORMANCE.tsv DLMEM}"
awk -F'\t' -v supported="$("$dlmem" models --onnx-ops | tr '\n' ' ')" '
  BEGIN { k = split(supported, s, " "); for (i = 1; i <= k; i++) sup[s[i]] = 1 }
  {
    test = $1; ops = $2; status = $3; why = $4
    total++; count[status]++
    if (ops ~ /\+/) { if (status == "pass" || status == "folded") composite_pass++; composite++; next }
    if (!(ops in sup)) next
    n[ops]++
    if (status == "pass" || status == "folded") p[ops]++
    if (status == "folded") f[ops]++
    if (status == "random") r[ops]++
    if (status == "refused") {
      sub(/^.*\.pb: /, "", why); sub(/^.*\): /, "", why); sub(/^node .[^ ]* /, "", why)
      sub(/ dlmem imports opsets.*/, " (before opset 7)", why); sub(/; dlmem computes in float32.*/, "", why)
      if (length(why) > 90) why = substr(why, 1, 87) "..."
      if (!((ops, why) in seen) && nr[ops]++ < 3) { seen[ops, why] = 1; reasons[ops] = reasons[ops] (reasons[ops] == "" ? "" : "; ") why }
    }
  }
  END {
    printf "%d node tests: %d pass (%d of them computed at import: shapes and constants), %d refused with a reason, %d random (numpy draws), %d wrong, %d crashes.\n\n", total, count["pass"] + count["folded"], count["folded"], count["refused"], count["random"], count["WRONG"] + 0, count["CRASH"] + 0
    printf "| op | node tests passed | refused: why |\n|----|------------------:|--------------|\n"
    m = 0
    for (o in n) names[++m] = o
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (names[j] < names[i]) { t = names[i]; names[i] = names[j]; names[j] = t }
    for (i = 1; i <= m; i++) {
      o = names[i]
      extra = (f[o] ? " (" f[o] " at import)" : "") (r[o] ? " (+" r[o] " random)" : "")
      printf "| %s | %d / %d%s | %s |\n", o, p[o], n[o], extra, reasons[o]
    }
    printf "\nModels of several ops (ONNX function expansions such as test_layer_normalization_*_expanded, and composite tests): %d of %d pass.\n", composite_pass, composite
  }' "$tsv"
