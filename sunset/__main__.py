"""``python -m sunset``: the same CLI without relying on the console script."""

from sunset.cli import main

if __name__ == "__main__":
    main(prog_name="sunset")
