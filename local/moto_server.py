"""moto's server (as `moto_server` starts it), with requests handled one at a time.

moto's backends are not thread-safe: under the stock threaded server, two concurrent
conditional writes can both pass their condition (seen here: two concurrent UpdateItem claims
of one job both succeeding). In DynamoDB every conditional write is atomic, and Deferred's
idempotency rests on that, so the local emulator serialises requests to give the same
guarantee. Connections are still accepted on threads; only the handling is one at a time.

Usage: python local/moto_server.py [-H HOST] [-p PORT]
"""

import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class Serialized:
    """A WSGI app that runs the wrapped app, response body included, under one lock."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            body = self.app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        Serialized(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
