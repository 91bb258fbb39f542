"""`codesign`: the command-line entry point, one module per command family (`codesign.cli.main` assembles them)."""
