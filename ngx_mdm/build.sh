#!/bin/bash
# Build ngx_http_mdm_module.so against Debian's nginx-dev (--with-compat,
# the packaged binary's flags), linking the static PIC libmdm.
#   build.sh NGINX_SRC MODULE_DIR BUILD_DIR "LIBS" "EXTRA_CFLAGS"
set -eu
src=$1
mod=$2
out=$3
libs=$4
extra=${5:-}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$src"
# shellcheck disable=SC1091
. ./conf_flags
if [ ! -f "$out/Makefile" ] || [ "$mod/config" -nt "$out/Makefile" ]; then
    MDM_CORE_LIBS="$libs" ./configure \
        --with-cc-opt="$(dpkg-buildflags --get CFLAGS) -fPIC $(dpkg-buildflags --get CPPFLAGS) $extra" \
        --with-ld-opt="$(dpkg-buildflags --get LDFLAGS) -fPIC $extra" \
        "${NGX_CONF_FLAGS[@]}" \
        --add-dynamic-module="$mod" --builddir="$out" >"$out/configure.out" 2>&1 ||
        { tail -30 "$out/configure.out"; exit 1; }
fi
# nginx's Makefile knows the module's sources, not the libraries it links:
# relink when one of them is newer than the module
for f in $libs; do
    if [ -f "$f" ] && [ "$f" -nt "$out/ngx_http_mdm_module.so" ]; then
        rm -f "$out/ngx_http_mdm_module.so"
    fi
done
make -s -f "$out/Makefile" -C "$src" modules >"$out/make.out" 2>&1 ||
    { cat "$out/make.out"; exit 1; }
