"""Teardown: removes what provision made, never a bucket's objects without a yes."""

from __future__ import annotations

import asyncio
import io

import pytest

import iras.cli
from iras.aws import AwsClients
from iras.cli.teardown import confirm
from iras.config import Settings
from iras.config.course import course_environment
from iras.infra.launch_template import DEFAULT_LAUNCH_TEMPLATE, ensure_launch_template
from iras.infra.provision import provision
from iras.infra.teardown import plan_teardown, tear_down
from iras.scaler.fleet import Ec2Fleet
from iras.web.replies import create_reply_queue


def answer(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """What the user types at the confirmation prompt."""
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


async def teardown(settings: Settings, *options: str) -> int:
    """`iras teardown` in a thread: it runs an event loop of its own."""
    argv = ["teardown", "--endpoint-url", str(settings.endpoint_url), *options]
    return await asyncio.to_thread(iras.cli.main, argv)


async def inventory(aws: AwsClients) -> tuple[set[str], int, int]:
    """Buckets, number of queues, number of launch templates on the endpoint."""
    buckets = {b["Name"] for b in (await aws.s3.list_buckets())["Buckets"]}
    queues = (await aws.sqs.list_queues()).get("QueueUrls", [])
    templates = (await aws.ec2.describe_launch_templates())["LaunchTemplates"]
    return buckets, len(queues), len(templates)


async def provision_with_data(settings: Settings, aws: AwsClients) -> None:
    await provision(settings, aws)
    await aws.s3.put_object(Bucket=settings.output_bucket, Key="results/r1.json", Body=b"{}")


async def test_nothing_to_remove_is_fine(
    settings: Settings, aws: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await teardown(settings, "--fleet") == 0
    assert "nothing to remove" in capsys.readouterr().out


async def test_no_keeps_everything(
    settings: Settings,
    aws: AwsClients,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await provision_with_data(settings, aws)
    answer(monkeypatch, "n\n")
    assert await teardown(settings) == 1
    captured = capsys.readouterr()
    assert "iras-output (1 objects)? [y/N]" in captured.out
    assert "nothing was removed" in captured.err and "--yes" in captured.err
    assert await inventory(aws) == ({settings.input_bucket, settings.output_bucket}, 2, 0)


@pytest.mark.parametrize("how", ["--yes", "y\n"])
async def test_yes_removes_everything(
    settings: Settings, aws: AwsClients, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    await provision_with_data(settings, aws)
    answer(monkeypatch, how)
    assert await teardown(settings, *([how] if how.startswith("--") else [])) == 0
    assert await inventory(aws) == (set(), 0, 0)
    assert await teardown(settings, "--yes") == 0  # and again: nothing left, nothing to do


async def test_the_gateways_reply_queues_go_too_and_nothing_else(
    settings: Settings, aws: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    """A gateway with a fixed id keeps its reply queue at stop: teardown finds them all."""
    await provision(settings, aws)
    for gateway_id in ("web-1-8000", "web-2-8000"):
        await create_reply_queue(aws.sqs, f"{settings.reply_queue_prefix}-{gateway_id}")
    await aws.sqs.create_queue(QueueName="someone-elses-queue")
    assert await teardown(settings, "--yes") == 0
    assert f"queue {settings.reply_queue_prefix}-web-2-8000" in capsys.readouterr().out
    left = (await aws.sqs.list_queues()).get("QueueUrls", [])
    assert [url.rsplit("/", 1)[-1] for url in left] == ["someone-elses-queue"]


async def test_empty_buckets_go_without_asking(
    settings: Settings, aws: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    await provision(settings, aws)

    def no_prompt(question: str) -> str:
        raise AssertionError(f"asked {question!r} with every bucket empty")

    monkeypatch.setattr("builtins.input", no_prompt)
    assert await teardown(settings) == 0
    assert await inventory(aws) == (set(), 0, 0)


@pytest.mark.parametrize(
    ("typed", "yes"),
    [
        ("y\n", True),
        ("YES\n", True),
        (" yes \n", True),
        ("\n", False),
        ("n\n", False),
        ("yep\n", False),
        ("", False),
    ],  # "": end of input, as from a script without --yes
)
def test_confirm_takes_only_a_clear_yes(
    monkeypatch: pytest.MonkeyPatch, typed: str, yes: bool
) -> None:
    answer(monkeypatch, typed)
    assert confirm("Delete? [y/N] ") is yes


async def test_fleet_teardown_removes_the_template_and_the_instances(
    settings: Settings, aws: AwsClients
) -> None:
    fleet_settings = settings.model_copy(update={"worker_image_id": "ami-0123456789abcdef0"})
    await provision(fleet_settings, aws)
    await ensure_launch_template(aws.ec2, fleet_settings)
    fleet = Ec2Fleet(aws.ec2, fleet_settings)
    await fleet.launch(["app-tier-instance-1"])

    without = await plan_teardown(fleet_settings, aws, fleet=False)
    assert without.launch_template is None and not without.instances
    plan = await plan_teardown(fleet_settings, aws, fleet=True)
    assert plan.launch_template == DEFAULT_LAUNCH_TEMPLATE
    assert [i.name for i in plan.instances] == ["app-tier-instance-1"]

    await tear_down(plan, aws, fleet_settings)
    assert await fleet.instances(("pending", "running")) == []
    assert (await aws.ec2.describe_launch_templates())["LaunchTemplates"] == []
    assert (await plan_teardown(fleet_settings, aws, fleet=True)).is_empty


async def test_the_course_presets_resources_all_go(
    settings: Settings, aws: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`IRAS_COURSE_ID`: provision makes the course's buckets and queues and IRAS's state
    bucket; teardown removes them all, the reply queue named outright included."""
    student = "1234567890"
    preset = {**course_environment(student), "IRAS_REGION": settings.region}
    for name, value in preset.items():  # set through monkeypatch, so undone after
        monkeypatch.setenv(name, value)
    argv = ["--endpoint-url", str(settings.endpoint_url)]
    assert await asyncio.to_thread(iras.cli.main, ["provision", *argv]) == 0
    await create_reply_queue(aws.sqs, f"{student}-resp-queue")  # as the gateway does
    buckets, queues, _ = await inventory(aws)
    assert buckets == {f"{student}-in-bucket", f"{student}-out-bucket", f"{student}-iras-state"}
    assert queues == 3
    assert await asyncio.to_thread(iras.cli.main, ["teardown", *argv, "--yes"]) == 0
    assert await inventory(aws) == (set(), 0, 0)
