"""Where the Lambda runtime code is, in a checkout and in an installed package.

In the repository the runtime lives in ``lambda/`` beside this package; building the wheel copies
it to ``rightsizing_constructs/_lambda/`` (see ``[tool.setuptools.package-dir]`` in
pyproject.toml), so an app that ``pip install``s the library synthesizes from any directory.
That directory is the Lambda asset as it is: plain files, no Docker bundling (the Lambda runtime
provides boto3).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

_PACKAGE_DIR = Path(__file__).resolve().parent
_CANDIDATES = (
    _PACKAGE_DIR / "_lambda",  # installed from a wheel or an sdist
    _PACKAGE_DIR.parent / "lambda",  # a source checkout, or an editable install of one
)
_RUNTIME_PACKAGE = "rightsizing_runtime"


def runtime_asset_dir() -> Path:
    """The directory whose contents become the Lambda asset (it holds ``rightsizing_runtime``)."""
    for candidate in _CANDIDATES:
        if (candidate / _RUNTIME_PACKAGE / "__init__.py").is_file():
            return candidate
    searched = ", ".join(str(c) for c in _CANDIDATES)
    raise FileNotFoundError(
        f"the Lambda runtime code ({_RUNTIME_PACKAGE}) is missing; looked in {searched}. "
        "Reinstall rightsizing-constructs from a wheel or a full checkout."
    )


def import_runtime(module: str) -> ModuleType:
    """Import ``rightsizing_runtime.<module>`` from the asset directory, as Lambda does.

    The ``plan`` command runs the very files the Lambda functions run: the asset directory is put
    on ``sys.path`` (Lambda puts the asset root there too).
    """
    asset = str(runtime_asset_dir())
    if asset not in sys.path:
        sys.path.insert(0, asset)
    return importlib.import_module(f"{_RUNTIME_PACKAGE}.{module}")
