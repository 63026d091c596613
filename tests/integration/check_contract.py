#!/usr/bin/env python3
"""check_contract.py OPENAPI DIR: every response the integration suite
received (lib.sh's req records each as DIR/N.r "METHOD PATH STATUS", DIR/N.h
the headers, DIR/N.b the body) validated against docs/openapi.yaml, so a route
that drifts from its description fails:

- the path, normalised as nginx does (percent-decoding, merged slashes, dot
  segments), matches a path of the spec, and the method one of its
  operations; a request to a path the spec does not have may only be refused
  (an Error body with one of REFUSALS' statuses, or nginx's 301 to HTTPS),
  as nginx and the pipeline refuse before routing; so may one with a method
  the path lacks (405, or an earlier refusal); a path parameter marked
  x-multi-segment: true matches the rest of the path, slashes and all;
- the status is one the operation documents;
- every header the response documents as required is there, and every
  documented header present matches its schema;
- the Content-Type is one the response documents (none when it has no
  content), and a JSON body is valid against its schema (JSON Schema 2020-12).
A request curl got no answer to (000: nginx closed the connection) is
skipped; HEAD answers are checked without their body.
Prints each problem (at most 50) and a summary; exit 1 when there is one."""
import json
import os
import re
import sys
import urllib.parse
import warnings

import jsonschema
from openapi_spec import load, multi_segment, resolve

# What nginx or the pipeline answers before (or without) routing, whatever the path.
REFUSALS = {301, 400, 401, 403, 404, 405, 413, 414, 429, 431, 501, 503, 505}


def normalise(path):
    path = urllib.parse.unquote(path.split('?', 1)[0])
    path = re.sub('/+', '/', path)
    out = []
    for seg in path.split('/'):
        if seg == '..':
            if len(out) > 1:
                out.pop()
        elif seg != '.':
            out.append(seg)
    return '/'.join(out) or '/'


def template_re(t, multi=()):
    # A parameter marked x-multi-segment (the rest of the path) may hold '/'.
    return re.compile('^' + re.sub(r'\\\{([^}]+)\\\}',
                                   lambda m: '.+' if m.group(1) in multi else '[^/]+',
                                   re.escape(t)) + '$')


def headers_of(text):
    # The last response of the file (curl -D writes each of a redirect chain).
    blocks = [b for b in re.split(r'\r?\n\r?\n', text) if b.strip()]
    h = {}
    for line in (blocks[-1].splitlines()[1:] if blocks else []):
        if ':' in line:
            k, v = line.split(':', 1)
            h[k.strip().lower()] = v.strip()
    return h


def main(spec_path, d):
    spec = load(spec_path)
    paths = [(template_re(t, multi_segment(spec, item)), t, item)
             for t, item in spec['paths'].items()]
    # RefResolver: what Debian 12's jsonschema (4.10) has; newer ones only deprecate it.
    warnings.filterwarnings('ignore', category=DeprecationWarning)
    resolver = jsonschema.RefResolver('', spec)
    errors, n, skipped = [], 0, 0

    def valid(schema, value):
        v = jsonschema.Draft202012Validator(schema, resolver=resolver,
                                            format_checker=jsonschema.FormatChecker())
        return [e.message for e in v.iter_errors(value)][:2]

    for name in sorted(os.listdir(d)):
        if not name.endswith('.r'):
            continue
        base = os.path.join(d, name[:-2])
        try:
            with open(base + '.r', encoding='utf-8') as f:
                method, path, status = f.read().split()
            with open(base + '.h', encoding='utf-8', errors='replace') as f:
                h = headers_of(f.read())
            with open(base + '.b', 'rb') as f:
                body = f.read()
        except (OSError, ValueError):
            skipped += 1
            continue
        status = int(status)
        ctype = h.get('content-type', '').split(';')[0].strip()
        if status == 0:  # curl got no answer (nginx closed the connection)
            skipped += 1
            continue
        n += 1
        shown = path if len(path) <= 100 else path[:100] + '...(%d bytes)' % len(path)
        where = '%s %s -> %d' % (method, shown, status)
        npath = normalise(path)
        item = next((it for rx, _, it in paths if rx.match(npath)), None)
        op = None
        if item is not None:
            op = item.get(method.lower()) or (item.get('get') if method == 'HEAD' else None)
        if op is None:
            what = ('no such path in the spec' if item is None
                    else 'the spec has no %s for this path' % method)
            if status not in REFUSALS:
                errors.append('%s: %s, and not a refusal' % (where, what))
            elif ctype == 'application/json':
                try:
                    problems = valid({'$ref': '#/components/schemas/Error'}, json.loads(body))
                except ValueError:
                    problems = ['not JSON']
                if problems:
                    errors.append('%s: %s, and not an Error body: %s' % (where, what, problems))
            elif not (ctype == 'text/html' and status == 301):
                errors.append('%s: %s, and a %r body' % (where, what, ctype))
            continue
        responses = op.get('responses', {})
        resp = responses.get(str(status)) or responses.get('default')
        if resp is None:
            errors.append('%s: status %d not documented' % (where, status))
            continue
        resp = resolve(spec, resp)
        for hname, hdef in (resp.get('headers') or {}).items():
            hdef = resolve(spec, hdef)
            value = h.get(hname.lower())
            if value is None:
                if hdef.get('required'):
                    errors.append('%s: required header %s missing' % (where, hname))
                continue
            for e in valid(hdef.get('schema', {}), value):
                errors.append('%s: header %s: %s' % (where, hname, e))
        content = resp.get('content') or {}
        if method == 'HEAD' or not content:
            if content == {} and body and method != 'HEAD':
                errors.append('%s: a body where the spec has none' % where)
            continue
        media = {k.split(';')[0].strip(): v for k, v in content.items()}
        if ctype not in media:
            errors.append('%s: Content-Type %r not documented (%s)' % (where, ctype, ', '.join(media)))
            continue
        if ctype == 'application/json':
            try:
                value = json.loads(body)
            except ValueError:
                errors.append('%s: body is not JSON' % where)
                continue
            for e in valid(media[ctype].get('schema', {}), value):
                errors.append('%s: body: %s' % (where, e))
    for e in errors[:50]:
        print(e)
    print('contract: %d responses checked, %d skipped (not the API\'s), %d problems'
          % (n, skipped, len(errors)))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], sys.argv[2]))
