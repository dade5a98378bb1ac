#!/usr/bin/env bash
# The layer rule (docs/architecture.md, "Folders and the layer rule"): a folder of src/
# includes only folders below it. Reads every #include "folder/..." line under src/
# and fails, naming the file, the line and both folders, when one points up or sideways.
#
#   bash scripts/check-layers.sh [SRC_DIR]     # run by `make test` (ctest: layers)
set -euo pipefail
src="${1:-$(dirname "$0")/../src}"

# Rank of each folder; a folder may include folders of lower rank only (and itself).
declare -A rank=(
  [util]=0
  [ir]=1
  [codec]=2 [models]=2
  [analysis]=3
  [plan]=4
  [sim]=5 [runtime]=5
  [planners]=6
  [session]=7 [report]=7
  [train]=8
  [deploy]=9
  [cli]=10
)

status=0
while IFS= read -r hit; do
  file="${hit%%:*}"; rest="${hit#*:}"; line="${rest%%:*}"; text="${rest#*:}"
  from="${file#"$src"/}"; from="${from%%/*}"
  to="$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]+"([^/"]+)\/.*/\1/' <<<"$text")"
  [[ "$to" == "$text" || "$to" == "$from" ]] && continue
  if [[ -z "${rank[$from]+x}" ]]; then
    echo "check-layers: $file: folder '$from' has no layer; add it to scripts/check-layers.sh" >&2
    status=1; continue
  fi
  if [[ -z "${rank[$to]+x}" ]]; then
    echo "check-layers: $file:$line includes '$to/', which is not a folder of src/ with a layer" >&2
    status=1; continue
  fi
  if (( rank[$to] >= rank[$from] )); then
    echo "check-layers: $file:$line: $from (layer ${rank[$from]}) includes $to (layer ${rank[$to]}): a folder includes only folders below it" >&2
    status=1
  fi
done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[^/"]+/' "$src" --include='*.h' --include='*.cpp' --include='*.cu' --include='*.cuh')

if (( status == 0 )); then echo "check-layers: every include of $src points down"; fi
exit $status
