#!/usr/bin/env bash
# Saves weights onto a full disk (a 512 KiB tmpfs) over an earlier file:
# the run fails with "No space left on device" naming the file, and the
# earlier file is left as it was. Prints "skipped: ..." where mounting is
# not allowed (not root, or no CAP_SYS_ADMIN in a container).
#   full_disk.sh PLAN DATA WORKDIR
set -u
plan=$1 data=$2 work=$3
mnt=$work/tmpfs
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=512k tmpfs "$mnt" 2>/dev/null; then
  echo "skipped: cannot mount a tmpfs here (a full disk needs root)"
  exit 0
fi
trap 'umount "$mnt"' EXIT
head -c 100000 /dev/urandom > "$mnt/w.safetensors"
cp "$mnt/w.safetensors" "$work/before"
pipec-run "$plan" --data "$data" --steps 1 --quiet --save "$mnt/w.safetensors" 2> "$work/err"
echo "rc=$?"
grep -o "cannot write $mnt/w.safetensors: No space left on device" "$work/err" | sed "s|$mnt|TMPFS|"
cmp "$mnt/w.safetensors" "$work/before" && echo "the earlier file is intact"
ls "$mnt" | grep -c tmp | sed 's/^/temporary files left: /'
