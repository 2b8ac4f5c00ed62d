"""``recharge-policy-build MODULE -o OUT.wasm [--wit DIR]``

Puts the policy (a ``.py`` file or a package directory whose module-level
``policy`` implements :class:`~recharge_policy.PolicyRules`) and this SDK in a
fresh directory beside a two-line app module that exports
``Policy = export_policy(policy)``, then runs componentize-py over the contract
with ``--stub-wasi``: the component imports only the recharge:policy interfaces.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SDK = Path(__file__).resolve().parent
WORLD = "recharge-policy"
APP = "recharge_policy_app"
#: componentize-py's own command line, run by this interpreter (where it is installed).
COMPONENTIZE_PY = "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="recharge-policy-build", description=__doc__.split("\n\n")[1])
    parser.add_argument("module", type=Path, help="the policy: a .py file or a package directory")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the component to write")
    parser.add_argument("--wit", type=Path, default=SDK / "wit", help="the contract (default: the SDK's copy)")
    return parser.parse_args(argv)


def build(module: Path, output: Path, wit: Path) -> int:
    """Build ``module`` into the component ``output``; its size in bytes."""
    source = module.resolve()
    name = source.stem if source.is_file() else source.name
    if not name.isidentifier() or name in (APP, SDK.name):
        raise SystemExit(f"recharge-policy-build: {name!r} cannot be a policy module's name")
    with tempfile.TemporaryDirectory(prefix="recharge-policy-") as work:
        staged = Path(work)
        if source.is_file():
            shutil.copy(source, staged / f"{name}.py")
        else:
            shutil.copytree(source, staged / name, ignore=IGNORED)
        shutil.copytree(SDK, staged / SDK.name, ignore=IGNORED)
        (staged / f"{APP}.py").write_text(
            f"from {name} import policy as _rules\n"
            "from recharge_policy.component import export_policy\n\n"
            "Policy = export_policy(_rules)\n"
        )
        env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
        command = [sys.executable, "-c", COMPONENTIZE_PY, "-q", "-d", str(wit.resolve()), "-w", WORLD]
        command += ["componentize", "--stub-wasi", "-p", work, APP, "-o", str(output.resolve())]
        subprocess.run(command, check=True, env=env)
    return output.stat().st_size


def main(argv: list[str] | None = None) -> None:
    arguments = _arguments(argv)
    started = time.monotonic()
    try:
        size = build(arguments.module, arguments.output, arguments.wit)
    except subprocess.CalledProcessError as failure:
        raise SystemExit(f"recharge-policy-build: componentize-py failed ({failure.returncode})") from None
    print(f"{arguments.output}: {size} bytes in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
