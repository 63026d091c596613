#!/usr/bin/env python3
"""check_routes_described.py ROUTES_C OPENAPI: every row of the route table
(fcgi-app/routes.c: {"METHOD", "/pattern", ...}) has an operation in
docs/openapi.yaml under the same path and method, and every operation there
is a row of the table (or says x-served-by: nginx, for what nginx serves
itself). Prints each route without a description and each description
without a route; exit 1 when there is one."""
import re
import sys

import yaml

METHODS = ('get', 'put', 'post', 'delete', 'patch', 'options', 'head')


def main(routes_c, spec_path):
    with open(routes_c, encoding='utf-8') as f:
        rows = set(re.findall(r'\{\s*"([A-Z]+)",\s*"(/[^"]*)"', f.read()))
    with open(spec_path, encoding='utf-8') as f:
        spec = yaml.safe_load(f)
    ops = set()
    nginx = set()
    for path, item in spec.get('paths', {}).items():
        for m in METHODS:
            if m in item:
                (nginx if item[m].get('x-served-by') == 'nginx' else ops).add((m.upper(), path))
    bad = 0
    if not rows:
        print('%s: no route rows found' % routes_c)
        bad += 1
    for m, p in sorted(rows - ops):
        print('route %s %s (fcgi-app/routes.c) has no description in %s: add its operation'
              % (m, p, spec_path))
        bad += 1
    for m, p in sorted(ops - rows):
        print('%s describes %s %s, which no row of fcgi-app/routes.c serves' % (spec_path, m, p))
        bad += 1
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], sys.argv[2]))
