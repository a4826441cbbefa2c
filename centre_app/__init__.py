"""The application shell: settings, sign-in, the HTTP API and consoles, administration, database
migrations and the assembly of one centre process. Imports the layers below it; nothing imports it
but the `telecare` command line."""
