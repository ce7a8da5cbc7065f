"""One module per command; importing this package registers them all on the app, in the order
`--help` lists them."""

from audit.cli.commands import (  # noqa: F401  (imported to register)
    catalogue,
    collect,
    connectivity,
    diff,
    evidence,
    fix,
    flows,
    reach,
    report,
    scan,
    verify,
)
