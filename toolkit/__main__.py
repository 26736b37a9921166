"""``python -m toolkit``. Kept thin: spawn and forkserver children re-import it."""

if __name__ == "__main__":
    from toolkit.cli import console_main

    console_main()
