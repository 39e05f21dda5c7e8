"""Run the group-ipt command from a checkout: ``python cli.py --help``."""

from group_ipt.cli import main

if __name__ == "__main__":
    main()
