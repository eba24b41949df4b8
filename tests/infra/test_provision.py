"""Provisioning: idempotent; queues, buckets and the launch template as the design needs."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import iras.cli
from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.app_tier import worker_user_data
from iras.infra.launch_template import (
    DEFAULT_LAUNCH_TEMPLATE,
    LaunchTemplateError,
    ensure_launch_template,
    launch_template_data,
)
from iras.infra.provision import provision
from iras.scaler.fleet import Ec2Fleet


async def queue_attributes(aws: AwsClients, url: str) -> dict[str, str]:
    response = await aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    return dict(response["Attributes"])


async def test_provision_creates_buckets_and_queues(settings: Settings, aws: AwsClients) -> None:
    resources = await provision(settings, aws)
    buckets = {b["Name"] for b in (await aws.s3.list_buckets())["Buckets"]}
    assert {settings.input_bucket, settings.output_bucket} <= buckets
    request = await queue_attributes(aws, resources.request_queue_url)
    dead = await queue_attributes(aws, resources.dead_letter_queue_url)
    assert request["MaximumMessageSize"] == "1024"
    assert request["VisibilityTimeout"] == str(settings.visibility_timeout_s)
    assert request["ReceiveMessageWaitTimeSeconds"] == str(settings.receive_wait_s)
    redrive = json.loads(request["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dead["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == settings.max_receive_count
    block = await aws.s3.get_public_access_block(Bucket=settings.input_bucket)
    assert all(block["PublicAccessBlockConfiguration"].values())
    encryption = await aws.s3.get_bucket_encryption(Bucket=settings.output_bucket)
    assert encryption["ServerSideEncryptionConfiguration"]["Rules"]


async def test_provision_is_idempotent_and_applies_changed_settings(
    settings: Settings, aws: AwsClients
) -> None:
    first = await provision(settings, aws)
    await aws.s3.put_object(Bucket=settings.input_bucket, Key="keep-me", Body=b"x")
    again = await provision(settings, aws)
    assert again == first
    changed = settings.model_copy(update={"visibility_timeout_s": 77, "max_receive_count": 5})
    third = await provision(changed, aws)
    assert third == first
    attributes = await queue_attributes(aws, third.request_queue_url)
    assert attributes["VisibilityTimeout"] == "77"
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] in (5, "5")
    queues = (await aws.sqs.list_queues())["QueueUrls"]
    assert len(queues) == 2
    kept = await aws.s3.get_object(Bucket=settings.input_bucket, Key="keep-me")
    assert await kept["Body"].read() == b"x"


def test_provision_command(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert iras.cli.main(["provision", "--endpoint-url", str(settings.endpoint_url)]) == 0
    assert iras.cli.main(["provision", "--endpoint-url", str(settings.endpoint_url)]) == 0
    out = capsys.readouterr().out
    assert out.count("s3://iras-input") == 2 and "iras-requests-dlq" in out


# --- the fleet's launch template ----------------------------------------------------


@pytest.fixture
def fleet_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "worker_image_id": "ami-0123456789abcdef0",
            "worker_instance_type": "t3.large",
            "worker_instance_profile": "iras-app-tier",
            "worker_security_group_ids": ("sg-0aaa", "sg-0bbb"),
        }
    )


async def template_versions(aws: AwsClients, name: str) -> list[dict[str, Any]]:
    response = await aws.ec2.describe_launch_template_versions(LaunchTemplateName=name)
    return sorted(response["LaunchTemplateVersions"], key=lambda v: v["VersionNumber"])


async def test_launch_template_carries_the_worker_spec_and_boot(
    fleet_settings: Settings, aws: AwsClients
) -> None:
    made = await ensure_launch_template(aws.ec2, fleet_settings)
    assert (made.name, made.version, made.change) == (DEFAULT_LAUNCH_TEMPLATE, 1, "created")
    (version,) = await template_versions(aws, DEFAULT_LAUNCH_TEMPLATE)
    data = version["LaunchTemplateData"]
    assert data["ImageId"] == "ami-0123456789abcdef0"
    assert data["InstanceType"] == "t3.large"
    assert data["IamInstanceProfile"] == {"Name": "iras-app-tier"}
    assert data["SecurityGroupIds"] == ["sg-0aaa", "sg-0bbb"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert base64.b64decode(data["UserData"]).decode() == worker_user_data(fleet_settings)


async def test_launch_template_is_versioned_only_when_it_changes(
    fleet_settings: Settings, aws: AwsClients
) -> None:
    first = await ensure_launch_template(aws.ec2, fleet_settings)
    again = await ensure_launch_template(aws.ec2, fleet_settings)
    assert (again.id, again.version, again.change) == (first.id, 1, "unchanged")
    assert len(await template_versions(aws, first.name)) == 1

    rebaked = fleet_settings.model_copy(update={"worker_image_id": "ami-0fedcba9876543210"})
    updated = await ensure_launch_template(aws.ec2, rebaked)
    assert (updated.id, updated.version, updated.change) == (first.id, 2, "updated")
    versions = await template_versions(aws, first.name)
    assert [v["DefaultVersion"] for v in versions] == [False, True]
    assert versions[1]["LaunchTemplateData"]["ImageId"] == "ami-0fedcba9876543210"
    assert (await ensure_launch_template(aws.ec2, rebaked)).change == "unchanged"


async def test_the_fleet_launches_from_the_provisioned_template(
    fleet_settings: Settings, aws: AwsClients
) -> None:
    named = fleet_settings.model_copy(  # moto checks that security groups exist
        update={"worker_launch_template": "iras-workers", "worker_security_group_ids": ()}
    )
    made = await ensure_launch_template(aws.ec2, named)
    assert made.name == "iras-workers"
    (instance,) = await Ec2Fleet(aws.ec2, named).launch(["app-tier-instance-1"])
    described = await aws.ec2.describe_instances(InstanceIds=[instance.id])
    assert described["Reservations"][0]["Instances"][0]["ImageId"] == "ami-0123456789abcdef0"


async def test_a_worker_instance_that_powers_itself_off_terminates(
    fleet_settings: Settings, aws: AwsClients
) -> None:
    """Launched from the image (no template), an instance gets the same spec: its
    worker's failed unit powers it off, and that must end it, not leave it stopped."""
    from_image = fleet_settings.model_copy(  # moto checks that the profile and groups exist
        update={"worker_instance_profile": None, "worker_security_group_ids": ()}
    )
    (instance,) = await Ec2Fleet(aws.ec2, from_image).launch(["app-tier-instance-1"])
    described = await aws.ec2.describe_instance_attribute(
        InstanceId=instance.id, Attribute="instanceInitiatedShutdownBehavior"
    )
    assert described["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"


def test_launch_template_needs_an_image(settings: Settings) -> None:
    with pytest.raises(LaunchTemplateError, match="IRAS_WORKER_IMAGE_ID"):
        launch_template_data(settings)


def test_provision_fleet_command(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = ["--endpoint-url", str(settings.endpoint_url)]
    assert iras.cli.main(["provision", "--fleet", *endpoint]) == 2
    assert "IRAS_WORKER_IMAGE_ID" in capsys.readouterr().err
    monkeypatch.setenv("IRAS_WORKER_IMAGE_ID", "ami-0123456789abcdef0")
    assert iras.cli.main(["provision", "--fleet", *endpoint]) == 0
    assert iras.cli.main(["provision", "--fleet", *endpoint]) == 0
    out = capsys.readouterr().out
    assert "iras-app-tier" in out and ": created" in out and ": unchanged" in out
    assert "IRAS_WORKER_LAUNCH_TEMPLATE=iras-app-tier" in out
