"""`python -m tatame_devstack.k8s_check [--root deploy/k8s]`: check every overlay, print, exit 1 on errors."""

import argparse
import sys
import time
from pathlib import Path

from tatame_devstack import k8s_check
from tatame_devstack.k8s_check.schemas import KUBERNETES_VERSION


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tatame_devstack.k8s_check",
        description=(k8s_check.__doc__ or "").split("\n")[0],
    )
    parser.add_argument(
        "--root", type=Path, default=Path("deploy/k8s"), help="default: %(default)s"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    reports = k8s_check.check_tree(args.root)
    for report in reports:
        status = "ok" if report.ok else f"{len(report.errors)} error(s)"
        print(
            f"overlay {report.overlay}: {report.objects} objects rendered, validated against "
            f"Kubernetes {KUBERNETES_VERSION} (strict), {len(k8s_check.CROSS_CHECKS) + 1} cross-checks: {status}"
        )
        for error in report.errors:
            print(f"  ERROR {error}")
        k8s_check.print_notes([f"[{report.overlay}] {n}" for n in report.notes])
    print(f"k8s static checks took {time.monotonic() - started:.1f} s", flush=True)
    if not all(r.ok for r in reports):
        sys.exit(1)


if __name__ == "__main__":
    main()
