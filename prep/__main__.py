"""`python -m prep` and the `prep` command: run the command line."""

import gc


def main() -> None:
    """Run the command line. The cyclic garbage collector is paused from here, before the
    command line's modules load, until the command's own module is in (prep.ui.cli says why)."""
    collecting = gc.isenabled()
    gc.disable()
    from prep.ui.cli import main as run

    run(resume_collection=collecting)


if __name__ == "__main__":
    main()
