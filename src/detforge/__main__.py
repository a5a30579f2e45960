"""`python -m detforge ...` runs the `detforge` command."""

from detforge.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
