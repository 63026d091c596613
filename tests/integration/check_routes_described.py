#!/usr/bin/env python3
"""check_routes_described.py ROUTES_C OPENAPI: every row of the route table
(fcgi-app/routes.c: {"METHOD", "/pattern", ...}) has an operation in
docs/openapi.yaml under the same path and method, and every operation there
is a row of the table (or says x-served-by: nginx, for what nginx serves
itself). A row's multi-segment parameter, {name*} (the rest of the path,
slashes and all), is {name} in the spec, a path parameter marked
x-multi-segment: true (OpenAPI has no template syntax for one); a HEAD
operation is the GET row of its path (the pipeline serves HEAD with it).
Prints each route without a description and each description without a
route; exit 1 when there is one."""
import re
import sys

from openapi_spec import METHODS, load, multi_segment

def main(routes_c, spec_path):
    with open(routes_c, encoding='utf-8') as f:
        raw = set(re.findall(r'\{\s*"([A-Z]+)",\s*"(/[^"]*)"', f.read()))
    # {name*} in a row is {name} in the spec; what each row wants marked multi-segment.
    rows = {(m, re.sub(r'\{([^}*]+)\*\}', r'{\1}', p)) for m, p in raw}
    want_multi = {(m, re.sub(r'\{([^}*]+)\*\}', r'{\1}', p)): set(re.findall(r'\{([^}*]+)\*\}', p))
                  for m, p in raw}
    spec = load(spec_path)
    ops = set()
    nginx = set()
    multi = {}
    for path, item in spec.get('paths', {}).items():
        for m in METHODS:
            if m in item:
                (nginx if item[m].get('x-served-by') == 'nginx' else ops).add((m.upper(), path))
                multi[(m.upper(), path)] = multi_segment(spec, item, (m,))
    # HEAD is served by the path's GET row.
    ops -= {('HEAD', p) for m, p in ops if m == 'HEAD' and ('GET', p) in rows}
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
    for key in sorted(rows & ops):
        got = multi.get(key, set())
        if got != want_multi.get(key, set()):
            print('%s %s: path parameters marked x-multi-segment in %s: %s; routes.c wants: %s'
                  % (key[0], key[1], spec_path, sorted(got) or 'none',
                     sorted(want_multi.get(key, set())) or 'none'))
            bad += 1
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], sys.argv[2]))
