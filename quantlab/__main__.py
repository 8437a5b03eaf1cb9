"""``python -m quantlab`` runs the CLI."""

from quantlab.cli import main

if __name__ == "__main__":
    main()
