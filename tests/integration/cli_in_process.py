"""What the command-line tests share: `python -m helpers ARGS` run in this process (an escaping exception fails
the test instead of hiding in a subprocess)."""
import contextlib
import io

from helpers import cli


def run(*args):
    """(status, stderr lines) of `python -m helpers ARGS` run in this process; argparse's exits included."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = cli.main([str(a) for a in args])
        except SystemExit as exc:
            status = exc.code
    return status, err.getvalue().splitlines()
