#!/bin/sh
# No two C files of one directory call each other in a circle (see
# check-call-cycles.py): core/ is layered below mdm_req.c, the glue below
# its module file, pushd below pushd_main.c, eventd below eventd_main.c,
# common/ (shared by the daemons) within itself.
top=${top_srcdir:-.}
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
cd "$top" || exit 1
exec "$py" t/check-call-cycles.py -v core ngx_mdm mod_mdm pushd eventd common tools t bench
