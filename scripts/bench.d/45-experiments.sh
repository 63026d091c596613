# Part of scripts/bench.sh (sourced; see the comment above its loop): experiment file
# throughput. A 200 MB file of random bytes in $VAR is uploaded (PUT
# /v1/experiments/bench/files/big.bin: TLS through nginx, streamed by a worker to an
# O_TMPFILE, hashed, fdatasync'ed, renamed) and downloaded (to a file beside it), three
# times each, against a plain `cp` of the same file on the same disk, and a `cp`
# followed by `sync --data` (the upload syncs its file before it is in place).
# Prints the best of three as "experiments upload: X MB/s", "experiments download:
# X MB/s", "cp (same disk): X MB/s", "cp + fdatasync: X MB/s" (MB = 10^6 bytes).
# The bench user's upload bucket (data.uploads_per_minute, 10 in the dev config)
# covers the three uploads.
# shellcheck shell=bash disable=SC2034 # INVALID is bench.sh's
ex_mb=200
ex_src=$VAR/bench-exp-src.bin
ex_dst=$VAR/bench-exp-copy.bin
ex_url=$BASE/v1/experiments/bench/files/big.bin
head -c $((ex_mb * 1000000)) /dev/urandom >"$ex_src"
sync

ex_put() {
    local code
    code=$(curl -sk -o /dev/null -w '%{http_code}' -H "X-API-Key: $KEY" -T "$ex_src" "$ex_url")
    [ "$code" = 201 ] || [ "$code" = 200 ]
}
ex_get() { [ "$(curl -sk -o "$ex_dst" -w '%{http_code}' -H "X-API-Key: $KEY" "$ex_url")" = 200 ]; }
ex_cp() { cp "$ex_src" "$ex_dst"; }
ex_cp_sync() { cp "$ex_src" "$ex_dst" && sync --data "$ex_dst"; }
# ex_best CMD: EX_BEST = the best MB/s of three runs of CMD (the copy is removed
# before each, the page cache is not dropped); EX_OK=0 when a run failed.
ex_best() {
    local i t0 t1
    EX_BEST=0
    for i in 1 2 3; do
        rm -f "$ex_dst"
        t0=$(date +%s%N)
        "$@" || EX_OK=0
        t1=$(date +%s%N)
        EX_BEST=$(awk -v b="$EX_BEST" -v d=$((t1 - t0)) -v mb=$ex_mb \
            'BEGIN { r = d > 0 ? mb * 1e9 / d : 0; printf "%.0f", (r > b ? r : b) }')
    done
}

EX_OK=1
ex_best ex_put
ex_up=$EX_BEST
ex_best ex_get
ex_down=$EX_BEST
cmp -s "$ex_src" "$ex_dst" || EX_OK=0
ex_best ex_cp
ex_cpr=$EX_BEST
ex_best ex_cp_sync
ex_cps=$EX_BEST
rm -rf "$VAR/experiments/bench" # the bench user (a researcher) may not delete
rm -f "$ex_src" "$ex_dst"
if [ "$EX_OK" != 1 ]; then
    fm_say "experiments: an upload or download failed (or the copy differs)"
    INVALID=1
fi
echo "experiments upload: $ex_up MB/s (${ex_mb} MB, PUT over TLS through nginx, best of 3)"
echo "experiments download: $ex_down MB/s (GET to a file on the same disk)"
echo "cp (same disk): $ex_cpr MB/s"
echo "cp + fdatasync: $ex_cps MB/s"
