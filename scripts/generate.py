"""Rebuild generated/ and docs/api.md from proto/ with grpc_tools.protoc and mypy-protobuf.

`--check` regenerates into a scratch folder and fails if generated/ or docs/api.md
differs, so a proto change can never land without its code and its reference.
clients/python/src/payments is a link to generated/payments: the client package
ships these very files.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc_tools
from google.protobuf import descriptor_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.api_reference import render  # the repository root: run as a script

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
GENERATED = ROOT / "generated"
API_REFERENCE = ROOT / "docs" / "api.md"
WELL_KNOWN = Path(grpc_tools.__file__).parent / "_proto"
PACKAGES = ("payments", "payments/v1")


def generate(out: Path, reference: Path) -> None:
    """The Python code into `out`, the API reference into the file `reference`."""
    out.mkdir(parents=True, exist_ok=True)
    descriptors = out.parent / "descriptors.pb"
    sources = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    plugin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO}",
            f"-I{WELL_KNOWN}",
            f"--plugin=protoc-gen-mypy={plugin_dir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={plugin_dir / 'protoc-gen-mypy_grpc'}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--mypy_out={out}",
            f"--mypy_grpc_out={out}",
            f"--descriptor_set_out={descriptors}",
            "--include_source_info",
            *sources,
        ],
        check=False,
        cwd=PROTO,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(result.returncode)
    for package in PACKAGES:
        (out / package / "__init__.py").touch()
    (out / "payments" / "py.typed").touch()
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptors.read_bytes())
    descriptors.unlink()
    reference.write_text(render(files))


def differences(left: Path, right: Path) -> list[str]:
    cmp = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [f"only in {left.name}: {n}" for n in cmp.left_only]
    found += [f"only in the fresh build: {n}" for n in cmp.right_only]
    found += [f"differs: {n}" for n in cmp.diff_files]
    for sub in cmp.common_dirs:
        found += [f"{sub}/{d}" for d in differences(left / sub, right / sub)]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if generated/ is stale")
    args = parser.parse_args()
    if not args.check:
        shutil.rmtree(GENERATED, ignore_errors=True)
        generate(GENERATED, API_REFERENCE)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        fresh, reference = Path(scratch) / "generated", Path(scratch) / "api.md"
        generate(fresh, reference)
        stale = differences(GENERATED, fresh) if GENERATED.exists() else ["generated/ is missing"]
        if not API_REFERENCE.exists() or API_REFERENCE.read_text() != reference.read_text():
            stale.append("docs/api.md differs from the comments in proto/")
    for line in stale:
        print(f"stale: {line}", file=sys.stderr)
    if stale:
        print("run `make generate` and commit the result", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
