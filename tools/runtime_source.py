"""Read the Lambda runtime's source (``lambda/rightsizing_runtime``) without importing it.

Shared by the least-privilege test (which AWS calls each handler makes) and the fidelity
checks (which error types each handler can raise): both need a handler module's boto3 clients
and the runtime modules it imports. Importing the handlers instead would create their clients
(and need an AWS region) and run their module code.
"""

from __future__ import annotations

import ast
import builtins
from functools import cache
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[1] / "lambda" / "rightsizing_runtime"
PACKAGE = "rightsizing_runtime"


@cache
def module_tree(module: str) -> ast.Module:
    """The parsed source of ``rightsizing_runtime.<module>``."""
    return ast.parse((RUNTIME / f"{module}.py").read_text())


def client_service(value: ast.expr) -> str | None:
    """The service of ``boto3.client("svc", ...)`` or ``sagemaker_client()``, else None."""
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    if isinstance(func, ast.Name) and func.id == "sagemaker_client":
        return "sagemaker"
    if (
        isinstance(func, ast.Attribute)
        and func.attr == "client"
        and isinstance(func.value, ast.Name)
        and func.value.id == "boto3"
        and value.args
        and isinstance(value.args[0], ast.Constant)
    ):
        return str(value.args[0].value)
    return None


def module_clients(module: str) -> dict[str, str]:
    """Module-level client variable -> its botocore service name.

    STYLE.md 8: handlers create their clients at module level.
    """
    clients: dict[str, str] = {}
    for node in module_tree(module).body:
        if isinstance(node, ast.Assign) and (service := client_service(node.value)):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    clients[target.id] = service
    return clients


def imported_modules(module: str) -> set[str]:
    """``module`` and every runtime module it imports, directly or through others."""
    seen: set[str] = set()
    pending = [module]
    while pending:
        current = pending.pop()
        if current in seen or not (RUNTIME / f"{current}.py").exists():
            continue
        seen.add(current)
        for node in ast.walk(module_tree(current)):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    pending.append(node.module.split(".")[0])
                else:
                    pending.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
                pending.append((node.module or "").removeprefix(f"{PACKAGE}.").split(".")[0])
    return seen


def exception_classes(modules: set[str]) -> set[str]:
    """Names of the exception classes the given runtime modules define.

    A class counts when its base is a built-in exception or another such class.
    """
    known = {
        name
        for name, value in vars(builtins).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    found: set[str] = set()
    classes = [
        node
        for module in sorted(modules)
        for node in ast.walk(module_tree(module))
        if isinstance(node, ast.ClassDef)
    ]
    changed = True
    while changed:
        changed = False
        for node in classes:
            bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
            if node.name not in found and bases & (known | found):
                found.add(node.name)
                changed = True
    return found
