"""`make metrics ARGS="…"`: the operators' revenue metrics CLI pointed at the local billing
(the last 30 days when ARGS gives no `--since`)."""

import os
import sys
from datetime import UTC, datetime, timedelta

from tatame_devstack.paths import devdata_dir
from tatame_devstack.run import BILLING_PORT, dev_secrets


def main() -> None:
    os.environ.setdefault("BILLING_TARGET", f"127.0.0.1:{BILLING_PORT}")
    os.environ.setdefault("BILLING_ADMIN_CLIENT_SECRET", dev_secrets(devdata_dir())["ops-cli"])
    args = sys.argv[1:]
    if "--since" not in args:
        args += ["--since", (datetime.now(UTC).date() - timedelta(days=29)).isoformat()]
    os.execv(  # noqa: S606
        sys.executable, [sys.executable, "-m", "services.billing", "metrics", *args]
    )


if __name__ == "__main__":
    main()
