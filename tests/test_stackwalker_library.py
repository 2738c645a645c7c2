"""The stackwalker is a library: it imports nothing of the service around it (docs/architecture.md
§8).

The symbol cache, the worker and the commands build on it; it never reaches back into them,
nor into the service's third-party clients.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import procsupervisor.workers.stackwalker as stackwalker

PACKAGE = "procsupervisor.workers.stackwalker"
PACKAGE_DIR = Path(stackwalker.__file__).resolve().parent
SERVICE_CLIENTS = ("boto3", "botocore", "psycopg2", "elasticsearch", "pika", "diskcache", "click")


def _forbidden(module: str) -> bool:
    top = module.split(".")[0]
    if top in SERVICE_CLIENTS:
        return True
    in_project = top == "procsupervisor"
    return in_project and not (module == PACKAGE or module.startswith(PACKAGE + "."))


def test_no_stackwalker_module_imports_the_service() -> None:
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [f"{path.relative_to(PACKAGE_DIR)}: {n}" for n in names if _forbidden(n)]
    assert not found, "the stackwalker imports the service:\n" + "\n".join(found)


def test_importing_every_stackwalker_module_loads_nothing_of_the_service() -> None:
    # A fresh interpreter: this test process has long imported the rest of the project.
    code = (
        "import importlib, json, pkgutil, sys\n"
        f"import {PACKAGE} as package\n"
        "for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "    importlib.import_module(info.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(result.stdout)
    assert f"{PACKAGE}.symbols.codec" in loaded and f"{PACKAGE}.minidump.builder" in loaded
    service = [
        name for name in loaded
        if _forbidden(name) and name not in ("procsupervisor", "procsupervisor.workers")
    ]  # fmt: skip
    assert not service, f"importing the stackwalker loaded {service}"
