#!/usr/bin/env python3
"""check_exposition.py FILE: what promtool check metrics does not check in a
Prometheus text exposition (format 0.0.4): no series twice (same name and
label set), each family's HELP and TYPE once and before its samples, every
sample of a declared family, label values well escaped, and per histogram
series: buckets in increasing le, cumulative (never decreasing), ending in
le="+Inf", and _count equal to the +Inf bucket. Prints each problem; exit 1
when there is one."""
import re
import sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def labels_of(text):
    out, pos = [], 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            raise ValueError('bad label set {%s}' % text)
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    return tuple(out)


def main(path):
    errors = []
    types, helps, seen = {}, set(), set()
    hist = {}  # (family, labels without le) -> {"buckets": [(le, v)], "count": v}
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    for n, line in enumerate(lines, 1):
        if line.startswith('# HELP '):
            name = line.split(' ')[2]
            if name in helps:
                errors.append('%d: HELP of %s repeated' % (n, name))
            helps.add(name)
            continue
        if line.startswith('# TYPE '):
            _, _, name, typ = line.split(' ', 3)
            if name in types:
                errors.append('%d: TYPE of %s repeated' % (n, name))
            types[name] = typ
            continue
        if line.startswith('#') or line == '':
            continue
        m = SAMPLE.match(line)
        if not m:
            errors.append('%d: not a sample: %r' % (n, line))
            continue
        name, labels, value = m.group(1), m.group(3) or '', m.group(4)
        try:
            lab = labels_of(labels)
            v = float(value)
        except ValueError as e:
            errors.append('%d: %s' % (n, e))
            continue
        key = (name, tuple(sorted(lab)))
        if key in seen:
            errors.append('%d: duplicate series %s{%s}' % (n, name, labels))
        seen.add(key)
        family = re.sub(r'_(bucket|sum|count)$', '', name)
        typ = types.get(name) or types.get(family)
        if typ is None:
            errors.append('%d: %s has no TYPE before it' % (n, name))
            continue
        if typ == 'histogram':
            rest = tuple(sorted(x for x in lab if x[0] != 'le'))
            h = hist.setdefault((family, rest), {'buckets': [], 'count': None})
            if name.endswith('_bucket'):
                le = dict(lab).get('le')
                if le is None:
                    errors.append('%d: bucket without le' % n)
                else:
                    h['buckets'].append((float(le), v, n))
            elif name.endswith('_count'):
                h['count'] = v
    for (family, rest), h in hist.items():
        where = '%s{%s}' % (family, ','.join('%s="%s"' % x for x in rest))
        b = h['buckets']
        if not b or b[-1][0] != float('inf'):
            errors.append('%s: buckets do not end in le="+Inf"' % where)
            continue
        for (le0, v0, _), (le1, v1, n1) in zip(b, b[1:]):
            if le1 <= le0:
                errors.append('%d: %s: le not increasing' % (n1, where))
            if v1 < v0:
                errors.append('%d: %s: buckets not cumulative' % (n1, where))
        if h['count'] != b[-1][1]:
            errors.append('%s: _count %s != +Inf bucket %s' % (where, h['count'], b[-1][1]))
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
