#!/usr/bin/python3
"""Render the example configs: replace ${NAME} placeholders.

usage: render-conf.py SRC_DIR OUT_DIR NAME=VALUE...
Every file of SRC_DIR is written to OUT_DIR with the values filled in; a
placeholder left without a value is an error.
"""
import os
import re
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    subs = dict(a.split("=", 1) for a in sys.argv[3:])
    os.makedirs(out, exist_ok=True)
    for name in sorted(os.listdir(src)):
        with open(os.path.join(src, name)) as f:
            text = f.read()
        missing = set(re.findall(r"\$\{([A-Z_]+)\}", text)) - set(subs)
        if missing:
            sys.exit("render-conf: %s: no value for %s"
                     % (name, ", ".join(sorted(missing))))
        for k, v in subs.items():
            text = text.replace("${%s}" % k, v)
        with open(os.path.join(out, name), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
