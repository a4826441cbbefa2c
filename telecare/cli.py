"""`telecare` command line."""

import argparse
import asyncio
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="telecare", description="Telecare monitoring platform")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="a whole simulated home, hub, broker and centre in one process")
    demo.add_argument("--duration", type=float, default=None, help="stop by itself after SECONDS")
    demo.add_argument("--port", type=int, default=8080, help="web console port (default 8080)")
    demo.add_argument("--data-dir", type=Path, default=Path("demo-data"), help="where the database and credentials go")
    demo.add_argument("--keep-data", action="store_true",
                      help="carry on from the previous run's data (default: clear it and start afresh)")
    demo.add_argument("--broker", choices=("auto", "mosquitto", "embedded"), default="auto",
                      help="auto: Mosquitto when installed, else an embedded Python broker")
    demo.add_argument("--verbose", action="store_true")

    hub = commands.add_parser("hub", help="run the home hub agent (BLE, Zigbee2MQTT, uplink to the centre)")
    hub.add_argument("--config", type=Path, required=True, help="the hub's TOML file (see deploy/hub/hub.example.toml)")

    from telecare import admin_cli

    admin_cli.add_commands(commands)
    from telecare import sim_cli

    sim_cli.add_commands(commands)
    from telecare import pendant_replay

    pendant_replay.add_command(commands)
    from telecare import replay

    replay.add_command(commands)
    from telecare import score

    score.add_command(commands)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "demo":
        from telecare.demo import run_demo

        try:
            return asyncio.run(run_demo(data_dir=args.data_dir, port=args.port, duration=args.duration,
                                        broker=args.broker, keep_data=args.keep_data))
        except KeyboardInterrupt:
            return 0
    if args.command == "pendant-replay":
        return pendant_replay.run(args)
    if args.command == "replay":
        return replay.run_args(args)
    if args.command == "score":
        return score.run_args(args)
    if args.command == "hub":
        from hub_agent.main import main as run_hub

        return run_hub(args.config)
    if args.command == "sim":
        return sim_cli.run(args)
    if args.command in ("centre", "admin"):
        return admin_cli.run(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
