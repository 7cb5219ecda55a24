#!/bin/sh
# The C sources follow the root .clang-format.
top=${top_srcdir:-.}
if ! command -v clang-format >/dev/null 2>&1; then
    echo "SKIP: clang-format not installed"
    exit 77
fi
cd "$top" || exit 1
files=$(find core ngx_mdm mod_mdm pushd eventd common tools bench t -name '*.[ch]' \
    ! -name 'mdm_lua.c' 2>/dev/null)
if ! clang-format --dry-run -Werror $files; then
    echo "FAIL: run clang-format -i on the files above"
    exit 1
fi
echo "ok: $(echo "$files" | wc -l) files follow .clang-format"
