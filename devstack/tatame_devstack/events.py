"""`make events ARGS="…"`: the operators' event CLI pointed at the local stack's relay."""

import os
import sys

from tatame_devstack.paths import devdata_dir
from tatame_devstack.run import WEBHOOKS_ADMIN_PORT, dev_secrets


def main() -> None:
    os.environ.setdefault("WEBHOOKS_ADMIN_TARGET", f"127.0.0.1:{WEBHOOKS_ADMIN_PORT}")
    os.environ.setdefault("WEBHOOKS_ADMIN_CLIENT_SECRET", dev_secrets(devdata_dir())["ops-cli"])
    os.execv(sys.executable, [sys.executable, "-m", "services.webhooks", "events", *sys.argv[1:]])  # noqa: S606


if __name__ == "__main__":
    main()
