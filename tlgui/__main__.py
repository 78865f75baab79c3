"""``tlgui`` and ``python -m tlgui``: the command line, or the window when no command is given."""

import sys


def main(argv: list[str] | None = None) -> int:
    from .cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
