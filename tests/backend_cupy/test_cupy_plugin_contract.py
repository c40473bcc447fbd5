"""Static checks of the cupy backend that need neither cupy nor a GPU (source read, not imported).

* every hook is declared with the specification's exact signature and names a real function
  with the same arguments;
* the kernel modules never synchronise with the host (no ``.item()``, ``float(...)``...);
* cupy kernels are built once at import, never inside a per-call kernel function.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from pathlib import Path

import pytest

from sega_backend_cupy import plugin
from sega_core import hookspecs
from sega_core.backends.dispatch import KERNEL_HOOKS, OPTIONAL_SERVICE_HOOKS, SERVICE_HOOKS
from sega_core.backends.lazy import RESOLVE_ATTRIBUTE

PACKAGE_DIR = Path(importlib.util.find_spec("sega_backend_cupy").origin).parent
HOOKS = KERNEL_HOOKS + SERVICE_HOOKS + tuple(h for h in OPTIONAL_SERVICE_HOOKS if hasattr(plugin, h))


def _targets():
    out = {}
    for hook in HOOKS:
        resolver = getattr(getattr(plugin, hook), RESOLVE_ATTRIBUTE)
        module, _, function = resolver.args[0].partition(":")
        out[hook] = (module, function)
    return out


def _tree(module_name):
    path = PACKAGE_DIR / (module_name.rsplit(".", 1)[1] + ".py")
    return ast.parse(path.read_text(), filename=str(path))


def _top_functions(tree):
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("hook", HOOKS)
def test_stub_has_the_spec_signature(hook):
    stub = getattr(plugin, hook, None)
    assert stub is not None, f"plugin does not declare {hook}"
    assert hasattr(stub, "sega_impl"), f"{hook} is not marked @hookimpl"
    spec = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert list(inspect.signature(stub).parameters) == spec


@pytest.mark.parametrize("hook", HOOKS)
def test_lazy_target_exists_with_the_same_arguments(hook):
    module, function = _targets()[hook]
    assert module.startswith("sega_backend_cupy."), module
    functions = _top_functions(_tree(module))
    assert function in functions, f"{module} defines no {function}"
    node = functions[function]
    spec = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert [a.arg for a in node.args.args] == spec, f"{module}:{function} arguments differ from {hook}"
    assert ast.get_docstring(node), f"{module}:{function} has no docstring"


_IMPLEMENTATION_MODULES = sorted({module for module, _ in _targets().values()} | {"sega_backend_cupy._rowwise", "sega_backend_cupy._cupy"})
_SYNC_METHODS = {"item", "tolist", "get", "synchronize", "asnumpy"}
_SYNC_BUILTINS = {"float", "int", "bool", "complex"}


# services copy to and from the host; staging waits for its own copies, once per chunk
# (counted in test_cupy_staging.py).
@pytest.mark.parametrize("module", [m for m in _IMPLEMENTATION_MODULES if not m.endswith((".services", ".staging"))])
def test_kernel_modules_never_synchronise_with_the_host(module):
    offences = []
    for node in ast.walk(_tree(module)):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        if isinstance(fn, ast.Attribute) and fn.attr in _SYNC_METHODS:
            offences.append(f"line {node.lineno}: .{fn.attr}()")
        if isinstance(fn, ast.Name) and fn.id in _SYNC_BUILTINS:
            offences.append(f"line {node.lineno}: {fn.id}()")
    assert not offences, f"{module} may synchronise with the host: {offences}"


_BUILDERS = {"ElementwiseKernel", "ReductionKernel", "RawModule", "RawKernel"}


@pytest.mark.parametrize("module", _IMPLEMENTATION_MODULES)
def test_kernels_are_not_built_per_call(module):
    hook_functions = {function for mod, function in _targets().values() if mod == module}
    for name, node in _top_functions(_tree(module)).items():
        if name not in hook_functions:
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute):
                assert inner.func.attr not in _BUILDERS, f"{module}:{name} builds a cupy kernel on every call"


@pytest.mark.parametrize("path", sorted(PACKAGE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_public_functions_have_docstrings(path):
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path.name} has no module docstring"
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            assert ast.get_docstring(node), f"{path.name}:{node.name} has no docstring"
