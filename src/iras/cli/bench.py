"""`iras bench`: how fast, how cheap and how right IRAS is on given images.

Three targets for the same images: a running gateway (`--url`), a gateway this command
starts and stops itself (no `--url`: `iras serve` on free ports), or the bare model in
this process (`--model-only`, the reference). It reports throughput, latency p50/p95/p99,
where that latency goes by stage (queue, download, decode, inference, rest: from the
results' timings, so with `--endpoint v1` only), errors, CPU per image by process role
when it can see the processes (its own `iras serve`, or `--pid` of one), top-1 against
`--labels`, and with `--plot` draws latency, its stages and the fleet over time. Exit
codes: 0 no request failed, 1 some did, 2 the run could not be made (bad arguments,
gateway unreachable, service or model failed to start).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from iras import extras
from iras.client.files import IMAGE_SUFFIXES

if TYPE_CHECKING:
    from iras.bench.load import LoadRun
    from iras.bench.report import BenchReport

ENDPOINTS = ("upload", "v1")


class BenchError(Exception):
    """The run cannot be made; the message says why (exit code 2)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure throughput, latency, CPU per image and top-1 of IRAS or the bare model",
        description=(
            "Send N images at concurrency C to a gateway (--url, or an `iras serve` started "
            "for the run) or through the bare model (--model-only), then report throughput, "
            "latency percentiles, errors, CPU per image by process and top-1 accuracy."
        ),
    )
    parser.add_argument(
        "--images",
        nargs="+",
        action="extend",
        type=Path,
        required=True,
        metavar="PATH",
        help=f"image files, or folders searched at any depth for {'/'.join(IMAGE_SUFFIXES)} files",
    )
    parser.add_argument(
        "--count", type=_positive, help="images to send, repeating the given ones in order"
    )
    parser.add_argument(
        "--concurrency", type=_positive, default=10, help="requests in flight (default: 10)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        metavar="N",
        help="images sent first and not measured (a fleet at rest starts meanwhile)",
    )
    parser.add_argument(
        "--url", help="a running gateway; without it `iras serve` is started for the run"
    )
    parser.add_argument(
        "--pid", type=int, help="with --url: measure the CPU of this `iras serve` process tree"
    )
    parser.add_argument(
        "--endpoint",
        choices=ENDPOINTS,
        default="upload",
        help="POST /upload, the course protocol (default), or POST /v1/classify?wait=true",
    )
    parser.add_argument("--labels", type=Path, help="CSV with file,label columns: report top-1")
    parser.add_argument(
        "--model-only", action="store_true", help="measure the bare model in this process"
    )
    parser.add_argument(
        "--batch-size", type=_positive, default=8, help="with --model-only (default: 8)"
    )
    parser.add_argument(
        "--model",
        dest="model_name",
        metavar="NAME|DIR|FILE.onnx",
        help="with --model-only: built-in model name, model folder or .onnx file (IRAS_MODEL)",
    )
    parser.add_argument(
        "--engine", dest="model_engine", help="with --model-only: onnx or torch (IRAS_MODEL_ENGINE)"
    )
    parser.add_argument("--min-workers", type=int, help="for the started `iras serve`")
    parser.add_argument("--max-workers", type=int, help="for the started `iras serve`")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds per request (default: 300)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="draw latency, its stages and the fleet"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        _check_arguments(args)
        report = measure(args)
    except BenchError as error:
        print(f"iras bench: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("iras bench: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        from rich.console import Console

        from iras.bench.report import render

        Console().print(render(report))
    return 1 if report.errors else 0


def measure(args: argparse.Namespace) -> BenchReport:
    from iras.bench.labels import LabelsError, read_labels, top1

    items = _load_items(args.images, args.count)
    try:
        expected = read_labels(args.labels) if args.labels else None
    except LabelsError as error:
        raise BenchError(str(error)) from None
    if args.plot:
        _check_matplotlib()
    report, timeline, started_t = (
        _bench_model(args, items) if args.model_only else _bench_service(args, items)
    )
    if expected is not None:
        report.accuracy = top1(((o.name, o.label) for o in report.outcomes), expected)
        if not report.accuracy.labelled:
            report.notes.append(f"none of the images is named in {args.labels}")
    if args.plot:
        from iras.bench.plot import draw

        draw(args.plot, report.outcomes, timeline, started_t, _title(report), report.stages)
        print(f"iras bench: chart written to {args.plot}", file=sys.stderr)
    return report


def _bench_service(
    args: argparse.Namespace, items: list[tuple[str, bytes]]
) -> tuple[BenchReport, list[dict[str, object]], float]:
    import asyncio

    from iras.bench.report import BenchReport, fleet_during, fleet_summary
    from iras.bench.serve_process import ServeFailed, serving
    from iras.client.gateway import GatewayUnreachable

    try:
        if args.url:
            url = args.url
            run = asyncio.run(_drive(args, url, items, args.pid))
        else:
            extra = _serve_args(args)
            with serving(extra) as served:
                url = served.url
                run = asyncio.run(_drive(args, url, items, served.pid))
    except (GatewayUnreachable, ServeFailed, ProcessLookupError) as error:
        raise BenchError(str(error)) from None
    points = fleet_during(run.timeline, run.started_t, run.started_t + run.wall_s)
    notes = run.notes
    if run.cpu_s is None:
        notes.append("CPU not measured: give --pid of the serve process, or leave out --url")
    elif not run.cpu_s.get("aws"):
        notes.append("no AWS process in the tree: an embedded AWS in the gateway counts as gateway")
    if args.endpoint == "upload":
        notes.append("no latency by stage: /upload answers carry no timings (--endpoint v1 do)")
    report = BenchReport(
        mode="service",
        target=url,
        wall_s=run.wall_s,
        outcomes=run.outcomes,
        endpoint=args.endpoint,
        concurrency=args.concurrency,
        cpu_s=run.cpu_s,
        fleet=fleet_summary(points),
        notes=notes,
    )
    return report, list(points), run.started_t


async def _drive(
    args: argparse.Namespace, url: str, items: list[tuple[str, bytes]], pid: int | None
) -> LoadRun:
    from iras.bench.load import drive
    from iras.client.gateway import check_gateway, classify_v1, open_session, upload_course
    from iras.client.progress import wanted

    # One connection per sender, and room for GET /healthz and /v1/scaler beside them.
    connections = args.concurrency + 2
    async with open_session(url, connections=connections, timeout_s=args.timeout) as http:
        await check_gateway(http, url)
        return await drive(
            http,
            items,
            upload_course if args.endpoint == "upload" else classify_v1,
            concurrency=args.concurrency,
            pid=pid,
            warmup=items[: args.warmup],
            show_progress=wanted(args.quiet),
        )


def _bench_model(
    args: argparse.Namespace, items: list[tuple[str, bytes]]
) -> tuple[BenchReport, list[dict[str, object]], float]:
    import time

    from iras.bench.model_only import run_model
    from iras.bench.report import BenchReport
    from iras.client.progress import progress_bar, wanted
    from iras.config.loading import load_settings
    from iras.model import ModelError
    from iras.model.registry import load_configured

    settings = load_settings(model_name=args.model_name, model_engine=args.model_engine)
    try:
        classifier = load_configured(settings)
    except ModelError as error:
        raise BenchError(str(error)) from None
    started_t = time.time()
    with progress_bar(len(items), enabled=wanted(args.quiet)) as bar:
        run = run_model(
            classifier, items, args.batch_size, lambda failed: bar.advance(failed=failed)
        )
    report = BenchReport(
        mode="model",
        target=classifier.name,
        wall_s=run.wall_s,
        outcomes=run.outcomes,
        batch_size=args.batch_size,
        cpu_s={"model": run.cpu_s},
    )
    return report, [], started_t


def _check_arguments(args: argparse.Namespace) -> None:
    if args.model_only and (args.url or args.pid is not None):
        raise BenchError("--model-only runs the model in this process: leave out --url and --pid")
    if args.pid is not None and not args.url:
        raise BenchError("--pid measures a running service: give its --url too")
    if args.url and (args.min_workers is not None or args.max_workers is not None):
        raise BenchError("--min-workers/--max-workers apply to the service bench starts, not --url")
    if not args.url:  # the model in this process, or an `iras serve` of its own
        needer = "--model-only" if args.model_only else "a run without --url (its own iras serve)"
        problem = extras.check(needer, "worker" if args.model_only else "local")
        if problem is not None:
            raise BenchError(problem)


def _serve_args(args: argparse.Namespace) -> list[str]:
    extra = []
    if args.min_workers is not None:
        extra += ["--min-workers", str(args.min_workers)]
    if args.max_workers is not None:
        extra += ["--max-workers", str(args.max_workers)]
    return extra


def _load_items(paths: list[Path], count: int | None) -> list[tuple[str, bytes]]:
    """(file name, bytes) of the images, repeated in order up to `count`."""
    from iras.client.files import cycled, find_images

    found = find_images(paths)
    if found.problems:
        raise BenchError("; ".join(found.problems))
    try:
        images = [(path.name, path.read_bytes()) for path in found.files]
    except OSError as error:
        raise BenchError(f"cannot read {error.filename}: {error.strerror}") from None
    return cycled(images, count or len(images))


def _check_matplotlib() -> None:
    """Fail before the run, not after it, when the chart cannot be drawn."""
    try:
        import matplotlib  # noqa: F401 - only asking whether it is there
    except ImportError:
        raise BenchError(
            "--plot needs matplotlib: pip install 'iras[bench]' (or pip install matplotlib)"
        ) from None


def _title(report: BenchReport) -> str:
    shape = (
        f"concurrency {report.concurrency}"
        if report.concurrency is not None
        else f"batch {report.batch_size}"
    )
    endpoint = f" {report.endpoint}" if report.endpoint else ""
    return (
        f"iras bench: {report.mode}{endpoint}, {report.count} images, {shape}: "
        f"{report.throughput_ips:.1f} images/s"
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
