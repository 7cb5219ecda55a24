#!/bin/sh
# Build mod_mdm.so with apxs (Debian apache2-dev) in BUILD_DIR, linking the
# static PIC libmdm. apxs writes next to its sources: they are copied to
# BUILD_DIR first so that the source tree stays clean.
#   build.sh APXS SRC_DIR BUILD_DIR CORE_INCLUDE "LIBS" "EXTRA_CFLAGS"
# The blocking plan runner, the Redis link and the metrics block
# (tools/mdm_sync.c, tools/mdm_redislink.c and tools/mdm_metrics.c,
# beside CORE_INCLUDE's ../tools) are compiled in: they are not part of
# libmdm.
set -eu
apxs=$1
src=$2
out=$3
inc=$4
libs=$5
extra=${6:-}
mkdir -p "$out"
cp "$src"/*.c "$src"/*.h "$out/"
cp "$inc/../tools/mdm_sync.c" "$inc/../tools/mdm_sync.h" \
    "$inc/../tools/mdm_redislink.c" "$inc/../tools/mdm_redislink.h" \
    "$inc/../tools/mdm_metrics.c" "$inc/../tools/mdm_metrics.h" "$out/"
cd "$out"
wc=""
for f in -Wall -Wextra -Werror -Wno-unused-parameter -std=gnu11 $extra; do
    wc="$wc -Wc,$f"
done
wl=""
for f in $extra; do
    wl="$wl -Wl,$f"
done
# shellcheck disable=SC2086
"$apxs" -c -o mod_mdm.la -I"$inc" $(pkg-config --cflags hiredis) $wc $wl \
    mod_mdm.c mod_mdm_directives.c mod_mdm_conf.c mod_mdm_handler.c \
    mod_mdm_redis.c mod_mdm_metrics.c mdm_sync.c mdm_redislink.c mdm_metrics.c \
    $libs >build.out 2>&1 ||
    { cat build.out; exit 1; }
cp .libs/mod_mdm.so mod_mdm.so
