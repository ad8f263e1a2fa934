"""`make notifications ARGS="…"`: the operators' notifications CLI pointed at the local billing."""

import os
import sys

from tatame_devstack.paths import devdata_dir
from tatame_devstack.run import BILLING_PORT, dev_secrets


def main() -> None:
    os.environ.setdefault("BILLING_TARGET", f"127.0.0.1:{BILLING_PORT}")
    os.environ.setdefault("BILLING_ADMIN_CLIENT_SECRET", dev_secrets(devdata_dir())["ops-cli"])
    os.execv(  # noqa: S606
        sys.executable,
        [sys.executable, "-m", "services.billing", "notifications", *sys.argv[1:]],
    )


if __name__ == "__main__":
    main()
