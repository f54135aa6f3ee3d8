"""The commands of ``python -m emulator``, one module each: ``add_parser(commands)`` adds its
subcommand (options, help, and ``run`` as its handler), ``run(args)`` carries it out and
returns the exit status. Heavy imports wait in ``run``: ``--help`` stays quick."""

from emulator.commands import batch, classify, demo, drift, serve, shifted_batch

# In the order ``python -m emulator --help`` lists them.
COMMANDS = (serve, classify, batch, demo, drift, shifted_batch)
