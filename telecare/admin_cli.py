"""`telecare centre` and `telecare admin …`: run a centre and keep its books.

Both read the centre's settings from `TELECARE_*` environment variables (see
`centre_app/settings.py` and `deploy/centre/centre.env.example`)."""

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from centre_app import admin, schema
from centre_app.fhir_gateway.clients import SCOPES as FHIR_SCOPES
from centre_app.settings import CentreSettings, explain_errors, settings_help
from monitoring_centre.roles import ROLES
from monitoring_centre.storage import make_engine

log = logging.getLogger("telecare.centre")
CENTRE_LOGGERS = ("telecare", "centre_app", "monitoring_centre", "alerting", "detection")
"""`telecare centre` logs these at INFO (what it connected to, what it is doing); libraries stay at WARNING."""


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    commands.add_parser("centre", help="run the monitoring centre (settings from TELECARE_* variables)",
                        description="Run the monitoring centre (MQTT receiver, detection, escalation, API and\n"
                        "console) until SIGTERM or Ctrl-C. Every setting comes from an environment variable;\n"
                        "see docs/operating.md and deploy/centre/centre.env.example. GET /health says whether\n"
                        "the broker, the database and the escalator are well (503 if not).",
                        epilog=settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    admin_parser = commands.add_parser("admin", help="enrol homes, add accounts, write the broker's files")
    tasks = admin_parser.add_subparsers(dest="task", required=True)

    enrol = tasks.add_parser("enrol", help="a person, their hub and devices; prints the hub's broker password once")
    enrol.add_argument("--name", required=True)
    enrol.add_argument("--address", default="")
    enrol.add_argument("--hub-id", required=True)
    enrol.add_argument("--device", action="append", default=[], metavar="ID:KIND[:LOCATION[:BED_SENSOR]]",
                       help=f"repeat per device; KIND one of {', '.join(admin.DEVICE_KINDS)}; LOCATION (where in "
                       f"the home, for the activity rules) one of {', '.join(admin.LOCATIONS)}; BED_SENSOR (for "
                       f"LOCATION bed) one of {', '.join(admin.BED_SENSOR_KINDS)}, default occupancy")
    enrol.add_argument("--nhs-number")
    enrol.add_argument("--service", choices=admin.SERVICES, default="monitored")

    user = tasks.add_parser("add-user", help="an account with a generated password, printed once")
    user.add_argument("username")
    user.add_argument("--role", choices=ROLES, required=True)
    user.add_argument("--display-name", default="")
    user.add_argument("--person-id", type=int, help="for --role person: whose own account it is")

    rotate = tasks.add_parser("rotate-hub-password", help="a new broker password for a hub, printed once")
    rotate.add_argument("hub_id")

    files = tasks.add_parser("broker-files", help="Mosquitto's password and ACL files, from the database")
    files.add_argument("--out", type=Path, required=True, help="directory (the broker's password_file/acl_file)")
    default_owner = admin.default_broker_owner()
    files.add_argument("--owner", default=default_owner, type=lambda name: None if name in ("", "none") else name,
                       help="the user the broker runs as: the files become theirs, mode 640 (Mosquitto reads them "
                       "after dropping root); 'none' keeps them yours, mode 600. Default: "
                       f"{default_owner or 'none (no mosquitto user here)'}")

    fhir = tasks.add_parser("fhir-client", help="register or deactivate a system that reads from the FHIR gateway")
    fhir_tasks = fhir.add_subparsers(dest="fhir_task", required=True)
    fhir_add = fhir_tasks.add_parser("add", help="register a client (docs/interoperability.md)")
    fhir_add.add_argument("client_id", help="what its assertions carry as iss and sub")
    fhir_add.add_argument("--name", required=True, help="the system, as the people whose data it reads will see it")
    fhir_add.add_argument("--public-key", type=Path, required=True, help="file: a PEM public key or a JWKS")
    fhir_add.add_argument("--scope", action="append", required=True, choices=FHIR_SCOPES,
                          help="repeat per scope")
    fhir_add.add_argument("--person-id", type=int, action="append", help="repeat per person it may see; none: all")
    fhir_add.add_argument("--purpose", default="direct care", help="why it reads, written with each read")
    fhir_off = fhir_tasks.add_parser("deactivate", help="no more tokens; its tokens stop working")
    fhir_off.add_argument("client_id")


def run(args: argparse.Namespace) -> int:
    try:
        settings = CentreSettings()  # from the environment
    except (ValidationError, SettingsError) as problem:
        lines = explain_errors(problem)
        print(f"telecare {args.command}: {len(lines)} setting(s) missing or wrong "
              "(`telecare centre --help` lists them all):", file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
        return 2
    if args.command == "centre":
        return _serve(settings)
    engine = make_engine(settings.database_url)
    schema.upgrade(engine)
    try:
        with sessionmaker(engine)() as session:
            result = _admin(session, args, settings)
            session.commit()
    except admin.AdminError as problem:
        print(f"telecare admin {args.task}: {problem}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(json.dumps(result))
    return 0


def _serve(settings: CentreSettings) -> int:
    """`telecare centre`: say what it uses, then run until signalled."""
    from centre_app.centre import Centre

    for name in CENTRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    log.info("database %s: connecting and applying migrations", database)
    centre = Centre(settings)
    log.info("database %s: ready", database)
    log.info("broker %s:%s: connecting as %r (MQTT %s)", settings.mqtt_host, settings.mqtt_port,
             settings.mqtt_username, "5" if settings.mqtt_v5 else "3.1.1")
    log.info("API and console at %s/ (health at %s/health)", centre.url, centre.url)
    asyncio.run(centre.serve_until_signalled())
    return 0


def _admin(session: Session, args: argparse.Namespace, settings: CentreSettings) -> dict[str, object]:
    if args.task == "enrol":
        devices = [admin.parse_device(text) for text in args.device]
        person, hub = admin.enrol(session, name=args.name, address=args.address, hub_id=args.hub_id,
                                  devices=devices, centre_username=settings.mqtt_username,
                                  nhs_number=args.nhs_number, service=args.service,
                                  allow_test_nhs_numbers=settings.allow_test_nhs_numbers)
        session.flush()
        return {"person_id": person.id, "hub_id": hub.hub_id, "hub_password": hub.password,
                "next": "put the password in the hub's config; run `telecare admin broker-files` and reload the broker"}
    if args.task == "add-user":
        password = admin.add_user(session, args.username, args.role, display_name=args.display_name,
                                  person_id=args.person_id)
        return {"username": args.username, "role": args.role, "password": password}
    if args.task == "rotate-hub-password":
        refused = admin.hubs_left_out(session, centre_username=settings.mqtt_username).get(args.hub_id)
        if refused is not None:
            raise admin.AdminError(f"{refused}; it gets no broker account, so no password")
        hub = admin.rotate_hub_password(session, args.hub_id)
        return {"hub_id": hub.hub_id, "hub_password": hub.password,
                "next": "run `telecare admin broker-files` and reload the broker"}
    if args.task == "fhir-client":
        return _fhir_client(session, args)
    left_out = admin.hubs_left_out(session, centre_username=settings.mqtt_username)
    written = admin.broker_files(session, args.out, centre_username=settings.mqtt_username,
                                 centre_password=settings.mqtt_password.get_secret_value(), owner=args.owner)
    for hub_id, why in left_out.items():  # enrolled before such ids were refused: loud, but the files are right
        print(f"telecare admin broker-files: hub {hub_id!r} left out, it cannot log in: {why}", file=sys.stderr)
    return {"written": [str(path) for path in written], "owner": args.owner, "left_out": left_out,
            "next": "reload the broker (systemctl reload mosquitto)"}


def _fhir_client(session: Session, args: argparse.Namespace) -> dict[str, object]:
    """`telecare admin fhir-client add|deactivate`."""
    if args.fhir_task == "deactivate":
        admin.deactivate_fhir_client(session, args.client_id)
        return {"client_id": args.client_id, "active": False}
    try:
        public_key = args.public_key.read_text(encoding="utf-8")
    except OSError as problem:
        raise admin.AdminError(f"--public-key: {problem}") from None
    return admin.add_fhir_client(session, client_id=args.client_id, name=args.name, public_key=public_key,
                                 scopes=args.scope, person_ids=args.person_id, purpose=args.purpose)
