"""`python -m bench.serve_app MODULE:FACTORY PORT WORKERS`: a baseline app of the bench on the HTTP
server of the gateway and the receiver (`services.common.http.serve_asgi`, their one home), so that
a baseline always runs under the same server and settings as what it is compared with."""

import sys

from services.common.http import serve_asgi
from services.common.settings import HttpServerSettings

if __name__ == "__main__":
    factory, port, workers = sys.argv[1:]
    serve_asgi(
        factory,
        host="127.0.0.1",
        port=int(port),
        workers=int(workers),
        grace_seconds=5,
        limits=HttpServerSettings(),
    )
