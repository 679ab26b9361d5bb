#!/usr/bin/env bash
# The benchmarks' baselines: wrk (load), nginx (static bytes), ffmpeg (encoding), GNU time (RSS).
set -euo pipefail
need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx-light)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
[ -x /usr/bin/time ] || need+=(time)
command -v espeak-ng >/dev/null || need+=(espeak-ng)  # speech for the transcription bench
if ((${#need[@]})); then
  echo "Installing benchmark tools: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
