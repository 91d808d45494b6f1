"""The `scaling` command. Each subcommand lives in its own module here and exposes
`register(subparsers)`; `main` discovers them, so a new concern adds a file, not an edit."""
