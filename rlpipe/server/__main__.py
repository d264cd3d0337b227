"""`python -m rlpipe.server start|stop|status [--port 5001] [--data DIR]`, as `make server` and
`make server-stop` run it."""

import sys

from rlpipe.server.tracking_server import main

if __name__ == "__main__":
    sys.exit(main())
