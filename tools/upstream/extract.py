#!/usr/bin/env python3
"""Extract the argument surface of an upstream library into a JSON snapshot.

Usage: extract.py SOURCES.json SRC_DIR OUT.json

SOURCES.json (tools/upstream/sources/<lib>.json) names the library, its
version and, for every upstream file, the repository, path and commit it was
read at plus what to extract from it. SRC_DIR holds the files themselves
(saved from the upstream repository; they are not kept in llem's tree).
Only the standard library's `ast` is used: nothing is imported or executed.

Extract kinds:
  class     fields of a dataclass / msgspec.Struct / pydantic model: every
            annotated assignment in the class body (name, annotation text,
            default text; for pydantic Field(...)/field(...) the default= or
            default_factory= argument). Private names (leading _) are skipped.
  function  keyword parameters of a function or method (class.method), plus
            every kwargs.pop("name", default) in its body; names popped in a
            `for name in [...]: kwargs.pop(name, ...)` loop are recorded with
            "discarded": true (accepted and thrown away).
  constant  a module-level tuple/list of string literals, or a + of such
            names (enum value sets such as ALL_CACHE_IMPLEMENTATIONS).
  enum      the string values of an Enum class's members (NAME = "value").
  dict_keys the string keys of the first dict literal in a function or
            method (dispatch tables such as DecodingBaseConfig.from_dict).

A class extract may name "with_bases": [class, ...] (same file): their
fields come first and the class's own fields override them, which gives
the full keyword surface of a pydantic subclass (TorchLlmArgs =
BaseLlmArgs + its own). A field annotated with Literal[...] records the
literal strings as "values" (the closed set upstream validates).
"""
import ast
import json
import sys


def text(node):
    return None if node is None else ast.unparse(node)


def find_class(tree, name):
    for n in ast.walk(tree):
        if isinstance(n, ast.ClassDef) and n.name == name:
            return n
    raise SystemExit(f"class {name} not found")


def field_default(value):
    """Default text of a class field's value; unwraps Field()/field()."""
    if value is None:
        return None, True
    if isinstance(value, ast.Call):
        fn = text(value.func)
        if fn.split(".")[-1] in ("Field", "field", "PrivateAttr"):
            for kw in value.keywords:
                if kw.arg == "default":
                    return text(kw.value), False
                if kw.arg == "default_factory":
                    return text(kw.value) + "()", False
            if value.args and not (isinstance(value.args[0], ast.Constant) and value.args[0].value is Ellipsis):
                return text(value.args[0]), False
            return None, True
    return text(value), False


def literal_values(ann_node):
    """String values of the first Literal[...] inside an annotation."""
    for n in ast.walk(ann_node):
        if isinstance(n, ast.Subscript) and text(n.value).split(".")[-1] == "Literal":
            sl = n.slice
            elts = sl.elts if isinstance(sl, ast.Tuple) else [sl]
            return [e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return None


def class_fields(tree, name, with_bases=()):
    out = []
    for b in with_bases:
        for f in class_fields(tree, b)["fields"]:
            out = [o for o in out if o["name"] != f["name"]] + [f]
    cls = find_class(tree, name)
    for st in cls.body:
        if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
            n = st.target.id
            if n.startswith("_"):
                continue
            ann = text(st.annotation)
            if ann.startswith("ClassVar"):
                continue
            default, required = field_default(st.value)
            f = {"name": n, "type": ann, "default": default}
            if required:
                f["required"] = True
            vals = literal_values(st.annotation)
            if vals:
                f["values"] = vals
            out = [o for o in out if o["name"] != n] + [f]
    bases = [text(b) for b in cls.bases]
    return {"bases": bases, "fields": out}


def find_function(tree, dotted):
    parts = dotted.split(".")
    scope = tree
    if len(parts) == 2:
        scope = find_class(tree, parts[0])
    for n in ast.walk(scope):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == parts[-1]:
            return n
    raise SystemExit(f"function {dotted} not found")


def function_kwargs(tree, dotted):
    fn = find_function(tree, dotted)
    a = fn.args
    out = []
    pos = a.posonlyargs + a.args
    defaults = [None] * (len(pos) - len(a.defaults)) + list(a.defaults)
    for arg, d in zip(pos, defaults):
        if arg.arg in ("self", "cls"):
            continue
        out.append({"name": arg.arg, "type": text(arg.annotation), "default": text(d)})
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append({"name": arg.arg, "type": text(arg.annotation), "default": text(d)})
    seen = {f["name"] for f in out}
    discarded_loops = set()
    for n in ast.walk(fn):
        if isinstance(n, ast.For) and isinstance(n.iter, (ast.List, ast.Tuple)) and isinstance(n.target, ast.Name):
            names = [e.value for e in n.iter.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            pops = [c for c in ast.walk(n) if is_kwargs_pop(c) and isinstance(c.args[0], ast.Name) and c.args[0].id == n.target.id]
            if pops:
                for nm in names:
                    discarded_loops.add(nm)
    for n in ast.walk(fn):
        if is_kwargs_pop(n) and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str):
            nm = n.args[0].value
            if nm in seen or nm.startswith("_"):
                continue
            seen.add(nm)
            out.append({"name": nm, "type": None, "default": text(n.args[1]) if len(n.args) > 1 else None})
    for nm in sorted(discarded_loops):
        if nm in seen or nm.startswith("_"):
            continue
        seen.add(nm)
        out.append({"name": nm, "type": None, "default": None, "discarded": True})
    return {"fields": out}


def is_kwargs_pop(n):
    return (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "pop"
            and isinstance(n.func.value, ast.Name) and n.func.value.id == "kwargs" and n.args)


def constant(tree, name):
    consts = {}
    for st in tree.body:
        if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
            consts[st.targets[0].id] = st.value

    def ev(node):
        if isinstance(node, (ast.Tuple, ast.List)):
            return [e.value for e in node.elts]
        if isinstance(node, ast.Name):
            return ev(consts[node.id])
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return ev(node.left) + ev(node.right)
        raise SystemExit(f"constant {name}: cannot evaluate {text(node)}")

    return {"values": ev(consts[name])}


def enum_values(tree, name):
    cls = find_class(tree, name)
    vals = []
    for st in cls.body:
        if isinstance(st, ast.Assign) and isinstance(st.value, ast.Constant) and isinstance(st.value.value, str):
            vals.append(st.value.value)
    return {"values": vals}


def dict_keys(tree, dotted):
    fn = find_function(tree, dotted)
    for n in ast.walk(fn):
        if isinstance(n, ast.Dict):
            return {"values": [k.value for k in n.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]}
    raise SystemExit(f"{dotted}: no dict literal")


def main(spec_path, src_dir, out_path):
    spec = json.load(open(spec_path))
    snap = {"library": spec["library"], "version": spec["version"], "note": spec.get("note", ""), "files": [], "surfaces": {}}
    for src in spec["files"]:
        tree = ast.parse(open(f"{src_dir}/{src['file']}").read())
        snap["files"].append({k: src[k] for k in ("repo", "path", "commit", "provenance") if k in src})
        for ex in src["extract"]:
            key = ex.get("as", ex["name"])
            if ex["kind"] == "class":
                s = class_fields(tree, ex["name"], ex.get("with_bases", ()))
            elif ex["kind"] == "function":
                s = function_kwargs(tree, ex["name"])
            elif ex["kind"] == "enum":
                s = enum_values(tree, ex["name"])
            elif ex["kind"] == "dict_keys":
                s = dict_keys(tree, ex["name"])
            elif ex["kind"] == "constant":
                s = constant(tree, ex["name"])
            else:
                raise SystemExit(f"unknown kind {ex['kind']}")
            s["kind"] = ex["kind"]
            s["source"] = {"repo": src["repo"], "path": src["path"], "commit": src["commit"], "symbol": ex["name"]}
            snap["surfaces"][key] = s
    with open(out_path, "w") as f:
        json.dump(snap, f, indent=1, sort_keys=False)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
