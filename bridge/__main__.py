"""``python -m bridge`` runs the bridge CLI."""

from bridge.cli import main

if __name__ == "__main__":
    main()
