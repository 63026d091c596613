"""openapi_spec.py - what check_contract.py and check_routes_described.py both
need of docs/openapi.yaml (OpenAPI 3.1): loading it, following local $refs,
and the path parameters marked x-multi-segment (a parameter that holds the
rest of the path, slashes and all, which OpenAPI has no template syntax for)."""
import yaml

METHODS = ('get', 'put', 'post', 'delete', 'patch', 'options', 'head')


def load(spec_path):
    with open(spec_path, encoding='utf-8') as f:
        return yaml.safe_load(f)


def resolve(spec, node):
    """node with its local $ref (RFC 6901 pointer, "#/...") followed, as often as it takes."""
    while isinstance(node, dict) and '$ref' in node:
        ref = node['$ref']
        assert ref.startswith('#/'), ref
        node = spec
        for part in ref[2:].split('/'):
            node = node[part.replace('~1', '/').replace('~0', '~')]
    return node


def multi_segment(spec, item, ops=METHODS):
    """The names of the path parameters marked x-multi-segment: true, at the path item
    or at its operations of the methods in ops."""
    params = list(item.get('parameters') or [])
    for m in ops:
        params += (item.get(m) or {}).get('parameters') or []
    return {p.get('name') for p in (resolve(spec, p) for p in params)
            if p.get('in') == 'path' and p.get('x-multi-segment') is True}
