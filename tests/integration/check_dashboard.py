#!/usr/bin/env python3
"""check_dashboard.py DASHBOARD [PROMETHEUS_URL]: conf/grafana/fetchml.json
checked without Grafana. Structure: a dashboard object (title, uid,
schemaVersion, templating with the datasource variable), every panel with a
unique id, a type, a title and a gridPos inside the 24-column grid, every
non-row panel on the ${datasource} variable with at least one target, each
target with a unique refId and a PromQL expr. With PROMETHEUS_URL, every
target's expr (Grafana's variables replaced: $__rate_interval by 1m,
$instance by .*) is run as an instant query and must return data. Prints
each problem; exit 1 when there is one."""
import json
import sys
import urllib.parse
import urllib.request

VARS = {'$__rate_interval': '1m', '$instance': '.*'}


def structure(d, errors):
    for key, typ in (('title', str), ('uid', str), ('schemaVersion', int), ('panels', list),
                     ('templating', dict)):
        if not isinstance(d.get(key), typ):
            errors.append('dashboard: %s missing or not a %s' % (key, typ.__name__))
    names = [v.get('name') for v in d.get('templating', {}).get('list', [])]
    if 'datasource' not in names:
        errors.append('templating: no datasource variable')
    ids, exprs = set(), []
    for p in d.get('panels', []):
        title = p.get('title')
        where = 'panel %r' % title
        if not isinstance(title, str) or not title:
            errors.append('%s: no title' % where)
        if p.get('id') in ids or not isinstance(p.get('id'), int):
            errors.append('%s: id missing or repeated' % where)
        ids.add(p.get('id'))
        g = p.get('gridPos', {})
        if not all(isinstance(g.get(k), int) for k in 'xywh') or g['x'] + g['w'] > 24 or g['w'] < 1:
            errors.append('%s: bad gridPos %r' % (where, g))
        if p.get('type') == 'row':
            continue
        if p.get('type') not in ('timeseries', 'stat', 'gauge', 'table', 'bargauge'):
            errors.append('%s: unknown type %r' % (where, p.get('type')))
        if p.get('datasource', {}).get('uid') != '${datasource}':
            errors.append('%s: not on the ${datasource} variable' % where)
        targets = p.get('targets') or []
        if not targets:
            errors.append('%s: no targets' % where)
        refs = [t.get('refId') for t in targets]
        if len(set(refs)) != len(refs) or None in refs:
            errors.append('%s: refIds missing or repeated' % where)
        for t in targets:
            if not isinstance(t.get('expr'), str) or not t['expr'].strip():
                errors.append('%s: target %s has no expr' % (where, t.get('refId')))
            else:
                exprs.append((title, t['expr']))
    return exprs


def run(base, title, expr, errors):
    for k, v in VARS.items():
        expr = expr.replace(k, v)
    url = base + '/api/v1/query?' + urllib.parse.urlencode({'query': expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            ans = json.load(r)
    except Exception as e:  # an HTTP 400 is a PromQL error
        errors.append('panel %r: %s: %s' % (title, expr, e))
        return
    if ans.get('status') != 'success' or not ans['data']['result']:
        errors.append('panel %r: no data for %s' % (title, expr))


def main():
    errors = []
    with open(sys.argv[1], encoding='utf-8') as f:
        d = json.load(f)
    exprs = structure(d, errors)
    if len(sys.argv) > 2:
        for title, expr in exprs:
            run(sys.argv[2], title, expr, errors)
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
