"""``make demo``: the main job on the bundled data, step by step."""

from __future__ import annotations

import sys

from click.testing import CliRunner


def main() -> int:
    from quantlab.cli import cli

    steps = [["data", "list"], ["data", "check"]]
    runner = CliRunner()
    for args in steps:
        print(f"\n$ quantlab {' '.join(args)}", flush=True)
        result = runner.invoke(cli, args, catch_exceptions=False)
        print(result.output, end="", flush=True)
        if result.exit_code != 0:
            print(f"demo step failed with exit code {result.exit_code}", file=sys.stderr)
            return result.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
